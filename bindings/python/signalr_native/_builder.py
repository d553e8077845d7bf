"""`HubConnectionBuilder`: configures and creates connections, like the official clients'."""

from __future__ import annotations

import asyncio
import os
from ctypes import byref, c_uint8, c_uint64
from typing import Any, Callable, Dict, List, Optional, Sequence, Union, cast

from . import _logging
from . import _native as n
from ._callbacks import handles, on_access_token, on_reconnect_policy, run_awaitable_in_thread, userdata_free, is_awaitable
from ._connection import AsyncHubConnection, HubConnection, _Core
from ._errors import check, cstr
from ._logging import logger
from ._types import HubProtocol, RetryContext, TransportSpec, protocol_value, transport_mask

AccessTokenFactory = Callable[[], Any]
ReconnectPolicy = Any  # a callable(RetryContext) or an object with next_retry_delay(RetryContext)


def _ms(seconds: float, what: str) -> int:
    if seconds < 0:
        raise ValueError(f"{what} must not be negative (got {seconds})")
    return int(round(seconds * 1000))


class _TokenProvider:
    """Answers the library's access-token requests from the user's factory (which may return a
    string, None, or an awaitable of one)."""

    def __init__(self, factory: AccessTokenFactory) -> None:
        self.factory = factory
        self.core: Optional[_Core] = None

    def on_token_request(self, request: Any) -> None:
        try:
            value = self.factory()
        except Exception as e:
            logger.error("the access token factory raised", exc_info=True)
            self._complete(request, None, e)
            return
        if not is_awaitable(value):
            self._complete(request, value, None)
            return
        dispatcher = self.core.dispatcher if self.core is not None else None
        if dispatcher is not None and not dispatcher.loop.is_closed():

            async def run() -> Any:
                return await value

            future = asyncio.run_coroutine_threadsafe(run(), dispatcher.loop)
            future.add_done_callback(
                lambda f: self._complete(request, None if f.exception() else f.result(), f.exception())
            )
        else:
            run_awaitable_in_thread(value, lambda v, e: self._complete(request, v, e))

    @staticmethod
    def _complete(request: Any, token: Any, error: Optional[BaseException]) -> None:
        if error is not None:
            message = f"the access token factory failed: {type(error).__name__}: {error}"
            n.fn.signalr_token_request_complete(request, None, message.encode("utf-8", "replace"))
            return
        n.fn.signalr_token_request_complete(request, str(token).replace("\0", "").encode() if token else None, None)


class _PolicyTarget:
    def __init__(self, policy: ReconnectPolicy) -> None:
        self.next_retry_delay: Callable[[RetryContext], Optional[float]] = cast(
            Callable[[RetryContext], Optional[float]], getattr(policy, "next_retry_delay", policy)
        )
        if not callable(self.next_retry_delay):
            raise TypeError("a reconnect policy is a callable or has a next_retry_delay(context) method")

    def next_delay_ms(self, count: int, elapsed_ms: int, reason: Optional[str]) -> int:
        delay = self.next_retry_delay(RetryContext(count, elapsed_ms / 1000.0, reason))
        if delay is None:
            return -1
        return _ms(float(delay), "reconnect delay")


