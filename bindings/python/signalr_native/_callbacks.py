"""Callbacks from library threads into Python.

* Every registration passes one of the module-level ``CFUNCTYPE`` trampolines below (they live as
  long as the module, so the library can never call a collected function pointer) and, as user
  data, an int key into :data:`handles`. The object stored there receives the call; the
  ``userdata_free`` trampoline removes it, which the library does exactly once, after the last
  call — so Python objects live exactly as long as the library may use them.
* Trampolines copy borrowed strings at once and never let an exception unwind into the library:
  user code errors are logged.
* :class:`LoopDispatcher` hands work to an asyncio loop in protocol order with one
  ``call_soon_threadsafe`` per burst instead of one per message.
"""

from __future__ import annotations

import asyncio
import ctypes
import inspect
import itertools
import threading
from collections import deque
from typing import Any, Callable, Deque, Dict, Optional, Tuple

from . import _native as n
from ._logging import logger


class HandleMap:
    """Thread-safe map from int keys (never 0, never reused) to Python objects."""

    def __init__(self) -> None:
        self._items: Dict[int, Any] = {}
        self._keys = itertools.count(1)
        self._lock = threading.Lock()

    def insert(self, obj: Any) -> int:
        with self._lock:
            key = next(self._keys)
            self._items[key] = obj
        return key

    def get(self, key: Optional[int]) -> Any:
        return self._items.get(key)  # type: ignore[arg-type]

    def pop(self, key: Optional[int]) -> Any:
        with self._lock:
            return self._items.pop(key, None)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self._items)


handles = HandleMap()

_local = threading.local()


# --- keeping a Python thread state on library threads ---------------------------------------------
#
# ctypes gives a callback arriving on a thread Python does not know a fresh thread state and
# deletes it when the callback returns: about 14 µs per call, most of the cost of receiving a
# message. The first callback on each library thread therefore takes one more PyGILState
# reference, so the thread state lives on for the next calls (each connection has one callback
# thread); `unpin_thread` gives it back when the connection's last user data is released there.

_ensure = ctypes.pythonapi.PyGILState_Ensure
_ensure.restype = ctypes.c_int
_ensure.argtypes = []
_gil_release = ctypes.pythonapi.PyGILState_Release
_gil_release.restype = None
_gil_release.argtypes = [ctypes.c_int]


def pin_thread() -> None:
    if getattr(_local, "pinned", None) is None:
        _local.pinned = _ensure()


def in_callback() -> bool:
    """True on a connection's callback thread (where this package's connection callbacks run user
    code inline): blocking there for an event of the same connection would wait forever."""
    return getattr(_local, "pinned", None) is not None


def unpin_thread() -> None:
    state = getattr(_local, "pinned", None)
    if state is not None:
        _local.pinned = None
        _gil_release(state)  # the thread state goes when the running callback returns


def text(ptr: Optional[int], length: int) -> Optional[str]:
    """Copies a borrowed (pointer, length) UTF-8 string; None for NULL."""
    if not ptr:
        return None
    return ctypes.string_at(ptr, length).decode("utf-8", "replace")


def data(ptr: Optional[int], length: int) -> Optional[bytes]:
    if not ptr:
        return None
    return ctypes.string_at(ptr, length)


def _guard(what: str, f: Callable[..., Any], *args: Any) -> Any:
    try:
        return f(*args)
    except BaseException:  # never unwind into the library
        try:
            logger.exception("signalr_native: error in the %s callback", what)
        except BaseException:
            pass
        return None


# --- trampolines: each forwards to a method of the object registered under the key -------------


@n.signalr_userdata_free
def userdata_free(key):
    target = handles.pop(key)
    released = getattr(target, "on_released", None)
    if released is not None:
        _guard("user data release", released)


@n.signalr_completion_callback
def on_completion(key, result, error, error_len, json, json_len):
    pin_thread()
    target = handles.get(key)
    if target is not None:
        _guard("completion", target.on_completion, result, text(error, error_len), data(json, json_len))


