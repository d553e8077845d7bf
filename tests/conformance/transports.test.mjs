// The hub's methods through the official client, once per transport x protocol pair.
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { HubConnectionState, JsonHubProtocol, MessageType, Subject } from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { hubFixture } from "./lib/fixture.mjs";
import { PAIRS } from "./lib/connections.mjs";
import { Collector, streamToArray, subscribe, withTimeout } from "./lib/waiting.mjs";

const ECHO_VALUES = {
  "empty string": "",
  "ascii string": "hello",
  "unicode string": "h\u00e9llo w\u00f6rld \u2014 \u2713 \u65e5\u672c\u8a9e \u{1F600}",
  "string with U+001E": "a\u001eb\u001e",
  "string with quotes, backslash, newline, NUL": 'say "hi"\\\n\t\u0000end',
  zero: 0,
  "negative integer": -17,
  "max safe integer": Number.MAX_SAFE_INTEGER,
  "min safe integer": Number.MIN_SAFE_INTEGER,
  fraction: 3.25,
  "tiny float": 1.5e-300,
  "huge float": 1.5e300,
  true: true,
  false: false,
  null: null,
  object: { name: "x", n: 1, nested: { list: [1, 2, 3], flag: false, none: null } },
  "empty object": {},
  array: [1, "two", null, [3, [4]], { five: 5 }],
  "empty array": [],
};

const hubError = (method, message) => `An unexpected error occurred invoking '${method}' on the server. HubException: ${message}`;

