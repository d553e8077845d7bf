#!/usr/bin/env node
// The official @microsoft/signalr client in Node. Command line and output as every program of
// benches/compare (see benches/compare/rust/src/lib.rs):
//   node bench.mjs invoke|pipelined|flood|connect|idle HUB_URL COUNT PAYLOAD_BYTES json|messagepack
// The packages are the ones tests/conformance locks (installed by scripts/install-deps.sh).
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

const require = createRequire(new URL("../../../tests/conformance/package.json", import.meta.url));
const { HttpTransportType, HubConnectionBuilder, JsonHubProtocol, LogLevel } = require("@microsoft/signalr");
const { MessagePackHubProtocol } = require("@microsoft/signalr-protocol-msgpack");

const IN_FLIGHT = 100;
const CONNECT_BATCH = 100;
const SETTLE_MS = 500;

const [scenario, url, countText, payloadText, protocolName] = process.argv.slice(2);
if (protocolName === undefined) {
  console.error("usage: bench.mjs invoke|pipelined|flood|connect|idle HUB_URL COUNT PAYLOAD_BYTES json|messagepack");
  process.exit(2);
}
const count = Number(countText);
const payload = Number(payloadText);
const warmUp = Math.max(1, Math.floor(count / 10));

function connection() {
  return new HubConnectionBuilder()
    .withUrl(url, { transport: HttpTransportType.WebSockets })
    .withHubProtocol(protocolName === "messagepack" ? new MessagePackHubProtocol() : new JsonHubProtocol())
    .configureLogging(LogLevel.None)
    .build();
}

async function started() {
  const c = connection();
  await c.start();
  return c;
}

function emit(figures) {
  console.log(JSON.stringify(figures));
}

function percentilesUs(samples) {
  samples.sort((a, b) => a - b);
  const at = (p) => samples[Math.round((samples.length - 1) * p)] * 1000;
  return { p50_us: at(0.5), p99_us: at(0.99) };
}

function cpuSeconds() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function rssBytes() {
  const status = readFileSync("/proc/self/status", "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) * 1024;
}

const echo = "x".repeat(payload);

async function invoke() {
  const c = await started();
  const samples = [];
  for (let i = 0; i < count + warmUp; i++) {
    const t = performance.now();
    await c.invoke("Echo", echo);
    if (i >= warmUp) samples.push(performance.now() - t);
  }
  await c.stop();
  emit(percentilesUs(samples));
}

async function pipelined() {
  const c = await started();
  const run = async (n) => {
    let sent = 0;
    const worker = async () => {
      while (sent < n) {
        sent++;
        await c.invoke("Echo", echo);
      }
    };
    await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, n) }, worker));
  };
  await run(warmUp);
  const t = performance.now();
  await run(count);
  const seconds = (performance.now() - t) / 1000;
  await c.stop();
  emit({ calls_per_s: count / seconds });
}

async function flood() {
  const c = await started();
  let received = 0;
  c.on("Flood", () => received++);
  const run = async (n) => {
    received = 0;
    const cpu = cpuSeconds();
    const t = performance.now();
    await c.invoke("Flood", n, payload);
    const seconds = (performance.now() - t) / 1000;
    if (received !== n) throw new Error(`received ${received} of ${n}`);
    return { seconds, cpu: cpuSeconds() - cpu };
  };
  await run(warmUp);
  const { seconds, cpu } = await run(count);
  await c.stop();
  emit({ msgs_per_s: count / seconds, cpu_s: cpu });
}

async function connect() {
  const samples = [];
  for (let i = 0; i < count + warmUp; i++) {
    const c = connection();
    const t = performance.now();
    await c.start();
    if (i >= warmUp) samples.push(performance.now() - t);
    await c.stop();
  }
  emit(percentilesUs(samples));
}

async function idle() {
  await started(); // warms the shared parts; not counted
  global.gc?.();
  const before = rssBytes();
  const open = [];
  while (open.length < count) {
    const batch = Array.from({ length: Math.min(CONNECT_BATCH, count - open.length) }, connection);
    await Promise.all(batch.map((c) => c.start()));
    open.push(...batch);
  }
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  global.gc?.();
  emit({ bytes_per_conn: (rssBytes() - before) / count });
  process.exit(0); // without closing every connection one by one
}

const scenarios = { invoke, pipelined, flood, connect, idle };
if (!scenarios[scenario]) {
  console.error(`unknown scenario ${scenario}`);
  process.exit(2);
}
await scenarios[scenario]();
