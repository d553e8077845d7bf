"""signalr_native: a fast ASP.NET Core SignalR client for Python, over the Rust library's C API.

Blocking::

    from signalr_native import HubConnectionBuilder

    with HubConnectionBuilder().with_url("http://localhost:5000/hub").build() as connection:
        connection.on("Message", lambda user, text: print(user, text))
        connection.start()
        print(connection.invoke("Add", 1, 2))          # 3
        for item in connection.stream("Counter", 3, 10):
            print(item)

asyncio::

    connection = HubConnectionBuilder().with_url(url).build_async()
    async with connection:
        await connection.start()
        print(await connection.invoke("Add", 1, 2))
        async for item in connection.stream("Counter", 3, 10):
            print(item)

Arguments and results are Python values JSON can represent (with either hub protocol).
Iterators (blocking and asyncio) and async iterables (asyncio) passed as arguments are sent as
upload streams. Failures raise :class:`SignalRError` subclasses.
"""

from ._version import __version__
from ._errors import (
    CanceledError,
    ConnectionClosedError,
    ConnectionFailedError,
    HandshakeError,
    HubError,
    InternalError,
    InvalidArgumentError,
    InvalidStateError,
    NegotiationError,
    ProtocolError,
    SignalRError,
    SignalRTimeoutError,
    TransportError,
    UnauthorizedError,
    WouldDeadlockError,
)
from ._types import HttpTransportType, HubConnectionState, HubProtocol, RetryContext
from ._connection import AsyncHubConnection, HubConnection
from ._streams import AsyncStream, StreamIterator
from ._builder import HubConnectionBuilder
from ._native import fn as _fn

__all__ = [
    "__version__",
    "HubConnectionBuilder",
    "HubConnection",
    "AsyncHubConnection",
    "StreamIterator",
    "AsyncStream",
    "HubConnectionState",
    "HttpTransportType",
    "HubProtocol",
    "RetryContext",
    "SignalRError",
    "InvalidArgumentError",
    "InvalidStateError",
    "WouldDeadlockError",
    "HubError",
    "ConnectionClosedError",
    "CanceledError",
    "SignalRTimeoutError",
    "ConnectionFailedError",
    "NegotiationError",
    "TransportError",
    "ProtocolError",
    "HandshakeError",
    "UnauthorizedError",
    "InternalError",
    "library_version",
]


def library_version() -> str:
    """The native library's version (equal to ``__version__``)."""
    version: bytes = _fn.signalr_version()
    return version.decode()
