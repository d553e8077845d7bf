// `--tls`: the hub serves https/wss with a fresh self-signed certificate for 127.0.0.1/localhost.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { startHub } from "./lib/hub-process.mjs";
import { buildConnection, PAIRS } from "./lib/connections.mjs";
import { withTimeout } from "./lib/waiting.mjs";

const TLS_CLIENT = fileURLToPath(new URL("./lib/tls-client.mjs", import.meta.url));

describe("TLS", () => {
  let hub;
  let dir;
  let certFile;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "conformance-tls-"));
    certFile = join(dir, "hub-cert.pem");
    hub = await startHub(["--tls", certFile]);
  });
  after(async () => {
    await hub?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("prints an https URL and writes a PEM certificate before it", async () => {
    assert.match(hub.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(await readFile(certFile, "utf8"), /^-----BEGIN CERTIFICATE-----/);
  });

  it("every transport x protocol pair works over TLS for a client that trusts the certificate", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [TLS_CLIENT, hub.hub("/hub")], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: certFile },
      timeout: 60_000,
    });
    const results = stdout.trim().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(
      results,
      PAIRS.map((pair) => ({ label: pair.label, echo: `over TLS with ${pair.label}`, transport: pair.transport, protocol: pair.protocol })),
    );
  });

  it("a client that does not trust the certificate cannot start", async () => {
    const conn = buildConnection(hub.hub("/hub"), { transport: "WebSockets", protocol: "json" });
    // Node's fetch refuses the unknown issuer, so the negotiate request itself fails.
    await assert.rejects(withTimeout(conn.start(), "start"), /Failed to complete negotiation with the server/);
  });
});
