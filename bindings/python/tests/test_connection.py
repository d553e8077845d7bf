"""Connection options and failures: authentication, headers, reconnect (automatic, policy,
stateful), negotiation errors, logging, lifetime of callbacks."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time

import pytest

from signalr_native import (
    ConnectionClosedError,
    HubConnectionBuilder,
    HubConnectionState,
    InvalidArgumentError,
    NegotiationError,
    RetryContext,
    SignalRError,
    SignalRTimeoutError,
    UnauthorizedError,
)
from signalr_native._callbacks import handles


def drop(c):
    """Asks the hub to cut the transport. On Long Polling the POST that carries the request may
    itself be cut by the drop it causes, so the send may fail; the message was delivered."""
    try:
        c.send("DropTransport")
    except ConnectionClosedError:
        pass


async def drop_async(c):
    try:
        await c.send("DropTransport")
    except ConnectionClosedError:
        pass


def test_access_token_and_headers(builder, setup):
    tokens = []

    def factory():
        tokens.append(1)
        return "alice"

    with builder("/auth-hub", access_token_factory=factory, headers={"X-Test": "42"}).build() as c:
        c.start()
        assert c.invoke("GetUser") == "alice"
        info = c.invoke("GetRequestInfo")
        assert info["negotiate"]["headers"]["x-test"] == "42"
        assert tokens  # called before negotiate and connect


def test_async_access_token_factory(builder, run):
    async def token():
        await asyncio.sleep(0)
        return "bob"

    async def main():
        async with builder("/auth-hub", access_token_factory=token).build_async() as c:
            await c.start()
            assert await c.invoke("GetUser") == "bob"

    run(main())


def test_unauthorized(builder):
    with builder("/auth-hub").build() as c:
        with pytest.raises(UnauthorizedError):
            c.start()
        assert c.state == HubConnectionState.DISCONNECTED
    with builder("/auth-hub", access_token_factory=lambda: 1 / 0).build() as c:
        with pytest.raises(SignalRError, match="ZeroDivisionError"):
            c.start()


def test_redirect_with_token(builder):
    with builder("/redirect-hub").build() as c:
        c.start()
        assert c.invoke("GetUser") == "redirected-user"


def test_negotiation_failure(hub):
    with HubConnectionBuilder().with_url(hub.url + "/missing").build() as c:
        with pytest.raises(NegotiationError):
            c.start()
    with pytest.raises(InvalidArgumentError):
        HubConnectionBuilder().with_url("not a url").build()
    with pytest.raises(ValueError):
        HubConnectionBuilder().with_url(hub.url + "/hub", transport="carrier-pigeon")
    with pytest.raises(InvalidArgumentError, match="NUL"):
        HubConnectionBuilder().with_url(hub.url + "/hub", headers={"X-A": "1\0injected"}).build()


def test_skip_negotiation(hub):
    with HubConnectionBuilder().with_url(hub.url + "/hub", transport="websockets", skip_negotiation=True).build() as c:
        c.start()
        assert c.connection_id is None
        assert c.invoke("GetRequestInfo")["negotiate"] is None


def test_automatic_reconnect(builder, events):
    reconnecting, reconnected = events(), events()
    with builder().with_automatic_reconnect([0, 0.1]).build() as c:
        c.on_reconnecting(reconnecting)
        c.on_reconnected(reconnected)
        c.start()
        first = c.connection_id
        drop(c)
        assert isinstance(reconnecting.wait(1)[0], SignalRError)
        new_id = reconnected.wait(1)[0]
        assert new_id and new_id != first
        assert c.state == HubConnectionState.CONNECTED
        assert c.connection_id == new_id
        assert c.invoke("Echo", "after") == "after"


def test_reconnect_policy_gives_up(spawn_hub, setup, events):
    hub = spawn_hub()  # its own hub: the failure counters below are global to a hub
    transport, protocol = setup
    contexts = []
    closed = events()

    def policy(context: RetryContext):
        contexts.append(context)
        return 0 if context.previous_retry_count < 2 else None

    builder = (
        HubConnectionBuilder()
        .with_url(hub.url + "/hub", transport=transport)
        .with_hub_protocol(protocol)
        .with_automatic_reconnect(policy)
    )
    with builder.build() as c:
        c.on_close(closed)
        c.start()
        name = c.invoke("GetRequestInfo")["transport"]
        c.invoke("FailNextNegotiations", 10, 500)
        c.invoke("FailNextConnects", name, 10)
        drop(c)
        error = closed.wait(1)[0]
        assert isinstance(error, SignalRError)
        assert [ctx.previous_retry_count for ctx in contexts] == [0, 1, 2]
        assert all(ctx.retry_reason for ctx in contexts)
        assert c.state == HubConnectionState.DISCONNECTED


def test_policy_object_and_async_callbacks(builder, run):
    class Policy:
        def __init__(self):
            self.calls = 0

        def next_retry_delay(self, context):
            self.calls += 1
            return 0.0

    policy = Policy()

    async def main():
        reconnected = asyncio.Event()

        async def on_reconnected(connection_id):
            reconnected.set()

        async with builder().with_automatic_reconnect(policy).build_async() as c:
            c.on_reconnected(on_reconnected)
            await c.start()
            await drop_async(c)
            await asyncio.wait_for(reconnected.wait(), 20)
            assert await c.invoke("Echo", 5) == 5

    run(main())
    assert policy.calls >= 1


@pytest.mark.parametrize("protocol", ["json", "messagepack"])
def test_stateful_reconnect_keeps_the_connection(hub, events, protocol):
    # Stateful reconnect exists on WebSockets only (the hub turns it off over SSE and Long Polling).
    reconnecting = events()
    builder = (
        HubConnectionBuilder()
        .with_url(hub.url + "/hub", transport="websockets")
        .with_hub_protocol(protocol)
        .with_stateful_reconnect(buffer_size=1 << 20)
    )
    with builder.build() as c:
        c.on_reconnecting(reconnecting)
        c.start()
        first = c.connection_id
        assert c.invoke("GetRequestInfo")["handshakeVersion"] == 2
        c.invoke("Record", 1)
        drop(c)
        c.invoke("Record", 2)
        assert c.invoke("GetRecorded") == [1, 2]
        assert c.connection_id == first
        assert reconnecting.items == []


def test_logging_bridge(builder, caplog):
    with caplog.at_level(logging.DEBUG):
        with builder().configure_logging(logging.DEBUG).build() as c:
            c.start()
            c.invoke("SendToCaller", "NobodyListens")  # the library warns about it
            c.invoke("Echo", 1)
        # Records reach the callback asynchronously, through the library's log thread.
        deadline = time.monotonic() + 10
        while True:
            ours = [r for r in caplog.records if r.name.startswith("signalr_native.")]
            found = any("NobodyListens" in r.getMessage() and r.levelno == logging.WARNING for r in ours)
            if found or time.monotonic() > deadline:
                break
            time.sleep(0.01)
    assert found, [(r.name, r.getMessage()) for r in ours]
    HubConnectionBuilder().configure_logging(None)  # off again


def test_callbacks_are_released(builder):
    before = len(handles)
    c = builder().build()
    c.on("A", lambda: None)
    c.on_close(lambda e: None)
    c.start()
    assert len(handles) > before
    c.invoke("Echo", 1)
    c.close()
    assert len(handles) == before
    # A connection that is only dropped is freed by the garbage collector.
    d = builder().build()
    d.start()
    del d
    gc.collect()
    assert len(handles) == before


def test_close_inside_a_handler(builder, events):
    done = events()
    c = builder().build()

    def handler():
        c.close()  # returns at once inside a callback; teardown ends when the handler returns
        done(c.closed)

    c.on("CloseMe", handler)
    c.start()
    c.send("SendToCaller", "CloseMe")
    assert done.wait(1) == [True]
    with pytest.raises(ValueError):
        c.invoke("Echo", 1)


def test_many_threads_share_a_connection(builder):
    with builder().build() as c:
        c.start()
        errors = []

        def worker(i):
            try:
                for j in range(10):
                    assert c.invoke("Echo", [i, j]) == [i, j]
                assert list(c.stream("Counter", 3, 0)) == [0, 1, 2]
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []


def test_stop_cancels_pending_invocations(builder, run):
    async def main():
        async with builder().build_async() as c:
            await c.start()
            pending = asyncio.ensure_future(c.invoke("Delay", 10000))
            assert await c.invoke("Echo", 1) == 1
            await c.stop()
            with pytest.raises(ConnectionClosedError):
                await pending

    run(main())


def test_callback_thread_state_is_released(builder, events, monkeypatch):
    # The thread state kept on the connection's callback thread (see _callbacks.pin_thread) is
    # given back when the connection is torn down.
    from signalr_native import _callbacks

    released = []
    real = _callbacks._gil_release
    monkeypatch.setattr(_callbacks, "_gil_release", lambda state: (released.append(state), real(state)))
    got = events()
    c = builder().build()
    c.on("Message", got)
    c.start()
    c.invoke("SendToCaller", "Message", 1)
    got.wait(1)
    c.close()
    assert len(released) == 1


def test_exit_with_open_connections(hub):
    # Connections left open (blocking and asyncio, with handlers and logging) are closed by the
    # atexit hook; the interpreter exits cleanly.
    script = f"""
