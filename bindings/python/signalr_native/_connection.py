"""Hub connections: :class:`HubConnection` (blocking) and :class:`AsyncHubConnection` (asyncio).

Both wrap one native ``signalr_connection`` and share handler registration, lifecycle callbacks
and properties (:class:`_ConnectionBase`); they differ in how calls wait and where user code runs:

* ``HubConnection``: calls block the calling thread (with the GIL released) until done.
  Handlers and lifecycle callbacks run on the library's thread, one at a time, in protocol order;
  a handler that blocks holds up the connection's receive loop, and a blocking call of the same
  connection from inside one raises :class:`WouldDeadlockError`.
* ``AsyncHubConnection``: calls are coroutines resolved on the caller's event loop through
  ``call_soon_threadsafe``. Handlers and callbacks run on the loop that called ``start()``, in
  protocol order; coroutine handlers become tasks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from ctypes import byref, c_uint64, c_void_p, string_at
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

from . import _native as n
from ._callbacks import (
    LoopDispatcher,
    handles,
    in_callback,
    is_awaitable,
    on_batch,
    on_closed,
    on_completion,
    on_invocation,
    on_reconnected,
    on_reconnecting,
    on_stream_item,
    run_awaitable_in_thread,
    unpin_thread,
    userdata_free,
)
from ._errors import OK, SignalRError, WouldDeadlockError, check, cstr, error_from
from ._handle import Managed, track
from ._json import dumps, dumps_args, loads, timeout_ms
from ._logging import logger
from ._streams import (
    AsyncStream,
    StreamIterator,
    _LoopSink,
    _QueueSink,
    split_uploads,
    start_pumps,
    upload_array,
)
from ._types import HttpTransportType, HubConnectionState

F = TypeVar("F", bound=Callable[..., Any])


class _Reply:
    """Answers one client-result invocation exactly once (the native responder is consumed)."""

    __slots__ = ("_responder", "method")

    def __init__(self, responder: Any, method: str) -> None:
        self._responder = responder
        self.method = method

    def _take(self) -> Any:
        r, self._responder = self._responder, None
        return r

    def finish(self, values: List[Any], errors: List[BaseException]) -> None:
        r = self._take()
        if r is None:
            return
        if errors:
            e = errors[0]
            n.fn.signalr_responder_complete_with_error(r, f"{type(e).__name__}: {e}".encode("utf-8", "replace"))
            return
        if not values:
            n.fn.signalr_responder_free(r)  # answers "Client didn't provide a result." when one is due
            return
        if len(values) > 1:
            logger.warning("several handlers of '%s' returned a result; the last one is sent", self.method)
        try:
            payload = dumps(values[-1])
        except (TypeError, ValueError) as e:
            logger.error("the result of a handler of '%s' is not JSON serializable: %s", self.method, e)
            n.fn.signalr_responder_complete_with_error(r, f"TypeError: {e}".encode("utf-8", "replace"))
            return
        n.fn.signalr_responder_complete(r, payload)


def _log_handler_error(method: bytes) -> None:
    logger.error("a handler of the client method '%s' raised", method.decode("utf-8", "replace"), exc_info=True)


async def _await_future(future: "concurrent.futures.Future[Any]") -> Any:
    return await asyncio.wrap_future(future)  # wrapped on the loop that runs this


def _collect(results: Sequence[Any], values: List[Any], errors: List[BaseException], method: str) -> None:
    for r in results:
        if isinstance(r, BaseException):
            logger.error("a handler of the client method '%s' raised", method, exc_info=r)
            errors.append(r)
        elif r is not None:
            values.append(r)


class _Method:
    __slots__ = ("native_ids", "handlers")

    def __init__(self, native_ids: Tuple[int, ...], handlers: Tuple[Callable[..., Any], ...]) -> None:
        self.native_ids = native_ids
        self.handlers = handlers


class _Core:
    """What the library's callbacks of one connection reach (through the handle map). It holds
    no reference to the public connection object, so that one can be collected (and close)."""

    def __init__(self, asynchronous: bool) -> None:
        self.asynchronous = asynchronous
        self.dispatcher: Optional[LoopDispatcher] = None  # asyncio: the loop that called start()
        self.methods: Dict[str, _Method] = {}
        self.by_raw_name: Dict[bytes, _Method] = {}  # names as the server spelled them
        self.close_handlers: Tuple[Callable[..., Any], ...] = ()
        self.reconnecting_handlers: Tuple[Callable[..., Any], ...] = ()
        self.reconnected_handlers: Tuple[Callable[..., Any], ...] = ()
        self.registrations = 0
        self.lock = threading.Lock()  # registration changes (callbacks only read the tuples)

    def register(self) -> int:
        """A user-data key for one more native registration of this connection."""
        self.registrations += 1
        return handles.insert(self)

    def on_released(self) -> None:
        # The library released one registration; the last goes at teardown, on the callback thread.
        self.registrations -= 1
        if self.registrations == 0:
            unpin_thread()

    def attach_loop(self, loop: asyncio.AbstractEventLoop) -> LoopDispatcher:
        d = self.dispatcher
        if d is None or d.loop is not loop:
            d = self.dispatcher = LoopDispatcher(loop)
        return d

    # -- from library threads --

    def _entry(self, raw_method: bytes) -> Optional[_Method]:
        entry = self.by_raw_name.get(raw_method)
        if entry is None:
            entry = self.methods.get(raw_method.decode("utf-8", "replace").lower())
            if entry is not None:  # only registered names are remembered (the server picks names)
                self.by_raw_name[raw_method] = entry
        return entry

    def on_batch(self, raw_method: bytes, calls: bytes) -> None:
        entry = self._entry(raw_method)
        if entry is None:
            return
        if self.asynchronous:
            d = self.dispatcher
            if d is not None:
                d.post(self._run_batch, entry, calls, raw_method)
        else:
            self._run_batch(entry, calls, raw_method)

    def on_invocation(self, raw_method: bytes, args: Optional[bytes], responder: Any) -> None:
        entry = self._entry(raw_method)
        handlers = entry.handlers if entry is not None else ()
        if self.asynchronous:
            d = self.dispatcher
            if d is None or not d.post(self._run_handlers, handlers, args, responder, raw_method):
                n.fn.signalr_responder_free(responder)
        else:
            self._run_handlers(handlers, args, responder, raw_method)

    def on_closed(self, result: int, error: Optional[str]) -> None:
        self._lifecycle(self.close_handlers, None if result == OK else error_from(result, error))

    def on_reconnecting(self, result: int, error: Optional[str]) -> None:
        self._lifecycle(self.reconnecting_handlers, None if result == OK else error_from(result, error))

    def on_reconnected(self, connection_id: Optional[str]) -> None:
        self._lifecycle(self.reconnected_handlers, connection_id)

    # -- user code --

    def _run_batch(self, entry: _Method, calls: bytes, raw_method: bytes) -> None:
        """Runs the handlers for every call of a batch (calls that expect no result), in order:
        one JSON parse for all of them. A handler's exception is logged and the next calls still
        run; an awaitable it returns runs in the background, as for single calls. The handlers
        are read per call, so that ``off`` inside a handler stops the rest of the batch too."""
        try:
            batch = loads(calls)
        except ValueError:  # pragma: no cover - the library sends valid JSON
            _log_handler_error(raw_method)
            return
        for arguments in batch:  # this loop is the receive rate: kept lean
            for h in entry.handlers:
                try:
                    value = h(*arguments)
                except Exception:
                    _log_handler_error(raw_method)
                    continue
                if value is not None:
                    self._run_returned(value)

    def _run_returned(self, value: Any) -> None:
        """Runs what a handler returned for a call that expects no result, if it is awaitable.
        Other values go nowhere: nobody asked for them."""
        if isinstance(value, concurrent.futures.Future):
            value = _await_future(value)
        if is_awaitable(value):
            self._detach(value)

    def _detach(self, awaitable: Any) -> None:
        """Runs an awaitable that user code returned without holding up the library's thread: as
        a task on the connection's loop (asyncio), else on a thread of its own. Its error is
        logged."""
        if self.asynchronous:
            _spawn(awaitable)
        else:
            run_awaitable_in_thread(awaitable, _log_outcome)

    def _run_handlers(
        self, handlers: Sequence[Callable[..., Any]], args: Optional[bytes], responder: Any, raw_method: bytes
    ) -> None:
        """Runs the handlers of one invocation and answers its responder. The common case —
        handlers returning None — allocates nothing and just frees the responder."""
        outcome: Optional[Tuple[List[Any], List[BaseException], List[Any]]] = None
        try:
            arguments = loads(args) or ()
        except ValueError as e:  # pragma: no cover - the library sends valid JSON
            outcome = ([], [e], [])
            handlers = ()
        for h in handlers:
            try:
                value = h(*arguments)
            except Exception as e:
                _log_handler_error(raw_method)
                if outcome is None:
                    outcome = ([], [], [])
                outcome[1].append(e)
                continue
            if value is None:
                continue
            if outcome is None:
                outcome = ([], [], [])
            if isinstance(value, concurrent.futures.Future):
                value = _await_future(value)
            if is_awaitable(value):
                outcome[2].append(value)
            else:
                outcome[0].append(value)
        if outcome is None:
            n.fn.signalr_responder_free(responder)  # answers "Client didn't provide a result." when one is due
            return
        values, errors, awaitables = outcome
        reply = _Reply(responder, raw_method.decode("utf-8", "replace"))
        if not awaitables:
            reply.finish(values, errors)
            return

        async def gather() -> None:
            _collect(await asyncio.gather(*awaitables, return_exceptions=True), values, errors, reply.method)
            reply.finish(values, errors)

        self._detach(gather())

    def _lifecycle(self, handlers: Sequence[Callable[..., Any]], arg: Any) -> None:
        if not handlers:
            return
        if self.asynchronous:
            d = self.dispatcher
            if d is not None:
                d.post(self._call_lifecycle, handlers, arg)
        else:
            self._call_lifecycle(handlers, arg)

    def _call_lifecycle(self, handlers: Sequence[Callable[..., Any]], arg: Any) -> None:
        for h in handlers:
            try:
                value = h(arg)
                if is_awaitable(value):
                    self._detach(value)
            except Exception:
                logger.error("a connection lifecycle callback raised", exc_info=True)


_background: "set[asyncio.Future[Any]]" = set()


def _spawn(awaitable: Any) -> None:
    task = asyncio.ensure_future(awaitable)
    _background.add(task)

    def done(t: "asyncio.Future[Any]") -> None:
        _background.discard(t)
        if not t.cancelled() and t.exception() is not None:
            logger.error("a connection callback raised", exc_info=t.exception())

    task.add_done_callback(done)


def _log_outcome(_value: Any, error: Optional[BaseException]) -> None:
    if error is not None:
        logger.error("a connection callback raised", exc_info=error)


class _ConnectionBase(Managed[Any]):
    """What both connection kinds share: handlers, lifecycle callbacks, properties, closing."""

    def __init__(self, handle: Any, core: _Core) -> None:
        self._core = core
        self._set_handle(handle)
        track(self)
        # Lifecycle callbacks are registered once; Python keeps the lists.
        for register, trampoline in (
            (n.fn.signalr_connection_on_closed, on_closed),
            (n.fn.signalr_connection_on_reconnecting, on_reconnecting),
            (n.fn.signalr_connection_on_reconnected, on_reconnected),
        ):
            check(register(handle, trampoline, core.register(), userdata_free))

    # -- handlers --

    def on(self, method: str, handler: Optional[F] = None) -> Any:
        """Registers ``handler(*args)`` for invocations of the client method ``method`` (case
        insensitive; several handlers per method run in registration order).

        For a client-result invocation the handler's return value is the result: a value, or
        an awaitable whose value is used; ``None`` means no result. An exception raised by a
        handler is logged (it never closes the connection) and, for a client-result invocation,
        sent to the server as the error. Usable as a decorator: ``@connection.on("Message")``.
        Returns the handler."""
        if handler is None:
            return lambda h: self.on(method, h)
        if not callable(handler):
            raise TypeError("handler must be callable")
        key = method.lower()
        core = self._core
        with core.lock:
            entry = core.methods.get(key)
            if entry is None:
                # Native registrations per method (Python runs the method's handlers in order): a
                # batch handler takes the calls that expect no result, many per callback; the
                # client-result handler answers the others, one each.
                name = cstr(method, "method name")
                batch, single = c_uint64(), c_uint64()
                self._call(n.fn.signalr_connection_on_batch, name, on_batch, core.register(), userdata_free, byref(batch))
                try:
                    self._call(
                        n.fn.signalr_connection_on_invocation,
                        name, on_invocation, core.register(), userdata_free, byref(single),
                    )
                except BaseException:
                    self._call(n.fn.signalr_connection_remove_handler, batch.value)
                    raise
                core.methods[key] = _Method((batch.value, single.value), (handler,))
                core.by_raw_name = {}
            else:
                entry.handlers = entry.handlers + (handler,)
        return handler

    def off(self, method: str, handler: Optional[Callable[..., Any]] = None) -> None:
        """Removes ``handler`` from ``method``, or every handler of ``method`` when none is given."""
        key = method.lower()
        core = self._core
        with core.lock:
            entry = core.methods.get(key)
            if entry is None:
                return
            remaining = () if handler is None else tuple(h for h in entry.handlers if h is not handler)
            if remaining:
                entry.handlers = remaining
                return
            entry.handlers = ()  # a lookup racing with this finds nothing to run
            del core.methods[key]
            core.by_raw_name = {}
            for native_id in entry.native_ids:
                self._call(n.fn.signalr_connection_remove_handler, native_id)

    def on_close(self, callback: F) -> F:
        """``callback(error)`` when the connection closes: ``error`` is ``None`` after ``stop()``,
        else the :class:`SignalRError` that ended it. Usable as a decorator."""
        with self._core.lock:
            self._core.close_handlers += (callback,)
        return callback

    def on_reconnecting(self, callback: F) -> F:
        """``callback(error)`` when the connection was lost and automatic reconnect begins."""
        with self._core.lock:
            self._core.reconnecting_handlers += (callback,)
        return callback

    def on_reconnected(self, callback: F) -> F:
        """``callback(connection_id)`` when a reconnect succeeded (``None`` without negotiation)."""
        with self._core.lock:
            self._core.reconnected_handlers += (callback,)
        return callback

    # -- properties --

    @property
    def state(self) -> HubConnectionState:
        """The connection's state now."""
        return HubConnectionState(self._get(n.fn.signalr_connection_get_state))

    @property
    def connection_id(self) -> Optional[str]:
        """The id the server gave the connection; ``None`` when not connected or without
        negotiation."""
        out = c_void_p()
        self._call(n.fn.signalr_connection_get_connection_id, byref(out))
        if not out.value:
            return None
        try:
            return string_at(out.value).decode("utf-8", "replace")
        finally:
            n.fn.signalr_string_free(out)

    @property
    def transport(self) -> HttpTransportType:
        """The transport in use; ``HttpTransportType.NONE`` when not connected."""
        return HttpTransportType(self._get(n.fn.signalr_connection_get_transport))

    def _interrupt(self, handle: Any) -> None:
        # Calls in progress on other threads end with CONNECTION_CLOSED/CANCELED once stopped.
        n.fn.signalr_connection_stop(handle, n.NO_COMPLETION, None, n.NO_USERDATA_FREE)

    def _free(self, handle: Any) -> None:
        # Stops the connection, cancels what is pending, waits for running callbacks (with the GIL
        # released) — or returns at once when called inside one of this connection's callbacks.
        n.fn.signalr_connection_free(handle)

    def __repr__(self) -> str:
        if self.closed:
            return f"<{type(self).__name__} closed>"
        return f"<{type(self).__name__} {self.state.name}>"


