// The per-suite fixture every test file uses: one hub process and the connections opened against it.
import { after, before } from "node:test";
import { ConnectionPool } from "./connections.mjs";
import { startHub } from "./hub-process.mjs";

/**
 * Registers hooks on the enclosing suite: before it, start a hub with `flags`; after it, stop every
 * connection of `pool` and the hub. `url(path)` works once the suite's tests run.
 */
export function hubFixture(flags = []) {
  let hubProcess = null;
  const fixture = {
    pool: new ConnectionPool(),
    /** URL of a hub path: url("/hub"), url("/auth-hub"). */
    url: (path = "/hub") => hubProcess.hub(path),
    /** Base URL printed by the hub. */
    get baseUrl() {
      return hubProcess.url;
    },
  };
  before(async () => {
    hubProcess = await startHub(flags);
  });
  after(async () => {
    await fixture.pool.stopAll();
    await hubProcess?.stop();
  });
  return fixture;
}
