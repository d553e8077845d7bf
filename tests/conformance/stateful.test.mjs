// Stateful reconnect (withStatefulReconnect, WebSockets): the hub drops the transport again and
// again while messages flow both ways; nothing may be lost, duplicated or reordered, and the client
// must see one uninterrupted connection.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { HubConnectionState, Subject } from "@microsoft/signalr";
import { hubFixture } from "./lib/fixture.mjs";
import { Collector, Lifecycle, subscribe, withTimeout } from "./lib/waiting.mjs";

const ROUNDS = 6; // one transport drop per round
const PER_ROUND = 400; // messages per direction per round
const BUFFER_BYTES = 4_000_000; // both sides: large enough that acks never throttle the test

/** Counts the WebSockets the client opens: one at start, then one per stateful re-open. */
class SocketLog {
  constructor() {
    this.opened = new Collector();
    const log = this;
    this.WebSocket = class CountingWebSocket extends WebSocket {
      constructor(...args) {
        super(...args);
        this.on("open", () => log.opened.push(this));
      }
    };
  }

  /** Resolves once the n-th socket is open. */
  untilOpened(n) {
    return this.opened.until(n, `WebSocket #${n} to open`);
  }

  /** The socket the client uses now. */
  get current() {
    return this.opened.items.at(-1);
  }
}

/** Lets pending I/O run between bursts of sends (sends resolve in microtasks on WebSockets). */
const yieldToEventLoop = () => new Promise((resolve) => setImmediate(resolve));