# --- completions ---------------------------------------------------------------------------------


class _ThreadCompletion:
    """A completion waited for by a blocking thread."""

    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: "concurrent.futures.Future[Tuple[int, Optional[str], Optional[bytes]]]" = (
            concurrent.futures.Future()
        )

    def on_completion(self, result: int, error: Optional[str], payload: Optional[bytes]) -> None:
        self.future.set_result((result, error, payload))

    def wait(self, timeout: Optional[float]) -> Any:
        try:
            result, error, payload = self.future.result(timeout)
        except concurrent.futures.TimeoutError:
            from ._errors import TIMEOUT

            raise error_from(TIMEOUT, f"the operation did not complete within {timeout} s") from None
        if result != OK:
            raise error_from(result, error)
        return loads(payload)


class _LoopCompletion:
    """A completion resolving an asyncio future on its loop (cancelled futures are skipped)."""

    __slots__ = ("future", "dispatcher")

    def __init__(self, dispatcher: LoopDispatcher) -> None:
        self.dispatcher = dispatcher
        self.future: "asyncio.Future[Any]" = dispatcher.loop.create_future()

    def on_completion(self, result: int, error: Optional[str], payload: Optional[bytes]) -> None:
        self.dispatcher.post(self._resolve, result, error, payload)

    def _resolve(self, result: int, error: Optional[str], payload: Optional[bytes]) -> None:
        f = self.future
        if f.done():
            return
        if result != OK:
            f.set_exception(error_from(result, error))
            return
        try:
            f.set_result(loads(payload))
        except ValueError as e:  # pragma: no cover - the library sends valid JSON
            f.set_exception(e)


