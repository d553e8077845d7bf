"""The blocking HubConnection against the test hub, over every transport × protocol."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time

import pytest

from signalr_native import (
    CanceledError,
    ConnectionClosedError,
    HttpTransportType,
    HubConnection,
    HubConnectionState,
    HubError,
    InvalidArgumentError,
    InvalidStateError,
    SignalRTimeoutError,
    WouldDeadlockError,
)

TRANSPORTS = {
    "websockets": HttpTransportType.WEB_SOCKETS,
    "server_sent_events": HttpTransportType.SERVER_SENT_EVENTS,
    "long_polling": HttpTransportType.LONG_POLLING,
}
VALUES = [0, -7, 2**40, 1.5, "text", "ünïcødé ✓", True, None, [1, "two", [3]], {"a": {"b": [1, None]}}, [], {}]


def test_start_invoke_stop(builder, setup):
    with builder().build() as c:
        assert isinstance(c, HubConnection)
        assert c.state == HubConnectionState.DISCONNECTED
        assert c.transport == HttpTransportType.NONE
        c.start()
        assert c.state == HubConnectionState.CONNECTED
        assert c.transport == TRANSPORTS[setup[0]]
        assert c.connection_id and c.connection_id == c.invoke("GetConnectionId")
        for value in VALUES:
            assert c.invoke("Echo", value) == value
        assert c.invoke("Add", 2, 3) == 5
        assert c.invoke("add", 0.5, 1) == 1.5  # hub methods resolve case-insensitively
        info = c.invoke("GetRequestInfo")
        assert info["protocol"] == setup[1]
        assert c.invoke("Record", 1) is None
        c.stop()
        assert c.state == HubConnectionState.DISCONNECTED
        assert c.connection_id is None
    assert c.closed
    with pytest.raises(ValueError, match="closed"):
        c.invoke("Echo", 1)


def test_hub_errors(builder):
    with builder().build() as c:
        c.start()
        with pytest.raises(HubError) as e:
            c.invoke("Fail", "it broke")
        assert str(e.value) == "An unexpected error occurred invoking 'Fail' on the server. HubException: it broke"
        assert e.value.code_name == "SIGNALR_RESULT_HUB_ERROR"
        with pytest.raises(HubError, match="Method does not exist"):
            c.invoke("Nope")
        assert c.invoke("Echo", "still fine") == "still fine"


def test_invalid_state_and_arguments(builder):
    with builder().build() as c:
        with pytest.raises(InvalidStateError):
            c.invoke("Echo", 1)
        c.start()
        with pytest.raises(TypeError):
            c.invoke("Echo", object())  # not representable in JSON
        with pytest.raises(InvalidArgumentError, match="NUL"):
            c.invoke("Echo\0Fail", 1)  # would otherwise be cut to "Echo"
        with pytest.raises(InvalidArgumentError):
            c.invoke("", 1)
        with pytest.raises(TypeError):
            c.invoke(b"Echo", 1)
        with pytest.raises(InvalidStateError):
            c.start()


def test_handlers_send_and_off(builder, events):
    got, other = events(), events()
    with builder().build() as c:
        c.on("Message", got)
        c.on("message", lambda *a: other(a))  # names are case-insensitive; handlers stack
        c.start()
        c.send("SendToCaller", "Message", "hello")
        c.invoke("SendToCaller", "MESSAGE", "two", 2)
        assert got.wait(2) == ["hello", ("two", 2)]
        assert other.wait(2) == [("hello",), ("two", 2)]
        c.off("Message", got)
        c.invoke("SendToCaller", "Message", "three")
        assert other.wait(3)[-1] == ("three",)
        assert len(got.items) == 2
        c.off("Message")
        c.invoke("SendToCaller", "Message", "four")
        assert c.invoke("Echo", 1) == 1  # the server's messages are processed in order
        assert len(other.items) == 3


def test_decorator_and_zero_arguments(builder, events):
    got = events()
    with builder().build() as c:

        @c.on("Ping")
        def ping():
            got("pinged")

        c.start()
        c.invoke("SendToCaller", "Ping")
        assert got.wait(1) == ["pinged"]


def test_handler_exception_is_logged_not_fatal(builder, events, caplog):
    got = events()

    def bad(x):
        raise RuntimeError(f"handler failed on {x}")

    with builder().build() as c:
        c.on("Message", bad)
        c.on("Message", got)
        c.start()
        with caplog.at_level(logging.ERROR, logger="signalr_native"):
            c.invoke("SendToCaller", "Message", 1)
            assert got.wait(1) == [1]
        assert any(r.exc_info and "handler failed on 1" in str(r.exc_info[1]) for r in caplog.records)
        assert c.invoke("Echo", "alive") == "alive"
        assert c.state == HubConnectionState.CONNECTED


def test_stream(builder):
    with builder().build() as c:
        c.start()
        assert list(c.stream("Counter", 5, 0)) == [0, 1, 2, 3, 4]
        with c.stream("Counter", 1000, 10) as s:
            assert next(s) == 0
            s.cancel()
            with pytest.raises(CanceledError):
                for _ in s:
                    pass
        with pytest.raises(HubError):
            list(c.stream("Nope"))
        assert c.invoke("Echo", 1) == 1


def test_upload_streams(builder):
    def numbers(n):
        yield from range(n)

    with builder().build() as c:
        c.start()
        assert c.invoke("Sum", numbers(101)) == 5050
        assert c.invoke("Sum", iter([])) == 0
        assert list(c.stream("UploadEcho", iter(["a", {"b": 1}, [2]]))) == ["a", {"b": 1}, [2]]
        c.send("Sum", numbers(3))

        def failing():
            yield 1
            raise ValueError("source broke")

        with pytest.raises(HubError, match="source broke"):
            c.invoke("Sum", failing())
        assert c.invoke("Echo", [1, 2]) == [1, 2]  # a list is a value, not a stream


def test_client_results(builder):
    with builder().build() as c:
        c.on("Double", lambda x: x * 2)
        c.on("Nothing", lambda x: None)

        async def later(x):
            return {"async": x}

        c.on("Later", later)
        pool = concurrent.futures.ThreadPoolExecutor(1)
        c.on("Pooled", lambda x: pool.submit(lambda: x + 1))  # a concurrent.futures.Future

        def refuse(x):
            raise KeyError(x)

        c.on("Refuse", refuse)
        c.start()
        assert c.invoke("AskClient", "Double", 21) == 42
        assert c.invoke("AskClient", "later", "v") == {"async": "v"}
        assert c.invoke("AskClient", "Pooled", 41) == 42
        with pytest.raises(HubError, match="Client didn't provide a result"):
            c.invoke("AskClient", "Nothing", 1)
        with pytest.raises(HubError, match="Client didn't provide a result"):
            c.invoke("AskClient", "Unregistered", 1)
        with pytest.raises(HubError, match="KeyError"):
            c.invoke("AskClient", "Refuse", "k")
        assert c.invoke("AskClient", "Double", "ab") == "abab"


def test_blocking_call_inside_handler_is_refused(builder, events):
    got = events()
    with builder().build() as c:

        def handler():
            try:
                c.invoke("Echo", 1)
            except WouldDeadlockError as e:
                got(e)

        c.on("Reenter", handler)
        c.start()
        c.invoke("SendToCaller", "Reenter")
        assert isinstance(got.wait(1)[0], WouldDeadlockError)
        assert c.invoke("Echo", 2) == 2


def test_timeout(builder):
    with builder().build() as c:
        c.start()
        with pytest.raises(SignalRTimeoutError):
            c.invoke("Delay", 5000, timeout=0.1)
        with pytest.raises(TimeoutError):  # the built-in class matches too
            c.invoke("Delay", 5000, timeout=0.1)
        assert c.invoke("Delay", 1, timeout=30) == 1


def test_lifecycle_callbacks(builder, events):
    closed = events()
    with builder().build() as c:
        c.on_close(closed)
        c.start()
        c.stop()
        assert closed.wait(1) == [None]
        c.start()  # a stopped connection starts again
        with pytest.raises(ConnectionClosedError):
            c.invoke("CloseWithError", "bye now", False)
        errors = closed.wait(2)
        assert isinstance(errors[1], ConnectionClosedError) and "bye now" in str(errors[1])
        assert c.state == HubConnectionState.DISCONNECTED


def test_close_with_pending_calls(builder):
    c = builder().build()
    c.start()
    outcome = []

    def call():
        try:
            c.invoke("Delay", 10000)
        except Exception as e:
            outcome.append(e)

    t = threading.Thread(target=call)
    t.start()
    while c._users == 0:  # until the call is inside the library (white-box: Managed's call count)
        time.sleep(0.001)
    c.close()  # stops, lets the waiting call return, then frees
    t.join(20)
    assert not t.is_alive()
    # Canceled or closed if it was sent; refused (Disconnecting) if the stop came first.
    assert isinstance(outcome[0], (CanceledError, ConnectionClosedError, InvalidStateError))


def test_concurrent_invocations(builder):
    with builder().build() as c:
        c.start()
        results = {}

        def worker(k):
            results[k] = [c.invoke("Add", k, i) for i in range(20)]

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == {k: [k + i for i in range(20)] for k in range(4)}


def test_flood_through_a_plain_handler_arrives_in_order_exactly_once(builder):
    # Far above the library's batch size: the calls arrive in many batches, each call once.
    count = 20_000
    received = []
    done = threading.Event()

    def on_flood(i, payload):
        received.append(i)
        if len(received) == count:
            done.set()

    with builder().build() as c:
        c.on("Flood", on_flood)
        c.start()
        assert c.invoke("Flood", count, 100) == count
        assert done.wait(60), f"received {len(received)} of {count}"
        assert c.invoke("Echo", "after") == "after"
    assert received == list(range(count))


def test_an_exception_does_not_stop_the_rest_of_its_batch(builder, events, caplog):
    got = events()
    gate = threading.Event()
    batches = []

    def picky(x):
        if x % 2 == 0:
            raise RuntimeError(f"handler failed on {x}")
        got(x)

    with builder().build() as c:
        c.on("Gate", lambda: gate.wait(60))
        c.on("Message", picky)
        core = c._core
        forward = core.on_batch

        def on_batch(method, calls):
            batches.append((method, calls))
            forward(method, calls)

        core.on_batch = on_batch  # the trampoline finds the core through the handle map
        c.start()
        with caplog.at_level(logging.ERROR, logger="signalr_native"):
            # The callback thread waits in "Gate" while the five calls queue up behind it.
            c.send("SendToCaller", "Gate")
            for i in range(1, 6):
                c.send("SendToCaller", "Message", i)
            assert c.invoke("Echo", "queued") == "queued"  # the server sent them all before this
            gate.set()
            assert got.wait(3) == [1, 3, 5]
        assert [m for m, _ in batches].count(b"Message") == 1, batches  # one batch, two failures
        failures = [str(r.exc_info[1]) for r in caplog.records if r.exc_info]
        assert failures == ["handler failed on 2", "handler failed on 4"]
        assert c.invoke("Echo", "alive") == "alive"
        assert c.state == HubConnectionState.CONNECTED