@n.signalr_batch_handler_callback
def on_batch(key, method, method_len, calls, calls_len, count):
    # The receive path: one call (one GIL acquisition) for up to a thousand messages.
    pin_thread()
    try:
        target = handles.get(key)
        if target is not None:
            target.on_batch(ctypes.string_at(method, method_len), ctypes.string_at(calls, calls_len))
    except BaseException:  # never unwind into the library
        try:
            logger.exception("signalr_native: error in the handler callback")
        except BaseException:
            pass


@n.signalr_invocation_handler_callback
def on_invocation(key, method, method_len, args, args_len, responder):
    # The receive path: kept lean (no helper calls); the method name stays bytes.
    pin_thread()
    try:
        target = handles.get(key)
        if target is None:
            n.fn.signalr_responder_free(responder)
            return
        target.on_invocation(
            ctypes.string_at(method, method_len), ctypes.string_at(args, args_len) if args else None, responder
        )
    except BaseException:  # never unwind into the library
        try:
            logger.exception("signalr_native: error in the handler callback")
        except BaseException:
            pass


@n.signalr_stream_item_callback
def on_stream_item(key, json, json_len):
    pin_thread()
    target = handles.get(key)
    if target is not None:
        _guard("stream item", target.on_item, data(json, json_len))


@n.signalr_closed_callback
def on_closed(key, result, error, error_len):
    pin_thread()
    target = handles.get(key)
    if target is not None:
        _guard("close", target.on_closed, result, text(error, error_len))


@n.signalr_reconnecting_callback
def on_reconnecting(key, result, error, error_len):
    pin_thread()
    target = handles.get(key)
    if target is not None:
        _guard("reconnecting", target.on_reconnecting, result, text(error, error_len))


@n.signalr_reconnected_callback
def on_reconnected(key, connection_id, length):
    pin_thread()
    target = handles.get(key)
    if target is not None:
        _guard("reconnected", target.on_reconnected, text(connection_id, length))


@n.signalr_access_token_callback
def on_access_token(key, request):
    target = handles.get(key)
    if target is None:
        n.fn.signalr_token_request_complete(request, None, b"access token provider is gone")
        return
    _guard("access token", target.on_token_request, request)


@n.signalr_reconnect_policy_callback
def on_reconnect_policy(key, previous_retry_count, elapsed_ms, reason, reason_len):
    target = handles.get(key)
    if target is None:
        return -1
    delay = _guard("reconnect policy", target.next_delay_ms, previous_retry_count, elapsed_ms,
                   text(reason, reason_len))
    return -1 if delay is None else delay


# --- running user code ---------------------------------------------------------------------------


class LoopDispatcher:
    """Runs callables on one asyncio loop, in the order they were posted, from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._queue: Deque[Tuple[Callable[..., Any], Tuple[Any, ...]]] = deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def post(self, f: Callable[..., Any], *args: Any) -> bool:
        """Queues ``f(*args)``; False when the loop is closed (nobody is left to run it)."""
        with self._lock:
            self._queue.append((f, args))
            if self._scheduled:
                return True
            self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:
            with self._lock:
                self._queue.clear()
                self._scheduled = False
            return False
        return True

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._scheduled = False
                    return
                batch, self._queue = self._queue, deque()
            for f, args in batch:
                try:
                    f(*args)
                except Exception:
                    logger.exception("signalr_native: error in a callback")


def run_awaitable_in_thread(awaitable: Any, done: Callable[[Any, Optional[BaseException]], None]) -> None:
    """Runs a coroutine returned by a handler of a blocking connection on its own thread and
    event loop, then reports its outcome to ``done`` (the library thread is never blocked)."""

    def run() -> None:
        async def wrap() -> Any:
            return await awaitable

        try:
            value = asyncio.run(wrap())
        except BaseException as e:
            done(None, e)
        else:
            done(value, None)

    threading.Thread(target=run, name="signalr-native-coroutine", daemon=True).start()


def is_awaitable(value: Any) -> bool:
    return inspect.isawaitable(value)
