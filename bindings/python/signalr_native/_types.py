"""Public enums and small value types."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable, Optional, Union


class HubConnectionState(enum.IntEnum):
    """The state of a connection (``signalr_connection_state``)."""

    DISCONNECTED = 0
    CONNECTING = 1
    CONNECTED = 2
    DISCONNECTING = 3
    RECONNECTING = 4


class HttpTransportType(enum.IntFlag):
    """Transports, as bit flags (the official clients' ``HttpTransportType``)."""

    NONE = 0
    WEB_SOCKETS = 1
    SERVER_SENT_EVENTS = 2
    LONG_POLLING = 4


class HubProtocol(enum.IntEnum):
    """The hub protocol (``signalr_protocol``)."""

    JSON = 0
    MESSAGEPACK = 1


_TRANSPORT_NAMES = {
    "websockets": HttpTransportType.WEB_SOCKETS,
    "web_sockets": HttpTransportType.WEB_SOCKETS,
    "serversentevents": HttpTransportType.SERVER_SENT_EVENTS,
    "server_sent_events": HttpTransportType.SERVER_SENT_EVENTS,
    "sse": HttpTransportType.SERVER_SENT_EVENTS,
    "longpolling": HttpTransportType.LONG_POLLING,
    "long_polling": HttpTransportType.LONG_POLLING,
}

TransportSpec = Union[HttpTransportType, int, str, Iterable[Union[HttpTransportType, str]]]


def transport_mask(spec: Optional[TransportSpec]) -> int:
    """A transport mask from a flag, a name ("websockets", "sse", "long_polling"…) or several."""
    if spec is None:
        return 0
    if isinstance(spec, int):
        return int(spec)
    if isinstance(spec, str):
        key = spec.replace("-", "_").lower()
        if key not in _TRANSPORT_NAMES:
            key = key.replace("_", "")
        if key not in _TRANSPORT_NAMES:
            raise ValueError(
                f"unknown transport {spec!r}; use 'websockets', 'server_sent_events' or 'long_polling'"
            )
        return int(_TRANSPORT_NAMES[key])
    mask = 0
    for item in spec:
        mask |= transport_mask(item)
    return mask


def protocol_value(protocol: Union[HubProtocol, str]) -> HubProtocol:
    if isinstance(protocol, HubProtocol):
        return protocol
    key = str(protocol).lower()
    if key == "json":
        return HubProtocol.JSON
    if key in ("messagepack", "msgpack"):
        return HubProtocol.MESSAGEPACK
    raise ValueError(f"unknown hub protocol {protocol!r}; use 'json' or 'messagepack'")


@dataclass(frozen=True)
class RetryContext:
    """What a reconnect policy is told before each attempt (as the official ``RetryContext``)."""

    previous_retry_count: int
    elapsed_seconds: float
    retry_reason: Optional[str]