import asyncio, logging, signalr_native
from signalr_native import HubConnectionBuilder
logging.basicConfig(level=logging.WARNING)
b = HubConnectionBuilder().with_url({hub.url + "/hub"!r}).configure_logging(logging.INFO)
c = b.build()
c.on("Message", lambda *a: None)
c.start()
c.invoke("SendToCaller", "Message", 1)
keep = [c]
async def main():
    a = b.build_async()
    a.on("Message", lambda *a: None)
    await a.start()
    keep.append(a)
asyncio.run(main())
print("done")
"""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "done\n"


def test_trusted_certificate(spawn_hub, tmp_path):
    cert = tmp_path / "hub.pem"
    hub = spawn_hub("--tls", str(cert))
    assert hub.url.startswith("https://")
    url = hub.url + "/hub"
    with HubConnectionBuilder().with_url(url).build() as c:
        with pytest.raises(SignalRError):  # a self-signed certificate nobody trusts
            c.start()
    for trusted in (cert.read_bytes(), str(cert)):  # PEM bytes, or a file path
        with HubConnectionBuilder().with_url(url).with_trusted_certificate(trusted).build() as c:
            c.start()
            assert c.invoke("Echo", "over TLS") == "over TLS"


def test_server_timeout(hub, events):
    closed = events()
    builder = (
        HubConnectionBuilder()
        .with_url(hub.url + "/hub", transport="websockets")
        .with_server_timeout(0.5)
        .with_keep_alive_interval(0.2)
    )
    with builder.build() as c:
        c.on_close(closed)
        c.start()
        c.send("Stall", 3000)  # the hub goes silent, pings included
        error = closed.wait(1)[0]
        assert isinstance(error, SignalRTimeoutError), error
        assert "Server timeout" in str(error)
