// Starts one test-hub process (tests/hub) for a test file and stops it afterwards.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const DEFAULT_BIN = fileURLToPath(new URL("../../../target/debug/test-hub", import.meta.url));
const START_GUARD_MS = 15_000;

/** The binary under test: env TEST_HUB_BIN, else the workspace's debug build. */
export const hubBinary = () => process.env.TEST_HUB_BIN || DEFAULT_BIN;

/**
 * Spawns `test-hub --port 0 --exit-on-stdin-eof ...flags` and resolves once it printed its base URL
 * (first stdout line). stdin stays open: if this test process dies, the hub sees EOF and exits.
 * Hub logs (stderr) are shown only with HUB_LOG=1.
 */
export function startHub(flags = []) {
  const args = ["--port", "0", "--exit-on-stdin-eof", ...flags];
  const child = spawn(hubBinary(), args, {
    stdio: ["pipe", "pipe", process.env.HUB_LOG ? "inherit" : "ignore"],
  });
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));

  return new Promise((resolve, reject) => {
    let stdout = "";
    let settled = false;
    const guard = setTimeout(() => fail(new Error(`test-hub printed no URL within ${START_GUARD_MS} ms`)), START_GUARD_MS);
    const fail = (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(guard);
      child.kill("SIGKILL");
      reject(error);
    };
    child.once("error", (e) => fail(new Error(`cannot run ${hubBinary()}: ${e.message} (set TEST_HUB_BIN or run 'cargo build -p test-hub')`)));
    exited.then(({ code, signal }) => fail(new Error(`test-hub exited (code ${code}, signal ${signal}) before printing its URL; stdout: ${JSON.stringify(stdout)}`)));
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", function onData(chunk) {
      stdout += chunk;
      const newline = stdout.indexOf("\n");
      if (newline < 0) return;
      child.stdout.off("data", onData);
      child.stdout.resume(); // keep draining so the hub never blocks on a full pipe
      const url = stdout.slice(0, newline).trim();
      if (!/^https?:\/\/[^/]+$/.test(url)) {
        fail(new Error(`test-hub's first stdout line is not a base URL: ${JSON.stringify(url)}`));
        return;
      }
      settled = true;
      clearTimeout(guard);
      resolve(new HubProcess(child, exited, url));
    });
  });
}

class HubProcess {
  constructor(child, exited, url) {
    this._child = child;
    this._exited = exited;
    /** Base URL, e.g. http://127.0.0.1:PORT */
    this.url = url;
  }

  /** URL of a hub path under the base URL: hub("/hub"), hub("/auth-hub"). */
  hub(path = "/hub") {
    return this.url + path;
  }

  /** Ends the hub: closing stdin makes it exit; SIGTERM in case it does not. */
  async stop() {
    if (this._child.exitCode === null && this._child.signalCode === null) {
      this._child.stdin.end();
      this._child.kill("SIGTERM");
    }
    await this._exited;
  }
}
