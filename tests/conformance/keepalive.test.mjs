// Keep-alive in both directions: hub pings keep an idle client within its serverTimeout, client pings
// keep the hub's client timeout from firing, and a stalled hub makes the client time out.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HubConnectionState, MessageType } from "@microsoft/signalr";
import { hubFixture } from "./lib/fixture.mjs";
import { Lifecycle, delay } from "./lib/waiting.mjs";

const HUB_KEEP_ALIVE_MS = 200;
const HUB_CLIENT_TIMEOUT_MS = 1000;
const CLIENT_SERVER_TIMEOUT_MS = 1000;
const CLIENT_KEEP_ALIVE_MS = 200;
const IDLE_MS = 3000; // three times both timeouts
const HUB_POLL_TIMEOUT_MS = 200;

// Long Polling is left out: it has inherent keep-alive (no pings, no timeouts) in the official client.
const PINGING_PAIRS = [
  { transport: "WebSockets", protocol: "json" },
  { transport: "ServerSentEvents", protocol: "json" },
  { transport: "WebSockets", protocol: "messagepack" },
];

// The tests only wait on their own connections, so they run side by side to overlap the idle time.
describe("keep-alive", { concurrency: true }, () => {
  const hub = hubFixture([
    "--keep-alive-ms", String(HUB_KEEP_ALIVE_MS),
    "--client-timeout-ms", String(HUB_CLIENT_TIMEOUT_MS),
    "--poll-timeout-ms", String(HUB_POLL_TIMEOUT_MS),
  ]);
  const { pool } = hub;

  const connect = async (pair, extra) => {
    const conn = pool.build(hub.url("/hub"), {
      ...pair,
      serverTimeoutMs: CLIENT_SERVER_TIMEOUT_MS,
      keepAliveMs: CLIENT_KEEP_ALIVE_MS,
      ...extra,
    });
    const life = new Lifecycle(conn);
    await conn.start();
    return { conn, life };
  };

  for (const pair of PINGING_PAIRS) {
    const label = `${pair.transport}/${pair.protocol}`;

    it(`${label}: an idle connection stays up for ${IDLE_MS} ms because pings flow both ways`, async () => {
      const { conn, life } = await connect(pair, { recording: true });
      const id = conn.connectionId;
      // Idling is the subject here: either timeout (1000 ms) would fire three times over without pings.
      await delay(IDLE_MS);
      assert.deepEqual(life.events.items, [], "no close or reconnect while idle");
      assert.equal(conn.state, HubConnectionState.Connected);
      const pings = conn.recording.received.items.filter((m) => m.type === MessageType.Ping).length;
      assert.ok(pings >= 2, `the hub sent pings while the client idled (saw ${pings})`);
      assert.equal(await conn.invoke("GetConnectionId"), id, "same connection on the hub");
      await conn.stop();
    });

    it(`${label}: while the hub stalls, the client's server timeout closes the connection`, async () => {
      const { conn, life } = await connect(pair);
      await conn.send("Stall", CLIENT_SERVER_TIMEOUT_MS * 4);
      const closed = await life.until("close", 1);
      assert.equal(closed.arg?.message, "Server timeout elapsed without receiving a message from the server.");
      assert.equal(conn.state, HubConnectionState.Disconnected);
    });

    it(`${label}: a client that sends no pings is dropped after --client-timeout-ms`, async () => {
      // The client pings only after 60 s of silence and would wait 120 s for the hub: only the
      // hub's client timeout can end this connection.
      const { conn, life } = await connect(pair, { keepAliveMs: 60_000, serverTimeoutMs: 120_000, recording: true });
      const closed = await life.until("close", 1);
      // ASP.NET's client timeout records an OperationCanceledException and aborts with reconnect
      // allowed: Close{error: "Connection closed with an error.", allowReconnect: true}.
      const close = conn.recording.received.items.find((m) => m.type === MessageType.Close);
      assert.deepEqual(
        { error: close?.error, allowReconnect: close?.allowReconnect },
        { error: "Connection closed with an error.", allowReconnect: true },
      );
      assert.equal(closed.arg?.message, "Server returned an error on close: Connection closed with an error.");
      assert.equal(conn.state, HubConnectionState.Disconnected);
    });
  }

  for (const protocol of ["json", "messagepack"]) {
    it(`LongPolling/${protocol}: empty polls end after --poll-timeout-ms and the client polls again`, async () => {
      const { conn, life } = await connect({ transport: "LongPolling", protocol, recording: true });
      const idleStart = Date.now();
      await delay(IDLE_MS); // idling is the subject: a poll held past the idle time would show below
      const info = await conn.invoke("GetRequestInfo");
      // The client stamps each poll with ?_=<Date.now()>. Polls end every 200 ms, so the one that
      // carried this answer began late in the idle time (a held poll would date from its start).
      const pollStart = Number(info.connect.query._) - idleStart;
      assert.ok(pollStart > IDLE_MS / 2, `latest poll began ${pollStart} ms into the ${IDLE_MS} ms idle time`);
      assert.deepEqual(life.events.items, [], "no close or reconnect while idle");
      assert.equal(conn.state, HubConnectionState.Connected);
      const pings = conn.recording.received.items.filter((m) => m.type === MessageType.Ping).length;
      assert.equal(pings, 0, "like ASP.NET, no pings on Long Polling (inherent keep-alive)");
      await conn.stop();
    });
  }
});
