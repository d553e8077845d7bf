"""Exceptions, one class per family of ``signalr_result`` codes.

Every failure raised by this package is a :class:`SignalRError` carrying the library's ``code``
(an int, ``SIGNALR_RESULT_*``) and its message. Classes that match a built-in meaning also
derive from the built-in (``InvalidArgumentError`` is a ``ValueError``, ``SignalRTimeoutError`` a
``TimeoutError``), so ordinary ``except`` clauses work.
"""

from __future__ import annotations

from typing import Dict, Optional, Type

from ._native import fn

# signalr_result values (include/signalr.h; tests/test_declarations.py checks them).
OK = 0
INVALID_ARGUMENT = 1
NULL_PARAMETER = 2
INVALID_UTF8 = 3
INVALID_JSON = 4
INVALID_STATE = 5
HUB_ERROR = 6
CONNECTION_CLOSED = 7
CANCELED = 8
TIMEOUT = 9
NEGOTIATION_FAILED = 10
TRANSPORT_FAILED = 11
PROTOCOL_ERROR = 12
HANDSHAKE_FAILED = 13
UNAUTHORIZED = 14
WOULD_DEADLOCK = 15
PANIC = 16
BUFFER_TOO_SMALL = 17
INTERNAL = 18

RESULT_NAMES: Dict[int, str] = {
    value: "SIGNALR_RESULT_" + name
    for name, value in dict(globals()).items()
    if name.isupper() and isinstance(value, int)
}


class SignalRError(Exception):
    """A failure reported by the SignalR client library.

    ``code`` is the ``signalr_result`` value, ``code_name`` its constant name."""

    def __init__(self, message: str, code: int = INTERNAL) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    @property
    def code_name(self) -> str:
        return RESULT_NAMES.get(self.code, "SIGNALR_RESULT_UNKNOWN")


class InvalidArgumentError(SignalRError, ValueError):
    """An argument was rejected (bad value, not valid UTF-8, not JSON, not supported)."""


class InvalidStateError(SignalRError):
    """The operation is not allowed in the connection's current state (e.g. invoke while
    disconnected, start twice, a second client-result handler for one method)."""


class WouldDeadlockError(InvalidStateError):
    """A blocking call was made from inside a handler or callback of the connection, where it
    would wait for itself. Use the asyncio API or hand the work to another thread."""


class HubError(SignalRError):
    """The hub method failed on the server; ``message`` is the server's error text verbatim."""


class ConnectionClosedError(SignalRError):
    """The connection closed (or was lost) before the operation completed."""


class CanceledError(SignalRError):
    """The operation was canceled (by stop, close, or a stream's cancel)."""


class SignalRTimeoutError(SignalRError, TimeoutError):
    """The operation did not complete within its timeout."""


class ConnectionFailedError(SignalRError):
    """Connecting failed or the connection broke; the subclasses say at which step."""


class NegotiationError(ConnectionFailedError):
    """Negotiation failed (HTTP error, server error, redirect loop, no usable transport)."""


class TransportError(ConnectionFailedError):
    """The transport failed to connect or broke."""


class ProtocolError(ConnectionFailedError):
    """The server sent something the hub protocol does not allow."""


class HandshakeError(ConnectionFailedError):
    """The server refused the hub handshake."""


class UnauthorizedError(ConnectionFailedError):
    """The server answered 401 Unauthorized."""


class InternalError(SignalRError):
    """An internal failure of the library (including a caught panic)."""


_CLASSES: Dict[int, Type[SignalRError]] = {
    INVALID_ARGUMENT: InvalidArgumentError,
    NULL_PARAMETER: InvalidArgumentError,
    INVALID_UTF8: InvalidArgumentError,
    INVALID_JSON: InvalidArgumentError,
    INVALID_STATE: InvalidStateError,
    WOULD_DEADLOCK: WouldDeadlockError,
    HUB_ERROR: HubError,
    CONNECTION_CLOSED: ConnectionClosedError,
    CANCELED: CanceledError,
    TIMEOUT: SignalRTimeoutError,
    NEGOTIATION_FAILED: NegotiationError,
    TRANSPORT_FAILED: TransportError,
    PROTOCOL_ERROR: ProtocolError,
    HANDSHAKE_FAILED: HandshakeError,
    UNAUTHORIZED: UnauthorizedError,
}


def error_from(code: int, message: Optional[str]) -> SignalRError:
    """The exception for a status code and its message."""
    cls = _CLASSES.get(code, InternalError)
    if not message:
        message = RESULT_NAMES.get(code, f"signalr_result {code}")
    return cls(message, code)


def check(rc: int) -> None:
    """Raises the exception for a failed call; call it right after the C call, on the same
    thread, since the message lives in a thread-local of the library."""
    if rc != OK:
        raise error_from(rc, fn.signalr_last_error_message().decode("utf-8", "replace"))


def cstr(value: str, what: str) -> bytes:
    """UTF-8 for a C string argument; a NUL inside would silently cut it short, so it is refused."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if "\0" in value:
        raise InvalidArgumentError(f"{what} contains a NUL character: {value!r}", INVALID_ARGUMENT)
    return value.encode("utf-8")