class HubConnectionBuilder:
    """Configures a connection; each ``with_*`` method returns the builder.

    Example::

        connection = (
            HubConnectionBuilder()
            .with_url("http://localhost:5000/hub", transport="websockets")
            .with_hub_protocol("messagepack")
            .with_automatic_reconnect()
            .configure_logging(logging.INFO)
            .build()
        )

    Durations are in seconds (floats allowed).
    """

    def __init__(self) -> None:
        self._url: Optional[str] = None
        self._transports = 0
        self._headers: Dict[str, str] = {}
        self._token_factory: Optional[AccessTokenFactory] = None
        self._skip_negotiation = False
        self._protocol = HubProtocol.JSON
        self._reconnect: Optional[Union[List[float], ReconnectPolicy]] = None
        self._reconnect_set = False
        self._stateful = False
        self._stateful_buffer: Optional[int] = None
        self._timeouts: Dict[str, int] = {}
        self._max_message_size: Optional[int] = None
        self._ca_pems: List[bytes] = []
        self._ca_files: List[str] = []

    def with_url(
        self,
        url: str,
        transport: Optional[TransportSpec] = None,
        *,
        headers: Optional[Dict[str, str]] = None,
        access_token_factory: Optional[AccessTokenFactory] = None,
        skip_negotiation: bool = False,
    ) -> "HubConnectionBuilder":
        """The hub's URL (``http(s)://…``) and how to reach it.

        ``transport``: an :class:`HttpTransportType` mask, a name (``"websockets"``,
        ``"server_sent_events"``, ``"long_polling"``) or a list of them; default: all.
        ``headers``: sent with every HTTP request. ``access_token_factory``: called before each
        negotiate and connect; returns the bearer token (or an awaitable of it), ``None`` for
        none. ``skip_negotiation``: connect the WebSocket directly (WebSockets only)."""
        self._url = url
        self._transports = transport_mask(transport)
        self._headers = dict(headers or {})
        self._token_factory = access_token_factory
        self._skip_negotiation = skip_negotiation
        return self

    def with_hub_protocol(self, protocol: Union[HubProtocol, str]) -> "HubConnectionBuilder":
        """``"json"`` (default) or ``"messagepack"``. Arguments and results are Python values
        that JSON can represent in both cases."""
        self._protocol = protocol_value(protocol)
        return self

    def with_automatic_reconnect(
        self, retry_delays: Optional[Union[Sequence[float], ReconnectPolicy]] = None
    ) -> "HubConnectionBuilder":
        """Reconnect after a lost connection. ``retry_delays``: seconds to wait before each
        attempt (default 0, 2, 10, 30, then give up), or a policy — a callable, or an object
        with ``next_retry_delay(context)``, given a :class:`RetryContext` and returning the delay
        in seconds or ``None`` to stop."""
        if retry_delays is not None and not callable(retry_delays) and not hasattr(retry_delays, "next_retry_delay"):
            retry_delays = [float(d) for d in retry_delays]
        self._reconnect = retry_delays
        self._reconnect_set = True
        return self

    def with_stateful_reconnect(self, buffer_size: Optional[int] = None) -> "HubConnectionBuilder":
        """Ask the server for stateful reconnect: a dropped transport is re-connected and the
        messages in flight replayed, without losing the connection. ``buffer_size`` bounds the
        unacknowledged bytes kept for replay."""
        self._stateful = True
        self._stateful_buffer = buffer_size
        return self

    def with_server_timeout(self, seconds: float) -> "HubConnectionBuilder":
        """Close when nothing was received for this long (default 30 s)."""
        self._timeouts["server"] = _ms(seconds, "server timeout")
        return self

    def with_keep_alive_interval(self, seconds: float) -> "HubConnectionBuilder":
        """Send a ping when nothing was sent for this long (default 15 s)."""
        self._timeouts["keep_alive"] = _ms(seconds, "keep-alive interval")
        return self

    def with_handshake_timeout(self, seconds: float) -> "HubConnectionBuilder":
        self._timeouts["handshake"] = _ms(seconds, "handshake timeout")
        return self

    def with_http_timeout(self, seconds: float) -> "HubConnectionBuilder":
        self._timeouts["http"] = _ms(seconds, "HTTP timeout")
        return self

    def with_max_message_size(self, size: int) -> "HubConnectionBuilder":
        """The largest message accepted from the server, in bytes."""
        self._max_message_size = size
        return self

    def with_trusted_certificate(self, pem: Union[bytes, str, "os.PathLike[str]"]) -> "HubConnectionBuilder":
        """Trust a CA certificate (PEM bytes, or the path of a PEM file) besides the system's."""
        if isinstance(pem, bytes):
            self._ca_pems.append(pem)
        else:
            self._ca_files.append(os.fspath(pem))
        return self

    def configure_logging(self, level: Optional[int]) -> "HubConnectionBuilder":
        """Forward the library's log records at or above ``level`` (a :mod:`logging` level) to
        :mod:`logging` (loggers ``signalr_native.*``); ``None`` turns them off. Process-wide: it
        applies to every connection."""
        _logging.configure(level)
        return self

    # -- building --

    def build(self) -> HubConnection:
        """A blocking :class:`HubConnection` (not started)."""
        handle, core = self._build(asynchronous=False)
        return HubConnection(handle, core)

    def build_async(self) -> AsyncHubConnection:
        """An asyncio :class:`AsyncHubConnection` (not started; this method is not a coroutine)."""
        handle, core = self._build(asynchronous=True)
        return AsyncHubConnection(handle, core)

    def _build(self, asynchronous: bool) -> Any:
        if self._url is None:
            raise ValueError("with_url() must be called before build()")
        f = n.fn
        b = n.builder_p()
        check(f.signalr_builder_new(cstr(self._url, "URL"), byref(b)))
        core = _Core(asynchronous)
        try:
            check(f.signalr_builder_set_transports(b, self._transports))
            if self._skip_negotiation:
                check(f.signalr_builder_set_skip_negotiation(b, True))
            for name, value in self._headers.items():
                check(f.signalr_builder_add_header(b, cstr(name, "header name"), cstr(str(value), "header value")))
            if self._token_factory is not None:
                provider = _TokenProvider(self._token_factory)
                provider.core = core
                check(f.signalr_builder_set_access_token_provider(b, on_access_token, handles.insert(provider), userdata_free))
            check(f.signalr_builder_set_protocol(b, int(self._protocol)))
            setters = {
                "http": f.signalr_builder_set_http_timeout_ms,
                "server": f.signalr_builder_set_server_timeout_ms,
                "keep_alive": f.signalr_builder_set_keep_alive_interval_ms,
                "handshake": f.signalr_builder_set_handshake_timeout_ms,
            }
            for key, ms in self._timeouts.items():
                check(setters[key](b, ms))
            if self._max_message_size is not None:
                check(f.signalr_builder_set_max_message_size(b, self._max_message_size))
            if self._reconnect_set:
                policy = self._reconnect
                if policy is None:
                    check(f.signalr_builder_set_automatic_reconnect(b, None, 0))
                elif isinstance(policy, list) and not policy:  # no delays: never retry
                    target = _PolicyTarget(lambda _context: None)
                    check(f.signalr_builder_set_reconnect_policy(b, on_reconnect_policy, handles.insert(target), userdata_free))
                elif isinstance(policy, list):
                    delays = (c_uint64 * len(policy))(*(_ms(d, "reconnect delay") for d in policy))
                    check(f.signalr_builder_set_automatic_reconnect(b, delays, len(policy)))
                else:
                    target = _PolicyTarget(policy)
                    check(f.signalr_builder_set_reconnect_policy(b, on_reconnect_policy, handles.insert(target), userdata_free))
            if self._stateful:
                check(f.signalr_builder_set_stateful_reconnect(b, True))
                if self._stateful_buffer is not None:
                    check(f.signalr_builder_set_stateful_reconnect_buffer_size(b, self._stateful_buffer))
            for pem in self._ca_pems:
                check(f.signalr_builder_add_trusted_ca_pem(b, (c_uint8 * len(pem)).from_buffer_copy(pem), len(pem)))
            for path in self._ca_files:
                check(f.signalr_builder_add_trusted_ca_file(b, cstr(path, "certificate path")))
        except BaseException:
            f.signalr_builder_free(b)
            raise
        connection = n.connection_p()
        check(f.signalr_builder_build(b, byref(connection)))  # consumes the builder either way
        return connection, core
