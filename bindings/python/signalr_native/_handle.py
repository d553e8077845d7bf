"""`Managed`: the owner of one native handle, freed exactly once, never while a call uses it."""

from __future__ import annotations

import atexit
import sys
import threading
import weakref
from typing import Any, Callable, Generic, Optional, TypeVar

from ._errors import check

P = TypeVar("P")


class Managed(Generic[P]):
    """Owns one native pointer. ``close()`` frees it (idempotent, thread-safe); using the object
    afterwards raises ``ValueError``. ``__del__`` closes it too, except while the interpreter is
    shutting down (the ``atexit`` hook below has closed live connections by then).

    Calls go through :meth:`_call`, which counts the calls in progress: a ``close()`` on another
    thread first interrupts them (``_interrupt``: the connection stops, which makes waiting calls
    return), waits until they have left the library, and only then frees the handle — so no call
    ever starts with a freed pointer. Called from inside a library callback, ``close()`` does not
    wait: the last call to return frees the handle."""

    _handle: Optional[P] = None

    def _set_handle(self, handle: P) -> None:
        # Calls take the bare lock (a C-level context manager); only close() waits on the
        # condition built on it.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._users = 0
        self._deferred: Optional[P] = None
        self._handle = handle

    def _acquire(self) -> P:
        lock = self.__dict__.get("_lock")
        if lock is None:
            raise ValueError(f"{type(self).__name__} is closed")
        with lock:
            handle = self._handle
            if handle is None:
                raise ValueError(f"{type(self).__name__} is closed")
            self._users += 1
            return handle

    def _release(self) -> None:
        with self._lock:
            self._users -= 1
            # Only a close() in progress (it cleared the handle first) waits for the last user.
            if self._users or self._handle is not None:
                return
            self._cond.notify_all()
            handle, self._deferred = self._deferred, None
        if handle is not None:
            self._free(handle)

    def _call(self, function: Callable[..., int], *args: Any) -> None:
        """``function(handle, *args)``, raising the error of a non-OK status."""
        handle = self._acquire()
        try:
            check(function(handle, *args))
        finally:
            self._release()

    def _get(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(handle, *args)`` for a function that returns a value, not a status."""
        handle = self._acquire()
        try:
            return function(handle, *args)
        finally:
            self._release()

    @property
    def closed(self) -> bool:
        return self._handle is None

    def close(self) -> None:
        cond = self.__dict__.get("_cond")
        if cond is None:
            return
        with cond:
            handle, self._handle = self._handle, None
            if handle is None:
                return
            busy = self._users > 0
        if busy:
            self._interrupt(handle)
            from ._callbacks import in_callback

            with cond:
                if self._users and in_callback():
                    self._deferred = handle  # the last call to leave frees it
                    return
                cond.wait_for(lambda: self._users == 0)
        self._free(handle)

    def _interrupt(self, handle: P) -> None:
        """Makes calls in progress return soon (before the handle is freed)."""

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
