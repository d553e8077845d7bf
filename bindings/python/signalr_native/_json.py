"""Arguments and results cross the C API as UTF-8 JSON text (the library transcodes to
MessagePack when that protocol is in use)."""

from __future__ import annotations

import json
from typing import Any, Optional, Sequence

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_scan = json.JSONDecoder().scan_once  # the C scanner, without decode()'s Python-level wrapping


def dumps(value: Any) -> bytes:
    """JSON text of a value; ``TypeError`` names a value JSON cannot represent."""
    return _encoder.encode(value).encode("utf-8")


def dumps_args(args: Sequence[Any]) -> bytes:
    return dumps(list(args))


def loads(payload: Optional[bytes]) -> Any:
    """The value of a JSON payload; ``None`` for no payload."""
    if payload is None:
        return None
    # The library sends compact UTF-8 JSON: decoding first spares json.loads its encoding
    # detection, and the scanner reads it without decode()'s whitespace handling.
    text = payload.decode("utf-8")
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        raise json.JSONDecodeError("Expecting value", text, 0) from None
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def timeout_ms(timeout: Optional[float]) -> int:
    """A timeout in seconds as the C API's milliseconds, where 0 means no limit."""
    if timeout is None:
        return 0
    if timeout < 0:
        raise ValueError(f"timeout must not be negative (got {timeout})")
    return max(1, int(timeout * 1000))
