"""Bridge from the library's log records to Python's :mod:`logging`.

The library has one process-wide log callback. Records go to the logger named after the Rust
module with ``::`` turned into ``.`` (``signalr_native.connection.dispatch``), so the usual
``logging`` configuration selects and formats them. The wrapper's own records (handler exceptions
and the like) use the ``signalr_native`` logger.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from typing import Dict, Optional

from ._native import NO_LOG_CALLBACK, NO_USERDATA_FREE, fn, signalr_log_callback

logger = logging.getLogger("signalr_native")

#: logging.TRACE does not exist; library trace records use this level (below DEBUG).
TRACE = 5

# signalr_log_level -> logging level
_TO_PY = {0: TRACE, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR, 5: logging.CRITICAL}
_NONE = 6

_loggers: Dict[bytes, logging.Logger] = {}
_lock = threading.Lock()
_installed = False


def native_level(level: int) -> int:
    """The library's level filter for a Python ``logging`` level."""
    if level <= TRACE:
        return 0
    if level <= logging.DEBUG:
        return 1
    if level <= logging.INFO:
        return 2
    if level <= logging.WARNING:
        return 3
    if level <= logging.ERROR:
        return 4
    if level <= logging.CRITICAL:
        return 5
    return _NONE


def _logger_for(target: bytes) -> logging.Logger:
    log = _loggers.get(target)
    if log is None:
        log = logging.getLogger(target.decode("utf-8", "replace").replace("::", "."))
        _loggers[target] = log
    return log


@signalr_log_callback
def _on_log(_userdata, level, target, target_len, message, message_len):  # pragma: no branch
    try:
        log = _logger_for(ctypes.string_at(target, target_len) if target else b"signalr_native")
        py_level = _TO_PY.get(level, logging.ERROR)
        if log.isEnabledFor(py_level):
            log.log(py_level, "%s", ctypes.string_at(message, message_len).decode("utf-8", "replace"))
    except BaseException:  # never unwind into the library
        pass


def configure(level: Optional[int]) -> None:
    """Forwards library records at or above ``level`` (a ``logging`` level) to ``logging``;
    ``None`` turns the library's logging off. Process-wide."""
    global _installed
    from ._errors import check

    native = _NONE if level is None else native_level(level)
    with _lock:
        if not _installed:
            check(fn.signalr_log_set_callback(_on_log, None, NO_USERDATA_FREE, native))
            _installed = True
        else:
            check(fn.signalr_log_set_level(native))
        if level is not None:
            # The library filters by the level given; let logging not filter those records again.
            base = logging.getLogger("signalr_native")
            if base.level == logging.NOTSET or base.level > level:
                base.setLevel(level)


def uninstall() -> None:
    """Removes the callback (at interpreter exit, after live connections are closed)."""
    global _installed
    with _lock:
        if _installed:
            fn.signalr_log_set_callback(NO_LOG_CALLBACK, None, NO_USERDATA_FREE, _NONE)
            _installed = False
