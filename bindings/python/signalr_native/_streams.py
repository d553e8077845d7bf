"""Server-to-client streams (iterators) and client-to-server upload streams (pumps)."""

from __future__ import annotations

import asyncio
import collections.abc
import queue
import threading
from typing import Any, AsyncIterator, Iterator, List, Optional, Sequence, Tuple

from . import _native as n
from ._callbacks import LoopDispatcher, in_callback
from ._errors import SignalRError, WouldDeadlockError, check, error_from, OK
from ._handle import Managed
from ._json import dumps, loads
from ._logging import logger


def is_upload(value: Any) -> bool:
    """An argument sent as an upload stream: an iterator (a generator, ``iter(list)``…) or an
    async iterable. Lists, tuples, dicts and strings are ordinary values."""
    if isinstance(value, (str, bytes, bytearray, list, tuple, dict)):
        return False
    return isinstance(value, (collections.abc.Iterator, collections.abc.AsyncIterable))


def split_uploads(args: Sequence[Any]) -> Tuple[List[Any], List[Any]]:
    plain: List[Any] = []
    uploads: List[Any] = []
    for a in args:
        (uploads if is_upload(a) else plain).append(a)
    return plain, uploads


def upload_array(count: int):
    return (n.upload_p * count)()


# --- upload pumps: each owns its native upload handle and frees it when done ---------------------


def _finish_upload(handle: Any, error: Optional[BaseException]) -> None:
    try:
        if error is None:
            n.fn.signalr_upload_complete(handle)
        else:
            message = str(error) or type(error).__name__
            n.fn.signalr_upload_complete_with_error(handle, message.encode("utf-8", "replace"))
    finally:
        n.fn.signalr_upload_free(handle)


def _pump_iterator(handle: Any, items: Iterator[Any]) -> None:
    error: Optional[BaseException] = None
    try:
        for item in items:
            check(n.fn.signalr_upload_write(handle, dumps(item)))
    except SignalRError as e:  # the invocation or connection is gone: nothing more to send
        logger.debug("upload stream ended: %s", e)
    except Exception as e:
        logger.warning("upload stream source raised; completing the upload with its error", exc_info=True)
        error = e
    _finish_upload(handle, error)


async def _pump_async(handle: Any, items: Any) -> None:
    error: Optional[BaseException] = None
    try:
        async for item in items:
            check(n.fn.signalr_upload_write(handle, dumps(item)))
    except SignalRError as e:
        logger.debug("upload stream ended: %s", e)
    except Exception as e:
        logger.warning("upload stream source raised; completing the upload with its error", exc_info=True)
        error = e
    except asyncio.CancelledError as e:
        error = e
        _finish_upload(handle, error)
        raise
    _finish_upload(handle, error)


def start_pumps(handles: Any, sources: Sequence[Any], loop: Optional[asyncio.AbstractEventLoop]) -> None:
    """Feeds each upload from its source: iterators on a thread of their own (they may block),
    async iterables as tasks on ``loop``."""
    for handle, source in zip(handles, sources):
        if isinstance(source, collections.abc.AsyncIterable):
            if loop is None:
                n.fn.signalr_upload_free(handle)
                raise TypeError("async iterables can be uploaded only through AsyncHubConnection")
            task = loop.create_task(_pump_async(handle, source))
            _tasks.add(task)
            task.add_done_callback(_tasks.discard)
        else:
            threading.Thread(
                target=_pump_iterator, args=(handle, iter(source)), name="signalr-native-upload", daemon=True
            ).start()


_tasks: "set[asyncio.Task[None]]" = set()  # strong references while pumps run


# --- server-to-client streams -------------------------------------------------------------------


class _End:
    __slots__ = ("result", "error")

    def __init__(self, result: int, error: Optional[str]) -> None:
        self.result = result
        self.error = error

    def raise_or_stop(self, stop: type) -> None:
        if self.result == OK:
            raise stop
        raise error_from(self.result, self.error)