describe("stateful reconnect", () => {
  const hub = hubFixture(["--stateful-buffer-bytes", String(BUFFER_BYTES)]);
  const { pool } = hub;

  /**
   * A started stateful WebSocket connection and two ways to cut its transport, each resolving once
   * the client has re-opened it: by the hub (DropTransport) or by the client (socket terminated).
   */
  async function openStateful(protocol, extra = {}) {
    const sockets = new SocketLog();
    const conn = pool.build(hub.url("/hub"), {
      transport: "WebSockets",
      protocol,
      stateful: true,
      retryPolicy: [0], // a fallback to a new connection would show up as onreconnecting
      WebSocket: sockets.WebSocket,
      ...extra,
    });
    const life = new Lifecycle(conn);
    await withTimeout(conn.start(), "start");
    const reopened = () => sockets.untilOpened(sockets.opened.items.length + 1);
    return {
      conn,
      life,
      sockets,
      id: conn.connectionId,
      dropFromHub: () => {
        const next = reopened();
        conn.send("DropTransport").catch(() => {});
        return next;
      },
      dropFromClient: () => {
        const next = reopened();
        sockets.current.terminate();
        return next;
      },
    };
  }

  /** The checks every stateful test ends with: one uninterrupted connection. */
  async function assertUninterrupted({ conn, life, id }) {
    assert.deepEqual(life.events.items, [], "no onreconnecting, onreconnected or onclose");
    assert.equal(conn.connectionId, id);
    assert.equal(await conn.invoke("GetConnectionId"), id, "the hub kept the same connection");
  }

  for (const protocol of ["json", "messagepack"]) {
    it(`WebSockets/${protocol}: repeated transport drops lose, repeat and reorder nothing`, async () => {
      const client = await openStateful(protocol, { statefulBufferBytes: BUFFER_BYTES });
      const { conn } = client;
      const info = await conn.invoke("GetRequestInfo");
      assert.equal(info.handshakeVersion, 2, "stateful reconnect uses handshake version 2");
      assert.equal(info.negotiate.query.useStatefulReconnect, "true");

      let drops = 0;
      let reopened = null; // resolves when the client has re-opened after this round's drop
      const drop = () => {
        drops++;
        reopened = client.dropFromHub();
      };

      // Server -> client: Flood(i, payload) per round, i = 0..PER_ROUND-1.
      const fromServer = [];
      let round = 0;
      conn.on("Flood", (i) => {
        fromServer.push(i);
        // Even rounds drop while the hub is mid-Flood (the Flood invocation is pending).
        if (round % 2 === 0 && i === PER_ROUND / 2) drop();
      });

      let sent = 0;
      for (round = 0; round < ROUNDS; round++) {
        const flood = conn.invoke("Flood", PER_ROUND, 16);
        // Client -> server: Record(n) with n counting up across rounds.
        for (let k = 0; k < PER_ROUND; k++) {
          await conn.send("Record", sent++);
          // Odd rounds drop while the client is mid-way through its sends.
          if (round % 2 === 1 && k === PER_ROUND / 2) drop();
          if (k % 25 === 0) await yieldToEventLoop();
        }
        assert.equal(await withTimeout(flood, `Flood result of round ${round}`, 30_000), PER_ROUND);
        await reopened;
      }

      const recorded = await withTimeout(conn.invoke("GetRecorded"), "GetRecorded");
      assert.equal(drops, ROUNDS);
      assert.equal(client.sockets.opened.items.length, ROUNDS + 1, "one WebSocket re-open per drop");

      const expectedFromServer = Array.from({ length: ROUNDS }, () => [...Array(PER_ROUND).keys()]).flat();
      assertSameSequence(fromServer, expectedFromServer, "server -> client Flood indices");
      assertSameSequence(recorded, [...Array(sent).keys()], "client -> server Record values");
      assert.equal(conn.state, HubConnectionState.Connected);
      await assertUninterrupted(client);
      await conn.stop();
    });
  }

  for (const protocol of ["json", "messagepack"]) {
    it(`WebSockets/${protocol}: a server stream and an upload stream carry on across transport drops`, async () => {
      const client = await openStateful(protocol);
      const { conn } = client;
      const counter = subscribe(conn.stream("Counter", 300, 1));
      await counter.items.until(100, "100 Counter items");
      await client.dropFromHub();

      const uploads = new Subject();
      const echoed = subscribe(conn.stream("UploadEcho", uploads));
      for (let i = 0; i < 100; i++) uploads.next(i);
      await echoed.items.until(50, "50 echoed items");
      await client.dropFromClient();
      for (let i = 100; i < 200; i++) uploads.next(i);
      uploads.complete();

      assertSameSequence(await withTimeout(counter.ended, "Counter completion"), [...Array(300).keys()], "Counter items");
      assertSameSequence(await withTimeout(echoed.ended, "UploadEcho completion"), [...Array(200).keys()], "UploadEcho items");
      await assertUninterrupted(client);
      await conn.stop();
    });

    it(`WebSockets/${protocol}: a client result asked for before a drop is delivered after it`, async () => {
      const client = await openStateful(protocol);
      const { conn } = client;
      // The hub waits for this handler's result while the client cuts its socket and re-opens it.
      conn.on("askAcrossDrop", async (x) => {
        await client.dropFromClient();
        return x * 3;
      });
      assert.equal(await withTimeout(conn.invoke("AskClient", "askAcrossDrop", 14), "AskClient across a drop"), 42);
      await assertUninterrupted(client);
      await conn.stop();
    });
  }

  it("WebSockets/json: group membership survives transport drops (it is the same connection)", async () => {
    const client = await openStateful("json");
    const other = await pool.open(hub.url("/hub"), { transport: "WebSockets", protocol: "json" });
    const probe = new Collector();
    client.conn.on("groupProbe", probe.handler);
    await client.conn.invoke("JoinGroup", "stateful-group");
    await client.dropFromHub();
    await other.invoke("SendToGroup", "stateful-group", "groupProbe", "still a member");
    assert.deepEqual(await probe.until(1, "the group message"), [["still a member"]]);
    await assertUninterrupted(client);
    await client.conn.stop();
    await other.stop();
  });

  it("WebSockets/json: with a tiny client buffer, sends wait for the hub's Acks and all arrive", async () => {
    // Past bufferSize unacknowledged bytes a send completes only after the hub acknowledges (~1 s):
    // a hub that never sent Ack would hang here.
    const conn = await pool.open(hub.url("/hub"), { transport: "WebSockets", protocol: "json", stateful: true, statefulBufferBytes: 500 });
    const count = 25; // ~1150 bytes (46 per message): more than twice the buffer
    for (let i = 0; i < count; i++) await withTimeout(conn.send("Record", i), `send #${i} to be acknowledged`);
    assert.deepEqual(await conn.invoke("GetRecorded"), [...Array(count).keys()]);
    await conn.stop();
  });

  it("WebSockets/json: a Close message ends a stateful connection; automatic reconnect makes a new one", async () => {
    const { conn, life, id: oldId } = await openStateful("json");
    await conn.send("CloseWithError", "closing a stateful connection", true);
    const reconnecting = await life.until("reconnecting", 1);
    assert.equal(reconnecting.arg?.message, "Server returned an error on close: closing a stateful connection");
    const reconnected = await life.until("reconnected", 1);
    assert.notEqual(reconnected.arg, oldId, "no stateful resume after Close: a new connection");
    assert.equal(await conn.invoke("GetConnectionId"), reconnected.arg);
    assert.equal((await conn.invoke("GetRequestInfo")).handshakeVersion, 2);
    await conn.stop();
  });

  it("WebSockets/json: when the one re-open attempt fails, automatic reconnect makes a new connection", async () => {
    const { conn, life, id: oldId } = await openStateful("json");
    await conn.invoke("FailNextConnects", "WebSockets", 1); // the client's stateful re-open gets 500
    await conn.send("DropTransport");
    await life.until("reconnecting", 1);
    const reconnected = await life.until("reconnected", 1);
    assert.notEqual(reconnected.arg, oldId, "a new connection after the failed re-open");
    assert.equal(await conn.invoke("GetConnectionId"), reconnected.arg);
    await conn.stop();
  });

  for (const protocol of ["json", "messagepack"]) {
    it(`LongPolling/${protocol}: stateful reconnect requested, but only WebSockets uses it: handshake version 1`, async () => {
      const conn = await pool.open(hub.url("/hub"), { transport: "LongPolling", protocol, stateful: true });
      const info = await conn.invoke("GetRequestInfo");
      assert.equal(info.negotiate.query.useStatefulReconnect, "true");
      assert.equal(info.handshakeVersion, 1);
      assert.equal(await conn.invoke("Echo", "plain"), "plain");
      await conn.stop();
    });
  }
});


/** deepEqual with a short message naming the first difference instead of dumping thousands of numbers. */
function assertSameSequence(actual, expected, what) {
  const firstDiff = expected.findIndex((v, i) => actual[i] !== v);
  if (firstDiff >= 0 || actual.length !== expected.length) {
    const at = firstDiff >= 0 ? firstDiff : Math.min(actual.length, expected.length);
    assert.fail(
      `${what}: ${actual.length} received, ${expected.length} expected; first difference at #${at}: ` +
        `got ${JSON.stringify(actual.slice(Math.max(0, at - 2), at + 3))}, expected ${JSON.stringify(expected.slice(Math.max(0, at - 2), at + 3))}`,
    );
  }
}