def _no_deadlock(what: str) -> None:
    if in_callback():
        raise WouldDeadlockError(
            f"{what} would wait for itself inside a handler or callback of this connection; "
            "use send() or AsyncHubConnection there, or hand the work to another thread"
        )


class HubConnection(_ConnectionBase):
    """A connection to a SignalR hub with blocking calls. Create it with
    :meth:`HubConnectionBuilder.build`. ``with connection:`` stops and frees it on exit.

    Every waiting call accepts ``timeout`` in seconds (``None``: no limit) and raises
    :class:`SignalRTimeoutError` when it expires. Waiting never holds the GIL."""

    def start(self, timeout: Optional[float] = None) -> None:
        """Connects (negotiate, transport, handshake); returns once connected."""
        self._call(n.fn.signalr_connection_start_blocking, timeout_ms(timeout))

    def stop(self, timeout: Optional[float] = None) -> None:
        """Closes the connection; pending calls fail with :class:`ConnectionClosedError`. Returns
        after the close callbacks ran. Does nothing when already disconnected."""
        self._call(n.fn.signalr_connection_stop_blocking, timeout_ms(timeout))

    def invoke(self, method: str, *args: Any, timeout: Optional[float] = None) -> Any:
        """Calls a hub method and returns its result (``None`` for a void method). Iterators
        among ``args`` are sent as upload streams. A server error raises :class:`HubError`."""
        plain, uploads = split_uploads(args)
        if uploads:
            return self._with_uploads(n.fn.signalr_connection_invoke_with_uploads, method, plain, uploads, timeout)
        out = c_void_p()
        self._call(
            n.fn.signalr_connection_invoke_blocking,
            cstr(method, "method name"), dumps_args(plain), timeout_ms(timeout), byref(out),
        )
        try:
            return loads(string_at(out.value)) if out.value else None
        finally:
            n.fn.signalr_string_free(out)

    def send(self, method: str, *args: Any, timeout: Optional[float] = None) -> None:
        """Calls a hub method without waiting for its result; returns once the message is
        written. Iterators among ``args`` are sent as upload streams."""
        plain, uploads = split_uploads(args)
        if uploads:
            self._with_uploads(n.fn.signalr_connection_send_with_uploads, method, plain, uploads, timeout)
            return
        self._call(n.fn.signalr_connection_send_blocking, cstr(method, "method name"), dumps_args(plain), timeout_ms(timeout))

    def stream(self, method: str, *args: Any) -> StreamIterator:
        """Starts a server-to-client stream and returns an iterator of its items. Iterators
        among ``args`` are sent as upload streams."""
        plain, uploads = split_uploads(args)
        sink = _QueueSink()
        stream = StreamIterator(sink)
        out = n.stream_p()
        key = handles.insert(sink)
        if uploads:
            ups = upload_array(len(uploads))
            self._call(
                n.fn.signalr_connection_stream_with_uploads,
                cstr(method, "method name"), dumps_args(plain), len(uploads), ups,
                on_stream_item, on_completion, key, userdata_free, byref(out),
            )
            stream._attach(out)
            start_pumps(ups, uploads, None)
        else:
            self._call(
                n.fn.signalr_connection_stream,
                cstr(method, "method name"), dumps_args(plain), on_stream_item, on_completion, key, userdata_free, byref(out),
            )
            stream._attach(out)
        return stream

    def _with_uploads(self, native: Any, method: str, plain: List[Any], uploads: List[Any], timeout: Optional[float]) -> Any:
        _no_deadlock(method)
        done = _ThreadCompletion()
        ups = upload_array(len(uploads))
        self._call(
            native, cstr(method, "method name"), dumps_args(plain), len(uploads), ups, on_completion, handles.insert(done), userdata_free
        )
        start_pumps(ups, uploads, None)
        return done.wait(timeout)


    def __exit__(self, *exc: Any) -> None:
        try:
            if not self.closed and not in_callback():
                self.stop()
        finally:
            self.close()


