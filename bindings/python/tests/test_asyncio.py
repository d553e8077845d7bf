"""The asyncio AsyncHubConnection against the test hub, over every transport × protocol."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from signalr_native import (
    AsyncHubConnection,
    CanceledError,
    ConnectionClosedError,
    HttpTransportType,
    HubConnectionState,
    HubError,
    InvalidStateError,
)

TRANSPORTS = {
    "websockets": HttpTransportType.WEB_SOCKETS,
    "server_sent_events": HttpTransportType.SERVER_SENT_EVENTS,
    "long_polling": HttpTransportType.LONG_POLLING,
}


def test_start_invoke_stop(builder, setup, run):
    async def main():
        c = builder().build_async()
        assert isinstance(c, AsyncHubConnection)
        async with c:
            await c.start()
            assert c.state == HubConnectionState.CONNECTED
            assert c.transport == TRANSPORTS[setup[0]]
            assert c.connection_id == await c.invoke("GetConnectionId")
            assert await c.invoke("Echo", {"x": [1, "ü", None]}) == {"x": [1, "ü", None]}
            results = await asyncio.gather(*(c.invoke("Add", i, i) for i in range(50)))
            assert results == [2 * i for i in range(50)]
            await c.send("Record", "sent")
            assert await c.invoke("GetRecorded") == ["sent"]
            await c.stop()
            assert c.state == HubConnectionState.DISCONNECTED
        assert c.closed

    run(main())


def test_errors(builder, run):
    async def main():
        async with builder().build_async() as c:
            with pytest.raises(InvalidStateError):
                await c.invoke("Echo", 1)
            await c.start()
            with pytest.raises(HubError, match="HubException: nope"):
                await c.invoke("Fail", "nope")
            with pytest.raises(HubError, match="Method does not exist"):
                await c.invoke("Nope")
            assert await c.invoke("Echo", 3) == 3

    run(main())


def test_handlers_run_on_the_loop(builder, run):
    async def main():
        loop_thread = threading.get_ident()
        seen = []
        arrived = asyncio.Event()

        async with builder().build_async() as c:

            @c.on("Message")
            def message(*args):
                seen.append((threading.get_ident() == loop_thread, args))
                if len(seen) == 3:
                    arrived.set()

            coroutine_ran = asyncio.Event()

            async def coro_handler(*args):
                await asyncio.sleep(0)
                seen.append(("coroutine", args))
                coroutine_ran.set()

            c.on("Other", coro_handler)
            await c.start()
            for i in range(3):
                await c.invoke("SendToCaller", "Message", i, "x")
            await asyncio.wait_for(arrived.wait(), 20)
            assert seen[:3] == [(True, (0, "x")), (True, (1, "x")), (True, (2, "x"))]
            await c.invoke("SendToCaller", "Other", "o")
            await asyncio.wait_for(coroutine_ran.wait(), 20)
            assert seen[3] == ("coroutine", ("o",))

    run(main())


def test_flood_arrives_in_order(builder, run):
    async def main():
        received = []
        async with builder().build_async() as c:
            c.on("Flood", lambda i, payload: received.append(i))
            await c.start()
            assert await c.invoke("Flood", 2000, 16) == 2000
            # Handlers and the completion travel the same ordered path onto the loop.
            assert received == list(range(2000))

    run(main())


def test_batched_calls_and_client_results_keep_the_server_order(builder, run):
    async def main():
        seen = []
        async with builder().build_async() as c:
            c.on("Ask", lambda x: seen.append(x) or x * 2)  # the value answers client-result calls only
            await c.start()
            for i in range(3):
                await c.send("SendToCaller", "Ask", i)
            assert await c.invoke("AskClient", "Ask", 10) == 20
            for i in range(3, 6):
                await c.send("SendToCaller", "Ask", i)
            # Handlers (batched or not) and completions travel the same ordered path onto the loop.
            assert await c.invoke("Echo", 1) == 1
            assert seen == [0, 1, 2, 10, 3, 4, 5]

    run(main())


def test_handler_exception_is_logged_not_fatal(builder, run, caplog):
    async def main():
        got = asyncio.Event()
        async with builder().build_async() as c:

            def bad():
                raise RuntimeError("sync handler broke")

            async def bad_async():
                raise RuntimeError("async handler broke")

            c.on("Bad", bad)
            c.on("Bad", bad_async)
            c.on("Bad", lambda: got.set())
            await c.start()
            with caplog.at_level(logging.ERROR, logger="signalr_native"):
                await c.invoke("SendToCaller", "Bad")
                await asyncio.wait_for(got.wait(), 20)
                for _ in range(100):
                    await asyncio.sleep(0.01)
                    texts = [str(r.exc_info[1]) for r in caplog.records if r.exc_info]
                    if "async handler broke" in texts:
                        break
            assert "sync handler broke" in texts and "async handler broke" in texts
            assert await c.invoke("Echo", 1) == 1

    run(main())


def test_streams_and_uploads(builder, run):
    async def main():
        async with builder().build_async() as c:
            await c.start()
            assert [x async for x in c.stream("Counter", 4, 0)] == [0, 1, 2, 3]

            async def agen(n):
                for i in range(n):
                    await asyncio.sleep(0)
                    yield i

            assert await c.invoke("Sum", agen(10)) == 45
            assert await c.invoke("Sum", iter([5, 5])) == 10
            assert [x async for x in c.stream("UploadEcho", agen(3))] == [0, 1, 2]

            async def failing():
                yield 1
                raise ValueError("async source broke")

            with pytest.raises(HubError, match="async source broke"):
                await c.invoke("Sum", failing())

            async with c.stream("Counter", 1000, 10) as s:
                assert await s.__anext__() == 0
                s.cancel()
                with pytest.raises(CanceledError):
                    async for _ in s:
                        pass
            # A stream dropped early is cancelled when closed.
            s = c.stream("Counter", 1000, 10)
            async for first in s:
                break
            s.close()
            assert await c.invoke("Echo", "ok") == "ok"

    run(main())


def test_client_results(builder, run):
    async def main():
        async with builder().build_async() as c:
            c.on("Sync", lambda x: [x])

            async def slow(x):
                await asyncio.sleep(0.01)
                return x + 1

            c.on("Slow", slow)

            async def refuse(x):
                raise ValueError(f"no {x}")

            c.on("Refuse", refuse)
            await c.start()
            assert await c.invoke("AskClient", "Sync", "a") == ["a"]
            assert await c.invoke("AskClient", "Slow", 1) == 2
            with pytest.raises(HubError, match="no 7"):
                await c.invoke("AskClient", "Refuse", 7)
            with pytest.raises(HubError, match="Client didn't provide a result"):
                await c.invoke("AskClient", "Missing", 0)

    run(main())


def test_lifecycle(builder, run):
    async def main():
        closed = []
        done = asyncio.Event()
        async with builder().build_async() as c:

            async def on_close(error):
                closed.append(error)
                done.set()

            c.on_close(on_close)
            await c.start()
            await c.stop()
            await asyncio.wait_for(done.wait(), 20)
            assert closed == [None]
            done.clear()
            await c.start()
            with pytest.raises(ConnectionClosedError):
                await c.invoke("CloseWithError", "server says bye", False)
            await asyncio.wait_for(done.wait(), 20)
            assert isinstance(closed[1], ConnectionClosedError) and "server says bye" in str(closed[1])

    run(main())


def test_cancelled_await_does_not_break_the_connection(builder, run):
    async def main():
        async with builder().build_async() as c:
            await c.start()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(c.invoke("Delay", 300), 0.05)
            assert await c.invoke("Delay", 1) == 1

    run(main())
