// Negotiate-level behaviour: bearer tokens, redirects, failing negotiates and transport fallback.
// FailNextNegotiations/FailNextConnects act on the whole hub process, so the tests of this file
// run one after the other against a hub of their own.
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { HubConnectionState } from "@microsoft/signalr";
import { hubFixture } from "./lib/fixture.mjs";
import { PAIRS } from "./lib/connections.mjs";
import { withTimeout } from "./lib/waiting.mjs";

describe("negotiation", () => {
  const hub = hubFixture();
  const { pool } = hub;
  /** A connection on /hub that triggers the hub-wide fault injections. */
  let control;
  before(async () => {
    control = await pool.open(hub.url("/hub"), { transport: "WebSockets", protocol: "json" });
  });

  for (const pair of PAIRS) {
    describe(pair.label, () => {
      it("/auth-hub without a token: start fails with 401", async () => {
        const conn = pool.build(hub.url("/auth-hub"), pair);
        await assert.rejects(withTimeout(conn.start(), "start"), /Status code '401'/);
        assert.equal(conn.state, HubConnectionState.Disconnected);
      });

      it("/auth-hub with accessTokenFactory: the token is the user", async () => {
        const token = `user-${pair.transport}-${pair.protocol}`;
        let calls = 0;
        const conn = await pool.open(hub.url("/auth-hub"), {
          ...pair,
          accessTokenFactory: () => {
            calls++;
            return token;
          },
        });
        assert.equal(await conn.invoke("GetUser"), token);
        assert.ok(calls >= 1, "the token provider was used");
        assert.equal(await conn.invoke("Echo", "authorized"), "authorized");
        await conn.stop();
      });

      it("headers set on the client reach negotiate, connect and sends", async () => {
        const conn = await pool.open(hub.url("/hub"), { ...pair, headers: { "X-Conformance": pair.label } });
        const info = await conn.invoke("GetRequestInfo");
        assert.equal(info.negotiate.headers["x-conformance"], pair.label);
        assert.equal(info.connect.headers["x-conformance"], pair.label);
        if (pair.transport === "WebSockets") {
          assert.equal(info.send, null, "WebSockets sends no POST");
        } else {
          assert.equal(info.send.headers["x-conformance"], pair.label, "the POST that carried this invocation");
        }
        await conn.stop();
      });

      it("/redirect-hub lands on /auth-hub as 'redirected-user'", async () => {
        const conn = await pool.open(hub.url("/redirect-hub"), pair);
        assert.equal(await conn.invoke("GetUser"), "redirected-user");
        assert.equal(await conn.invoke("GetConnectionId"), conn.connectionId);
        const info = await conn.invoke("GetRequestInfo");
        assert.equal(info.transport, pair.transport);
        await conn.stop();
      });
    });
  }

  for (const protocol of ["json", "messagepack"]) {
    it(`WebSockets/${protocol} with skipNegotiation: the hub makes a connection without negotiate`, async () => {
      const conn = await pool.open(hub.url("/hub"), { transport: "WebSockets", protocol, skipNegotiation: true });
      assert.equal(conn.connectionId, null, "the client learns no id without negotiate");
      const info = await conn.invoke("GetRequestInfo");
      assert.equal(info.negotiate, null);
      assert.equal(info.connect.query.id, undefined);
      assert.equal(info.transport, "WebSockets");
      assert.equal(typeof (await conn.invoke("GetConnectionId")), "string");
      assert.equal(await conn.invoke("Echo", "no negotiate"), "no negotiate");
      await conn.stop();
    });
  }

  it("/auth-hub over WebSockets: the upgrade request needs the token too, not only negotiate", async () => {
    let calls = 0;
    // A token for negotiate only: the client asks the factory again for the WebSocket request.
    // (Its HTTP transports reuse the negotiate token, so only WebSockets can show this.)
    const conn = pool.build(hub.url("/auth-hub"), { transport: "WebSockets", protocol: "json", accessTokenFactory: () => (calls++ === 0 ? "alice" : "") });
    await assert.rejects(withTimeout(conn.start(), "start"), /WebSockets failed/);
    assert.equal(calls, 2, "the factory was asked for negotiate and for the WebSocket");
  });

  it("/hub needs no token: GetUser is null", async () => {
    assert.equal(await control.invoke("GetUser"), null);
  });

  it("a redirect loop fails start after the client's 100-redirect limit", async () => {
    const conn = pool.build(hub.url("/redirect-hub") + "?loop=1", { protocol: "json" });
    await assert.rejects(withTimeout(conn.start(), "start"), /Negotiate redirection limit exceeded/);
  });

  for (const status of [500, 401]) {
    it(`FailNextNegotiations(1, ${status}): one start fails, the next succeeds`, async () => {
      await control.invoke("FailNextNegotiations", 1, status);
      const conn = pool.build(hub.url("/hub"), { transport: "WebSockets", protocol: "json" });
      await assert.rejects(withTimeout(conn.start(), "failing start"), new RegExp(`Status code '${status}'`));
      await withTimeout(conn.start(), "second start");
      assert.equal(await conn.invoke("GetConnectionId"), conn.connectionId);
      await conn.stop();
    });
  }

  it("FailNextConnects(WebSockets, 1): the client negotiates again and falls back to Server-Sent Events", async () => {
    await control.invoke("FailNextConnects", "WebSockets", 1);
    const conn = await pool.open(hub.url("/hub"), { protocol: "json" }); // any transport, server's order
    const info = await conn.invoke("GetRequestInfo");
    assert.equal(info.transport, "ServerSentEvents");
    assert.equal(await conn.invoke("GetConnectionId"), conn.connectionId);
    await conn.stop();
  });

  it("FailNextConnects(LongPolling, 1) with MessagePack: the only transport fails once, the next start works", async () => {
    await control.invoke("FailNextConnects", "LongPolling", 1);
    const conn = pool.build(hub.url("/hub"), { transport: "LongPolling", protocol: "messagepack" });
    await assert.rejects(withTimeout(conn.start(), "failing start"), /LongPolling failed/);
    await withTimeout(conn.start(), "second start");
    assert.equal((await conn.invoke("GetRequestInfo")).transport, "LongPolling");
    await conn.stop();
  });

  it("without a transport restriction the client takes the hub's first offer, WebSockets", async () => {
    const json = await pool.open(hub.url("/hub"), { protocol: "json" });
    const msgpack = await pool.open(hub.url("/hub"), { protocol: "messagepack" });
    assert.equal((await json.invoke("GetRequestInfo")).transport, "WebSockets");
    assert.equal((await msgpack.invoke("GetRequestInfo")).transport, "WebSockets");
    await json.stop();
    await msgpack.stop();
  });
});