describe("hub methods on every transport x protocol pair", () => {
  const hub = hubFixture();
  const { pool } = hub;

  for (const pair of PAIRS) {
    describe(pair.label, () => {
      /** The pair's main connection; tests that need a second one open it. */
      let conn;
      const open = (extra) => pool.open(hub.url("/hub"), { ...pair, ...extra });
      before(async () => {
        conn = await open();
      });

      it("Echo returns every value unchanged", async () => {
        const names = Object.keys(ECHO_VALUES);
        const results = await Promise.all(names.map((name) => conn.invoke("Echo", ECHO_VALUES[name])));
        names.forEach((name, i) => assert.deepEqual(results[i], ECHO_VALUES[name], `Echo(${name})`));
      });

      if (pair.protocol === "messagepack") {
        it("Echo returns MessagePack binary and timestamp values unchanged", async () => {
          const bytes = new Uint8Array([0, 1, 2, 127, 128, 255]);
          assert.deepEqual(await conn.invoke("Echo", bytes), bytes, "bin");
          const when = new Date(Date.UTC(2024, 1, 29, 12, 34, 56, 789));
          assert.deepEqual(await conn.invoke("Echo", when), when, "timestamp extension");
          assert.deepEqual(await conn.invoke("Echo", { blob: bytes, list: [when] }), { blob: bytes, list: [when] }, "nested");
        });
      }

      it("Echo carries a 1 MB string (and 1 MB of bytes with MessagePack)", async () => {
        const big = "\u00e9x\u001e".repeat(350_000); // multi-byte UTF-8 and record separators
        assert.equal(await withTimeout(conn.invoke("Echo", big), "1 MB Echo", 30_000), big);
        if (pair.protocol === "messagepack") {
          const bytes = new Uint8Array(1 << 20).map((_, i) => i % 251);
          assert.deepEqual(await withTimeout(conn.invoke("Echo", bytes), "1 MB binary Echo", 30_000), bytes);
        }
      });

      it("hub method names resolve case-insensitively", async () => {
        assert.equal(await conn.invoke("eCHO", "any case"), "any case");
      });

      it("Add returns the sum of integers and of fractions", async () => {
        assert.equal(await conn.invoke("Add", 2, 3), 5);
        assert.equal(await conn.invoke("Add", -7, 7), 0);
        assert.equal(await conn.invoke("Add", 2 ** 31, 2 ** 31), 2 ** 32);
        assert.equal(await conn.invoke("Add", 1.5, 2.25), 3.75);
      });

      it("Fail rejects with ASP.NET's HubException text and the connection stays up", async () => {
        await assert.rejects(conn.invoke("Fail", "it broke"), { message: hubError("Fail", "it broke") });
        assert.equal(conn.state, HubConnectionState.Connected);
        assert.equal(await conn.invoke("Echo", "still here"), "still here");
      });

      it("an unknown method rejects with ASP.NET's 'Method does not exist' text", async () => {
        await assert.rejects(conn.invoke("Nope", 1), {
          message: "Failed to invoke 'Nope' due to an error on the server. HubException: Method does not exist.",
        });
        assert.equal(conn.state, HubConnectionState.Connected);
      });

      it("wrong arguments fail with ASP.NET's binding error text", async () => {
        // ASP.NET names only the method: the binding exception is no HubException, so no details.
        const bindingError = (method) => ({ message: `Failed to invoke '${method}' due to an error on the server.` });
        await assert.rejects(conn.invoke("Add", 1), bindingError("Add"));
        await assert.rejects(conn.invoke("Add", 1, 2, 3), bindingError("Add"));
        await assert.rejects(conn.invoke("Delay", "soon"), bindingError("Delay"));
        assert.equal(conn.state, HubConnectionState.Connected);
      });

      it("invoke of a streaming method and stream of a plain method fail with ASP.NET's texts", async () => {
        await assert.rejects(conn.invoke("Counter", 3, 0), {
          message: "The client attempted to invoke the streaming 'Counter' method with a non-streaming invocation.",
        });
        await assert.rejects(streamToArray(conn.stream("Echo", 1)), {
          message: "The client attempted to invoke the non-streaming 'Echo' method with a streaming invocation.",
        });
      });

      it("non-streaming invocations run one at a time, like ASP.NET's default", async () => {
        const finished = [];
        const [delayed] = await Promise.all([
          conn.invoke("Delay", 200).then((ms) => (finished.push("Delay"), ms)),
          conn.invoke("Echo", "quick").then(() => finished.push("Echo")),
        ]);
        assert.equal(delayed, 200, "Delay returns its argument");
        assert.deepEqual(finished, ["Delay", "Echo"], "Echo waits for the Delay sent before it");
      });

      it("a running stream does not hold up invocations", async () => {
        const counter = subscribe(conn.stream("Counter", 1000, 10));
        try {
          await counter.items.until(1, "first Counter item");
          assert.equal(await conn.invoke("Echo", "meanwhile"), "meanwhile");
          assert.ok(!counter.done, "the stream is still running");
        } finally {
          counter.dispose();
        }
      });

      it("send runs the hub method without waiting for a result", async () => {
        const probe = new Collector();
        conn.on("sendProbe", probe.handler);
        try {
          await conn.send("SendToCaller", "sendProbe", "via send", 7);
          const [args] = await probe.until(1, "sendProbe invocation");
          assert.deepEqual(args, ["via send", 7]);
        } finally {
          conn.off("sendProbe");
        }
      });

      it("SendToCaller invokes the caller's handler with the arguments and returns null", async () => {
        const probe = new Collector();
        conn.on("callerProbe", probe.handler);
        try {
          assert.equal(await conn.invoke("SendToCaller", "callerProbe", "a", 2, { x: [1] }), null);
          assert.equal(await conn.invoke("SendToCaller", "callerProbe"), null);
          await probe.until(2, "callerProbe invocations");
          assert.deepEqual(probe.items, [["a", 2, { x: [1] }], []], "with arguments, then without any");
        } finally {
          conn.off("callerProbe");
        }
      });

      it("Broadcast reaches two connections", async () => {
        const other = await open();
        const method = `broadcastProbe-${pair.label}`; // other suites' connections share the hub
        const mine = new Collector();
        const theirs = new Collector();
        conn.on(method, mine.handler);
        other.on(method, theirs.handler);
        try {
          assert.equal(await conn.invoke("Broadcast", method, "to all", 1), null);
          assert.deepEqual((await mine.until(1, "broadcast on the caller"))[0], ["to all", 1]);
          assert.deepEqual((await theirs.until(1, "broadcast on the other connection"))[0], ["to all", 1]);
        } finally {
          conn.off(method);
          await other.stop();
        }
      });

      it("Counter streams 0..n-1, then completes", async () => {
        assert.deepEqual(await streamToArray(conn.stream("Counter", 5, 0)), [0, 1, 2, 3, 4]);
        assert.deepEqual(await streamToArray(conn.stream("Counter", 0, 0)), [], "an empty stream just completes");
      });

      it("disposing a Counter subscription stops the stream on the hub", async () => {
        // The recording protocol shows what the hub sends after the client's CancelInvocation.
        const rec = await open({ recording: true });
        const seen = rec.recording.received;
        const counter = subscribe(rec.stream("Counter", 1000, 10));
        await counter.items.until(3, "3 stream items");
        counter.dispose();
        const firstItem = await seen.until((m) => m.type === MessageType.StreamItem, "a StreamItem");
        const streamId = firstItem.invocationId;
        // ASP.NET ends a cancelled stream with a Completion that has neither result nor error.
        const completion = await seen.until(
          (m) => m.type === MessageType.Completion && m.invocationId === streamId,
          "the hub's Completion of the cancelled stream",
        );
        assert.equal(completion.error, undefined, "a cancelled stream completes without error");
        assert.equal(completion.result, undefined, "a cancelled stream completes without result");
        // A round trip after the Completion: nothing more for that stream may arrive in between.
        assert.equal(await rec.invoke("Echo", "after cancel"), "after cancel");
        const afterCompletion = seen.items.slice(seen.items.indexOf(completion) + 1);
        assert.deepEqual(afterCompletion.filter((m) => m.invocationId === streamId), []);
        const items = seen.items.filter((m) => m.type === MessageType.StreamItem && m.invocationId === streamId);
        assert.ok(items.length < 1000, `the hub stopped early (sent ${items.length} of 1000 items)`);
        assert.deepEqual(items.map((m) => m.item), [...items.keys()], "items in order from 0");
        assert.ok(!counter.done, "a disposed subscription sees no completion");
        await rec.stop();
      });

      it("Sum totals the numbers of an upload stream", async () => {
        const numbers = new Subject();
        const total = conn.invoke("Sum", numbers);
        for (let i = 1; i <= 10; i++) numbers.next(i);
        numbers.complete();
        assert.equal(await withTimeout(total, "Sum result"), 55);

        const nothing = new Subject();
        const zero = conn.invoke("Sum", nothing);
        nothing.complete();
        assert.equal(await withTimeout(zero, "Sum of an empty upload"), 0);
      });

      it("Sum rethrows an upload's error as HubException", async () => {
        const numbers = new Subject();
        const total = conn.invoke("Sum", numbers);
        numbers.next(1);
        numbers.error(new Error("upload broke"));
        await assert.rejects(withTimeout(total, "Sum failure"), { message: hubError("Sum", "upload broke") });
      });

      it("upload-stream invocations run alongside each other, not one at a time", async () => {
        // ASP.NET runs methods with stream parameters outside the one-at-a-time rule: the second Sum
        // must finish while the first one still waits for items.
        const first = new Subject();
        const second = new Subject();
        const firstTotal = conn.invoke("Sum", first);
        const secondTotal = conn.invoke("Sum", second);
        first.next(1);
        second.next(10);
        first.next(2);
        second.next(20);
        second.complete();
        assert.equal(await withTimeout(secondTotal, "the second Sum while the first is open"), 30);
        first.next(3);
        first.complete();
        assert.equal(await withTimeout(firstTotal, "the first Sum"), 6);
      });

      it("Sum without an upload stream fails with ASP.NET's stream-count text", async () => {
        await assert.rejects(conn.invoke("Sum"), { message: hubError("Sum", "Client sent 0 stream(s), Hub method expects 1.") });
      });

      it("UploadEcho streams back every uploaded item in order", async () => {
        const uploads = new Subject();
        const echoed = streamToArray(conn.stream("UploadEcho", uploads), "UploadEcho completion");
        const items = ["a", 1, { b: [2] }, null, "z\u001e", 2.5];
        for (const item of items) uploads.next(item);
        uploads.complete();
        assert.deepEqual(await echoed, items);
      });

      it("UploadEcho ends with the upload's error as a stream error", async () => {
        const uploads = new Subject();
        const echoed = subscribe(conn.stream("UploadEcho", uploads));
        uploads.next("before the error");
        uploads.error(new Error("upload broke"));
        await assert.rejects(withTimeout(echoed.ended, "UploadEcho error"), {
          message: "An error occurred on the server while streaming results. HubException: upload broke",
        });
        assert.deepEqual(echoed.items.items, ["before the error"], "items before the error are delivered first");
      });

      it("AskClient returns the value of the client's handler", async () => {
        conn.on("askDouble", (x) => x * 2);
        conn.on("askAsync", async (x) => ({ got: x, list: [x] }));
        conn.on("askNull", () => null);
        try {
          assert.equal(await conn.invoke("AskClient", "askDouble", 21), 42);
          assert.deepEqual(await conn.invoke("AskClient", "askAsync", "v"), { got: "v", list: ["v"] });
          assert.equal(await conn.invoke("AskClient", "askNull", 1), null, "null is a result");
        } finally {
          conn.off("askDouble");
          conn.off("askAsync");
          conn.off("askNull");
        }
      });

      it("AskClient rethrows a throwing handler's error as HubException", async () => {
        conn.on("askThrow", () => {
          throw new Error("handler refused");
        });
        try {
          // The official JS client reports a handler's exception as its toString(): "Error: <message>".
          await assert.rejects(conn.invoke("AskClient", "askThrow", 1), { message: hubError("AskClient", "Error: handler refused") });
        } finally {
          conn.off("askThrow");
        }
      });

      it("AskClient without a client handler or result fails with the client's 'no result' error", async () => {
        const noResult = { message: hubError("AskClient", "Client didn't provide a result.") };
        await assert.rejects(conn.invoke("AskClient", "noSuchHandler", 1), noResult);
        conn.on("askNothing", () => {});
        try {
          await assert.rejects(conn.invoke("AskClient", "askNothing", 1), noResult);
        } finally {
          conn.off("askNothing");
        }
      });

      it("JoinGroup, SendToGroup and LeaveGroup across two connections", async () => {
        const other = await open();
        const group = `group-${pair.label}`;
        const a = new Collector();
        const b = new Collector();
        conn.on("groupProbe", a.handler);
        other.on("groupProbe", b.handler);
        try {
          await conn.invoke("JoinGroup", group);
          await other.invoke("SendToGroup", group, "groupProbe", 1); // member: conn only
          await a.until(1, "group message 1 on the member");

          await other.invoke("JoinGroup", group);
          await conn.invoke("SendToGroup", group, "groupProbe", 2); // members: both
          await a.until(2, "group message 2 on the first member");
          await b.until(1, "group message 2 on the second member");

          await conn.invoke("LeaveGroup", group);
          await other.invoke("SendToGroup", group, "groupProbe", 3); // member: other only
          await b.until(2, "group message 3 on the remaining member");
          // Had conn still been a member, 3 would have been queued to it before this message.
          await conn.invoke("SendToCaller", "groupProbe", 4);
          await a.until(3, "direct message 4");

          assert.deepEqual(a.items, [[1], [2], [4]], "messages seen by the connection that left");
          assert.deepEqual(b.items, [[2], [3]], "messages seen by the connection that joined late");
        } finally {
          conn.off("groupProbe");
          await other.stop();
        }
      });

      it("SendRaw writes its frames verbatim: several messages in one frame all arrive", async () => {
        const probe = new Collector();
        conn.on("rawProbe", probe.handler);
        try {
          // One frame: Invocation, Ping, Invocation, encoded by the official protocol itself.
          const messages = [
            { type: MessageType.Invocation, target: "rawProbe", arguments: ["first"], headers: {} },
            { type: MessageType.Ping },
            { type: MessageType.Invocation, target: "rawProbe", arguments: ["second", 2], headers: {} },
          ];
          const protocol = pair.protocol === "messagepack" ? new MessagePackHubProtocol() : new JsonHubProtocol();
          const encoded = messages.map((m) => protocol.writeMessage(m));
          const frame =
            pair.protocol === "messagepack"
              ? Buffer.concat(encoded.map((b) => Buffer.from(b))).toString("base64")
              : encoded.join("");
          await conn.invoke("SendRaw", [frame], pair.protocol === "messagepack");
          await probe.until(2, "both invocations of the raw frame");
          assert.deepEqual(probe.items, [["first"], ["second", 2]]);
        } finally {
          conn.off("rawProbe");
        }
      });

      it("GetConnectionId equals connection.connectionId", async () => {
        assert.equal(typeof conn.connectionId, "string");
        assert.ok(conn.connectionId.length > 0);
        assert.equal(await conn.invoke("GetConnectionId"), conn.connectionId);
      });

      it("GetRequestInfo reports the transport, protocol and handshake in use", async () => {
        const info = await conn.invoke("GetRequestInfo");
        assert.equal(info.transport, pair.transport);
        assert.equal(info.protocol, pair.protocol);
        assert.equal(info.handshakeVersion, 1, "without stateful reconnect the client sends version 1");
        assert.equal(info.negotiate.query.negotiateVersion, "1");
        assert.equal(typeof info.connect.query.id, "string", "the transport connects with ?id=<token>");
        assert.notEqual(info.connect.query.id, conn.connectionId, "negotiate v1: the token is not the connection id");
        assert.equal(typeof info.connect.cookies["hub-affinity"], "string", "the negotiate cookie comes back on connect");
      });

      it("Flood delivers every message in order", async () => {
        const count = 2000;
        const received = [];
        conn.on("Flood", (i, payload) => received.push({ i, payload }));
        try {
          assert.equal(await withTimeout(conn.invoke("Flood", count, 100), "Flood result", 30_000), count);
          // The hub writes the Completion after the last message; handlers ran in arrival order.
          assert.equal(received.length, count);
          received.forEach(({ i, payload }, index) => {
            if (i !== index) assert.fail(`message #${index} carries index ${i}`);
            if (typeof payload !== "string" || payload.length !== 100 || !/^[\x20-\x7e]*$/.test(payload)) {
              assert.fail(`message #${index} payload is not 100 ASCII characters: ${JSON.stringify(payload)}`);
            }
          });
        } finally {
          conn.off("Flood");
        }
      });
    });
  }

  it("MessagePack over Server-Sent Events: start fails, the hub offers SSE for text only", async () => {
    const conn = pool.build(hub.url("/hub"), { transport: "ServerSentEvents", protocol: "messagepack" });
    await assert.rejects(withTimeout(conn.start(), "start"), /'ServerSentEvents' does not support Binary/);
    assert.equal(conn.state, HubConnectionState.Disconnected);
  });
});
