"""`Managed`: the owner of one native handle, freed exactly once."""

from __future__ import annotations

import atexit
import sys
import threading
import weakref
from typing import Any, Generic, Optional, TypeVar

P = TypeVar("P")


class Managed(Generic[P]):
    """Owns one native pointer. ``close()`` frees it (idempotent, thread-safe); using the object
    afterwards raises ``ValueError``. ``__del__`` closes it too, except while the interpreter is
    shutting down (the ``atexit`` hook below has closed live connections by then)."""

    _handle: Optional[P] = None
    _handle_lock: threading.Lock

    def _set_handle(self, handle: P) -> None:
        self._handle_lock = threading.Lock()
        self._handle = handle

    def _ptr(self) -> P:
        handle = self._handle
        if handle is None:
            raise ValueError(f"{type(self).__name__} is closed")
        return handle

    def _take(self) -> Optional[P]:
        """Removes the handle from this object (for closing, or for a call that consumes it)."""
        lock = self.__dict__.get("_handle_lock")
        if lock is None:
            return None
        with lock:
            handle, self._handle = self._handle, None
        return handle

    @property
    def closed(self) -> bool:
        return self._handle is None

    def close(self) -> None:
        handle = self._take()
        if handle is not None:
            self._free(handle)

    def _free(self, handle: P) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if sys.is_finalizing():
            return
        try:
            self.close()
        except Exception:  # pragma: no cover - nothing sensible to do in a finalizer
            pass


# Connections still open at interpreter exit; closed by the hook before Python tears down, so
# the library never calls into a half-destroyed interpreter.
_live: "weakref.WeakSet[Managed[Any]]" = weakref.WeakSet()


def track(obj: Managed[Any]) -> None:
    _live.add(obj)


@atexit.register
def _close_live() -> None:
    for obj in list(_live):
        try:
            obj.close()
        except Exception:
            pass
    from . import _logging  # the log callback goes last: closing may still log

    _logging.uninstall()