class AsyncHubConnection(_ConnectionBase):
    """A connection to a SignalR hub for asyncio. Create it with
    :meth:`HubConnectionBuilder.build_async`. ``async with connection:`` stops and frees it on
    exit. Handlers and callbacks run on the event loop that called :meth:`start`."""

    def _dispatcher(self) -> LoopDispatcher:
        return self._core.attach_loop(asyncio.get_running_loop())

    async def _completion(self, native: Any, *args: Any) -> Any:
        done = _LoopCompletion(self._dispatcher())
        self._call(native, *args, on_completion, handles.insert(done), userdata_free)
        return await done.future

    async def start(self) -> None:
        """Connects (negotiate, transport, handshake); returns once connected."""
        await self._completion(n.fn.signalr_connection_start)

    async def stop(self) -> None:
        """Closes the connection; pending calls fail with :class:`ConnectionClosedError`.
        Returns after the close callbacks were called. Does nothing when already disconnected."""
        await self._completion(n.fn.signalr_connection_stop)

    async def invoke(self, method: str, *args: Any) -> Any:
        """Calls a hub method and returns its result (``None`` for a void method). Iterators and
        async iterables among ``args`` are sent as upload streams. A server error raises
        :class:`HubError`."""
        plain, uploads = split_uploads(args)
        if uploads:
            return await self._with_uploads(n.fn.signalr_connection_invoke_with_uploads, method, plain, uploads)
        return await self._completion(n.fn.signalr_connection_invoke, cstr(method, "method name"), dumps_args(plain))

    async def send(self, method: str, *args: Any) -> None:
        """Calls a hub method without waiting for its result; returns once the message is
        written. Iterators and async iterables among ``args`` are sent as upload streams."""
        plain, uploads = split_uploads(args)
        if uploads:
            await self._with_uploads(n.fn.signalr_connection_send_with_uploads, method, plain, uploads)
            return
        await self._completion(n.fn.signalr_connection_send, cstr(method, "method name"), dumps_args(plain))

    def stream(self, method: str, *args: Any) -> AsyncStream:
        """Starts a server-to-client stream (at once; call it inside the event loop) and returns
        an async iterator of its items. Iterators and async iterables among ``args`` are sent as
        upload streams."""
        dispatcher = self._dispatcher()
        plain, uploads = split_uploads(args)
        sink = _LoopSink(dispatcher)
        stream = AsyncStream(sink)
        out = n.stream_p()
        key = handles.insert(sink)
        if uploads:
            ups = upload_array(len(uploads))
            self._call(
                n.fn.signalr_connection_stream_with_uploads,
                cstr(method, "method name"), dumps_args(plain), len(uploads), ups,
                on_stream_item, on_completion, key, userdata_free, byref(out),
            )
            stream._attach(out)
            start_pumps(ups, uploads, dispatcher.loop)
        else:
            self._call(
                n.fn.signalr_connection_stream,
                cstr(method, "method name"), dumps_args(plain), on_stream_item, on_completion, key, userdata_free, byref(out),
            )
            stream._attach(out)
        return stream

    async def _with_uploads(self, native: Any, method: str, plain: List[Any], uploads: List[Any]) -> Any:
        dispatcher = self._dispatcher()
        done = _LoopCompletion(dispatcher)
        ups = upload_array(len(uploads))
        self._call(
            native, cstr(method, "method name"), dumps_args(plain), len(uploads), ups, on_completion, handles.insert(done), userdata_free
        )
        start_pumps(ups, uploads, dispatcher.loop)
        return await done.future

    async def __aenter__(self) -> "AsyncHubConnection":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        try:
            if not self.closed:
                await self.stop()
        finally:
            self.close()
