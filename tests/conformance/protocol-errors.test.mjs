// What the hub answers when the client breaks the protocol's rules: handshake errors and messages
// over the size limit, with ASP.NET's texts.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HubConnectionState, JsonHubProtocol, MessageType } from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { hubFixture } from "./lib/fixture.mjs";
import { DisguisedProtocol } from "./lib/protocol-wrappers.mjs";
import { PAIRS } from "./lib/connections.mjs";
import { Lifecycle, withTimeout } from "./lib/waiting.mjs";

const MAX_MESSAGE_BYTES = 4096;

const officialProtocol = (name) => (name === "messagepack" ? new MessagePackHubProtocol() : new JsonHubProtocol());

describe("protocol errors", () => {
  const hub = hubFixture(["--max-message-bytes", String(MAX_MESSAGE_BYTES)]);
  const { pool } = hub;

  // Handshake errors over Server-Sent Events are left out: the official client 10.0.11 throws an
  // uncaught exception from its EventSource handler there, which would end the test process.
  for (const pair of PAIRS.filter((p) => p.transport !== "ServerSentEvents")) {
    it(`${pair.label}: an unknown protocol name gets ASP.NET's handshake error`, async () => {
      const conn = pool.build(hub.url("/hub"), {
        transport: pair.transport,
        hubProtocol: new DisguisedProtocol(officialProtocol(pair.protocol), { name: "foo" }),
      });
      const life = new Lifecycle(conn);
      await assert.rejects(withTimeout(conn.start(), "start"), {
        message: "Server returned handshake error: The protocol 'foo' is not supported.",
      });
      assert.equal(conn.state, HubConnectionState.Disconnected);
      assert.equal(life.count("close"), 0, "a start that fails fires no onclose");
    });
  }

  for (const protocol of ["json", "messagepack"]) {
    // The client sends its protocol's version only with stateful reconnect over WebSockets (else 1).
    it(`WebSockets/${protocol}: an unsupported protocol version gets ASP.NET's handshake error`, async () => {
      const conn = pool.build(hub.url("/hub"), {
        transport: "WebSockets",
        stateful: true,
        hubProtocol: new DisguisedProtocol(officialProtocol(protocol), { version: 3 }),
      });
      await assert.rejects(withTimeout(conn.start(), "start"), {
        message: `Server returned handshake error: The server does not support version 3 of the '${protocol}' protocol.`,
      });
      assert.equal(conn.state, HubConnectionState.Disconnected);
    });
  }

  for (const pair of PAIRS) {
    it(`${pair.label}: a message over --max-message-bytes ends the connection with ASP.NET's Close, reconnect allowed`, async () => {
      const conn = pool.build(hub.url("/hub"), { ...pair, retryPolicy: [0, 0], recording: true });
      const life = new Lifecycle(conn);
      await withTimeout(conn.start(), "start");
      const oldId = conn.connectionId;
      const fits = "y".repeat(MAX_MESSAGE_BYTES - 1000);
      assert.equal(await conn.invoke("Echo", fits), fits, "a message under the limit passes");

      const tooBig = conn.invoke("Echo", "z".repeat(MAX_MESSAGE_BYTES * 2));
      await assert.rejects(withTimeout(tooBig, "oversized Echo to fail"));
      // ASP.NET (no detailed errors) ends a connection whose message is too large with
      // Close{error: "Connection closed with an error.", allowReconnect: true}: the hub did not Abort() it.
      const close = await conn.recording.received.until((m) => m.type === MessageType.Close, "the hub's Close message");
      assert.deepEqual(
        { error: close?.error, allowReconnect: close?.allowReconnect },
        { error: "Connection closed with an error.", allowReconnect: true },
      );
      const reconnecting = await life.until("reconnecting", 1);
      assert.equal(reconnecting.arg?.message, "Server returned an error on close: Connection closed with an error.");
      const reconnected = await life.until("reconnected", 1);
      assert.notEqual(reconnected.arg, oldId);
      assert.equal(await conn.invoke("Echo", fits), fits, "the new connection works");
      await conn.stop();
    });
  }
});
