// Automatic reconnect (withAutomaticReconnect) after each fault the hub can inject.
// FailNextNegotiations acts on the whole hub process: the tests of this file run one at a time.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HubConnectionState } from "@microsoft/signalr";
import { hubFixture } from "./lib/fixture.mjs";
import { PAIRS } from "./lib/connections.mjs";
import { Collector, Lifecycle } from "./lib/waiting.mjs";

const HUB_KEEP_ALIVE_MS = 100;
const SHORT_SERVER_TIMEOUT_MS = 800; // > several hub pings, so only a stalled hub trips it

/** Retries at once, up to 10 times, and remembers every RetryContext it was asked about. */
class RecordingRetryPolicy {
  constructor() {
    this.contexts = [];
  }
  nextRetryDelayInMilliseconds(context) {
    this.contexts.push(context);
    return context.previousRetryCount < 10 ? 0 : null;
  }
}

describe("automatic reconnect", () => {
  const hub = hubFixture(["--keep-alive-ms", String(HUB_KEEP_ALIVE_MS)]);
  const { pool } = hub;

  for (const pair of PAIRS) {
    describe(pair.label, () => {
      /** A started connection with a recording retry policy and its lifecycle log. */
      async function connect(extra = {}) {
        const policy = new RecordingRetryPolicy();
        const conn = pool.build(hub.url("/hub"), { ...pair, retryPolicy: policy, ...extra });
        const life = new Lifecycle(conn);
        await conn.start();
        return { conn, life, policy };
      }

      /** Sends a fault-injecting call; the fault may cut the send itself short (Long Polling's POST). */
      const inject = (conn, method, ...args) => conn.send(method, ...args).catch(() => {});

      /**
       * Runs `fault`, awaits onreconnecting then onreconnected and checks the new connection:
       * a new id, reported by the hub too, and working calls. Returns the onreconnecting error.
       */
      async function expectReconnect({ conn, life }, fault) {
        const oldId = conn.connectionId;
        await fault();
        const reconnecting = await life.until("reconnecting", 1);
        const reconnected = await life.until("reconnected", 1);
        assert.equal(conn.state, HubConnectionState.Connected);
        assert.equal(typeof reconnected.arg, "string");
        assert.notEqual(reconnected.arg, oldId, "a reconnect is a new connection with a new id");
        assert.equal(conn.connectionId, reconnected.arg);
        assert.equal(await conn.invoke("GetConnectionId"), reconnected.arg);
        assert.equal(await conn.invoke("Echo", "after reconnect"), "after reconnect");
        assert.equal(life.count("close"), 0, "no onclose while reconnecting succeeds");
        assert.equal(life.count("reconnecting"), 1);
        return reconnecting.arg;
      }

      it("DropTransport: the client reconnects", async () => {
        const client = await connect();
        await expectReconnect(client, () => inject(client.conn, "DropTransport"));
        await client.conn.stop();
      });

      it("CloseWithError(msg, true): the client reconnects, the error carries msg", async () => {
        const client = await connect();
        const error = await expectReconnect(client, () => inject(client.conn, "CloseWithError", "going away, come back", true));
        assert.equal(error?.message, "Server returned an error on close: going away, come back");
        await client.conn.stop();
      });

      it("CloseWithError(null, true): the client reconnects", async () => {
        const client = await connect();
        const error = await expectReconnect(client, () => inject(client.conn, "CloseWithError", null, true));
        assert.equal(error, undefined, "a Close without error gives onreconnecting no error");
        await client.conn.stop();
      });

      it("CloseWithError(msg, false): the client closes with msg and does not reconnect", async () => {
        const { conn, life } = await connect();
        await inject(conn, "CloseWithError", "going away for good", false);
        const closed = await life.until("close", 1);
        assert.equal(closed.arg?.message, "Server returned an error on close: going away for good");
        assert.equal(life.count("reconnecting"), 0);
        assert.equal(conn.state, HubConnectionState.Disconnected);
      });

      it("CloseWithError(null, false): the client closes without error", async () => {
        const { conn, life } = await connect();
        await inject(conn, "CloseWithError", null, false);
        const closed = await life.until("close", 1);
        assert.equal(closed.arg, undefined);
        assert.equal(life.count("reconnecting"), 0);
        assert.equal(conn.state, HubConnectionState.Disconnected);
      });

      if (pair.transport !== "LongPolling") {
        // Long Polling has no server timeout (inherent keep-alive), so a stall is not detectable there.
        it("Stall beyond serverTimeout: the client times out and reconnects", async () => {
          const client = await connect({ serverTimeoutMs: SHORT_SERVER_TIMEOUT_MS });
          const error = await expectReconnect(client, () => inject(client.conn, "Stall", SHORT_SERVER_TIMEOUT_MS * 4));
          assert.equal(error?.message, "Server timeout elapsed without receiving a message from the server.");
          await client.conn.stop();
        });
      }

      it("SendMalformed: the client fails with a protocol error, then reconnects", async () => {
        const client = await connect();
        const error = await expectReconnect(client, () => inject(client.conn, "SendMalformed"));
        assert.ok(error instanceof Error, `the reconnect reason is the parse error, got ${error}`);
        assert.doesNotMatch(error.message, /unknown error|Server timeout/);
        await client.conn.stop();
      });

      it("SendUnknownType: the message is ignored and the connection stays up", async () => {
        const { conn, life } = await connect();
        const id = conn.connectionId;
        await conn.invoke("SendUnknownType");
        assert.equal(await conn.invoke("Echo", "still connected"), "still connected");
        assert.equal(conn.state, HubConnectionState.Connected);
        assert.equal(conn.connectionId, id);
        assert.deepEqual(life.events.items, [], "no lifecycle event");
        await conn.stop();
      });

      it("group membership does not survive a reconnect (it is a new connection)", async () => {
        const client = await connect();
        const other = await pool.open(hub.url("/hub"), pair);
        const group = `reconnect-group-${pair.label}`;
        const probe = new Collector();
        client.conn.on("groupProbe", probe.handler);
        await client.conn.invoke("JoinGroup", group);
        await expectReconnect(client, () => inject(client.conn, "DropTransport"));
        await other.invoke("SendToGroup", group, "groupProbe", "to the old connection");
        // Had the new connection been a member, the group message would have been queued first.
        await client.conn.invoke("SendToCaller", "groupProbe", "direct");
        await probe.until(1, "the direct message");
        assert.deepEqual(probe.items, [["direct"]]);
        await client.conn.stop();
        await other.stop();
      });

      it("FailNextNegotiations during reconnect: one attempt fails, the next succeeds", async () => {
        const client = await connect();
        await client.conn.invoke("FailNextNegotiations", 1, 500);
        await expectReconnect(client, () => inject(client.conn, "DropTransport"));
        const counts = client.policy.contexts.map((c) => c.previousRetryCount);
        assert.deepEqual(counts, [0, 1], "the policy saw the drop, then one failed attempt");
        assert.match(client.policy.contexts[1].retryReason.message, /Status code '500'/);
        await client.conn.stop();
      });
    });
  }
});
