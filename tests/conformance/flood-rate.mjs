#!/usr/bin/env node
// Measures how many Flood messages per second the official client receives from a hub, over
// WebSockets with the JSON protocol, for 1 and for 100 concurrent connections.
//
//   node flood-rate.mjs [HUB_URL] [--messages 200000] [--payload 100] [--connections 1,100]
//
// HUB_URL is a hub (http://127.0.0.1:PORT/hub) or a base URL (then /hub is used). Without it, a
// hub is started from TEST_HUB_BIN (default: <repo>/target/debug/test-hub) for the run.
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { buildConnection } from "./lib/connections.mjs";
import { startHub } from "./lib/hub-process.mjs";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    messages: { type: "string", default: "200000" }, // per measurement, split across the connections
    payload: { type: "string", default: "100" },
    connections: { type: "string", default: "1,100" },
  },
});
const totalMessages = Number(values.messages);
const payloadBytes = Number(values.payload);
const connectionCounts = values.connections.split(",").map(Number);

/** Opens `n` connections, floods all at once, returns the received-message rate. */
async function measure(hubUrl, n) {
  const perConnection = Math.ceil(totalMessages / n);
  const connections = [];
  const received = new Array(n).fill(0);
  try {
    for (let c = 0; c < n; c++) {
      const conn = buildConnection(hubUrl, { transport: "WebSockets", protocol: "json" });
      conn.on("Flood", () => received[c]++);
      await conn.start();
      connections.push(conn);
    }
    // Warm-up so that JIT and socket buffers do not count against the first measurement.
    await Promise.all(connections.map((conn) => conn.invoke("Flood", 200, payloadBytes)));
    received.fill(0);

    const start = performance.now();
    const results = await Promise.all(connections.map((conn) => conn.invoke("Flood", perConnection, payloadBytes)));
    const seconds = (performance.now() - start) / 1000;

    const total = received.reduce((a, b) => a + b, 0);
    if (total !== perConnection * n || results.some((r) => r !== perConnection)) {
      throw new Error(`expected ${perConnection * n} messages, received ${total}`);
    }
    return { connections: n, messages: total, seconds, rate: total / seconds };
  } finally {
    await Promise.all(connections.map((conn) => conn.stop()));
  }
}

let hub = null;
let hubUrl = positionals[0];
if (!hubUrl) {
  hub = await startHub();
  hubUrl = hub.hub("/hub");
} else if (/^https?:\/\/[^/]+\/?$/.test(hubUrl)) {
  hubUrl = hubUrl.replace(/\/?$/, "/hub");
}

try {
  console.log(`Flood over WebSockets/json from ${hubUrl}, ${payloadBytes}-byte payload`);
  for (const n of connectionCounts) {
    const r = await measure(hubUrl, n);
    console.log(
      `connections=${String(r.connections).padStart(3)}  messages=${r.messages}  ` +
        `seconds=${r.seconds.toFixed(3)}  rate=${Math.round(r.rate)} msg/s`,
    );
  }
} finally {
  await hub?.stop();
}