class _QueueSink:
    """Registered with the library for a blocking stream: items go into a thread-safe queue."""

    __slots__ = ("queue",)

    def __init__(self) -> None:
        self.queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()

    def on_item(self, payload: Optional[bytes]) -> None:
        self.queue.put(payload)

    def on_completion(self, result: int, error: Optional[str], _payload: Optional[bytes]) -> None:
        self.queue.put(_End(result, error))


class StreamIterator(Managed[Any]):
    """The items of a server-to-client stream, for a blocking connection.

    Iterate it (``for item in connection.stream(...)``); the stream's error is raised by the
    iteration. ``cancel()`` asks the server to stop; ``close()`` (also on ``with`` exit and when the
    object is collected) cancels a running stream and frees it."""

    def __init__(self, sink: _QueueSink) -> None:
        self._sink = sink
        self._end: Optional[_End] = None

    def _attach(self, handle: Any) -> None:
        self._set_handle(handle)

    def __iter__(self) -> "StreamIterator":
        return self

    def __next__(self) -> Any:
        if self._end is None:
            if in_callback():
                raise WouldDeadlockError(
                    "a stream cannot be iterated inside a handler of its connection (items arrive on "
                    "the thread that runs the handler); iterate it on another thread"
                )
            item = self._sink.queue.get()
            if not isinstance(item, _End):
                return loads(item)
            self._end = item
            self.close()
        self._end.raise_or_stop(StopIteration)
        raise AssertionError("unreachable")

    def cancel(self) -> None:
        """Sends CancelInvocation; the iteration then ends with ``CanceledError``."""
        if not self.closed:
            self._call(n.fn.signalr_stream_cancel)

    def _free(self, handle: Any) -> None:
        n.fn.signalr_stream_free(handle)


class _LoopSink:
    """Registered with the library for an asyncio stream: items are handed to the loop."""

    __slots__ = ("dispatcher", "queue", "waiter")

    def __init__(self, dispatcher: LoopDispatcher) -> None:
        self.dispatcher = dispatcher
        self.queue: "collections.deque[Any]" = collections.deque()
        self.waiter: Optional[asyncio.Future[None]] = None

    def on_item(self, payload: Optional[bytes]) -> None:
        self.dispatcher.post(self._push, payload)

    def on_completion(self, result: int, error: Optional[str], _payload: Optional[bytes]) -> None:
        self.dispatcher.post(self._push, _End(result, error))

    def _push(self, item: Any) -> None:  # on the loop
        self.queue.append(item)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class AsyncStream(Managed[Any]):
    """The items of a server-to-client stream, for an asyncio connection: ``async for item in
    connection.stream(...)``. ``cancel()`` asks the server to stop; ``close()`` (also on ``async
    with``/``with`` exit and when the object is collected) cancels a running stream and frees it."""

    def __init__(self, sink: _LoopSink) -> None:
        self._sink = sink
        self._end: Optional[_End] = None

    def _attach(self, handle: Any) -> None:
        self._set_handle(handle)

    def __aiter__(self) -> "AsyncStream":
        return self

    async def __anext__(self) -> Any:
        sink = self._sink
        while self._end is None:
            if sink.queue:
                item = sink.queue.popleft()
                if not isinstance(item, _End):
                    return loads(item)
                self._end = item
                self.close()
                break
            sink.waiter = sink.dispatcher.loop.create_future()
            try:
                await sink.waiter
            finally:
                sink.waiter = None
        self._end.raise_or_stop(StopAsyncIteration)
        raise AssertionError("unreachable")

    def cancel(self) -> None:
        """Sends CancelInvocation; the iteration then ends with ``CanceledError``."""
        if not self.closed:
            self._call(n.fn.signalr_stream_cancel)

    async def __aenter__(self) -> "AsyncStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    def _free(self, handle: Any) -> None:
        n.fn.signalr_stream_free(handle)

