"""Loads the native library and declares every C function it exports (include/signalr.h).

Each function gets ``argtypes`` and ``restype``: ctypes' default return type (``c_int``) would
truncate pointers. ``tests/test_declarations.py`` parses the header and checks every declaration
here against it, so a change of the C API that is not mirrored here fails the suite.

``ctypes.CDLL`` releases the GIL for the duration of every call, so a call that blocks inside the
library (``_blocking`` functions, ``signalr_connection_free``) never stops a library thread that
needs the GIL to run a Python callback.
"""

from __future__ import annotations

import ctypes
import os
import sys
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_int64,
    c_size_t,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import List

from ._version import __version__

#: Environment variable naming a prebuilt library to load instead of the shipped one.
LIBRARY_ENV = "SIGNALR_NATIVE_LIBRARY"


def _library_file_name() -> str:
    if sys.platform == "win32":
        return "signalr_native.dll"
    if sys.platform == "darwin":
        return "libsignalr_native.dylib"
    return "libsignalr_native.so"


def _candidates() -> List[Path]:
    """Where the library is looked for, in order: the environment variable, the copy shipped in
    the package, then the cargo output of the checkout this package sits in (development)."""
    paths: List[Path] = []
    env = os.environ.get(LIBRARY_ENV)
    if env:
        paths.append(Path(env))
    here = Path(__file__).resolve().parent
    name = _library_file_name()
    paths.append(here / "_lib" / name)
    checkout = here.parent.parent.parent  # bindings/python/signalr_native -> repository root
    for profile in ("release", "debug"):
        paths.append(checkout / "target" / profile / name)
    return paths


def _load() -> ctypes.CDLL:
    tried = []
    for path in _candidates():
        if not path.is_file():
            tried.append(f"{path} (not found)")
            continue
        try:
            return ctypes.CDLL(str(path))
        except OSError as e:
            tried.append(f"{path} ({e})")
    raise ImportError(
        "signalr_native: cannot load the native library; tried:\n  "
        + "\n  ".join(tried)
        + f"\nSet {LIBRARY_ENV} to the path of libsignalr_native, or reinstall the package."
    )


lib = _load()
# The same library with calls that keep the GIL, for QUICK functions below.
_lib_keeping_gil = ctypes.PyDLL(lib._name)

#: Functions that return at once without waiting for anything (they queue work, read state, or
#: free memory) and never call back into Python. They are called without releasing the GIL:
#: releasing it for a call this short only hands it to the callback thread, and taking it back
#: then costs more than the call (seen as ~4 µs per message answered on a busy event loop).
QUICK = frozenset({
    "signalr_responder_complete",
    "signalr_responder_complete_with_error",
    "signalr_responder_free",
    "signalr_upload_write",
    "signalr_upload_complete",
    "signalr_upload_complete_with_error",
    "signalr_string_free",
    "signalr_connection_get_state",
    "signalr_connection_get_transport",
    "signalr_connection_get_connection_id",
    "signalr_last_error_message",
    "signalr_result_name",
    "signalr_version",
})


# Opaque handle types: empty structures, used through POINTER(...) only.
class signalr_builder(Structure):
    pass


class signalr_connection(Structure):
    pass


class signalr_stream(Structure):
    pass


class signalr_upload(Structure):
    pass


class signalr_responder(Structure):
    pass


class signalr_token_request(Structure):
    pass


builder_p = POINTER(signalr_builder)
connection_p = POINTER(signalr_connection)
stream_p = POINTER(signalr_stream)
upload_p = POINTER(signalr_upload)
responder_p = POINTER(signalr_responder)
token_request_p = POINTER(signalr_token_request)

# Callback types. Borrowed strings arrive as (c_void_p, c_size_t) and are copied with
# ctypes.string_at before the callback returns; user data arrives as an int key (or None for 0).
signalr_userdata_free = CFUNCTYPE(None, c_void_p)
signalr_log_callback = CFUNCTYPE(None, c_void_p, c_uint32, c_void_p, c_size_t, c_void_p, c_size_t)
signalr_completion_callback = CFUNCTYPE(
    None, c_void_p, c_uint32, c_void_p, c_size_t, c_void_p, c_size_t
)
signalr_handler_callback = CFUNCTYPE(None, c_void_p, c_void_p, c_size_t, c_void_p, c_size_t)
signalr_batch_handler_callback = CFUNCTYPE(None, c_void_p, c_void_p, c_size_t, c_void_p, c_size_t, c_size_t)
signalr_invocation_handler_callback = CFUNCTYPE(
    None, c_void_p, c_void_p, c_size_t, c_void_p, c_size_t, responder_p
)
signalr_stream_item_callback = CFUNCTYPE(None, c_void_p, c_void_p, c_size_t)
signalr_state_changed_callback = CFUNCTYPE(None, c_void_p, c_uint32, c_uint32)
signalr_closed_callback = CFUNCTYPE(None, c_void_p, c_uint32, c_void_p, c_size_t)
signalr_reconnecting_callback = CFUNCTYPE(None, c_void_p, c_uint32, c_void_p, c_size_t)
signalr_reconnected_callback = CFUNCTYPE(None, c_void_p, c_void_p, c_size_t)
signalr_access_token_callback = CFUNCTYPE(None, c_void_p, token_request_p)
signalr_reconnect_policy_callback = CFUNCTYPE(
    c_int64, c_void_p, c_uint64, c_uint64, c_void_p, c_size_t
)

# NULL function pointers (ctypes does not accept None where a CFUNCTYPE argument is declared).
NO_USERDATA_FREE = signalr_userdata_free()
NO_LOG_CALLBACK = signalr_log_callback()
NO_COMPLETION = signalr_completion_callback()

result = c_uint32
owned_string_out = POINTER(c_void_p)  # char ** filled with a string freed by signalr_string_free

#: name -> (restype, argtypes). The single place the C signatures are written down in Python.
DECLARATIONS = {
    # plumbing
    "signalr_log_set_callback": (result, [signalr_log_callback, c_void_p, signalr_userdata_free, c_uint32]),
    "signalr_log_set_level": (result, [c_uint32]),
    "signalr_last_error_message": (c_char_p, []),
    "signalr_result_name": (c_char_p, [c_uint32]),
    "signalr_string_free": (None, [c_void_p]),
    "signalr_version": (c_char_p, []),
    # builder
    "signalr_builder_new": (result, [c_char_p, POINTER(builder_p)]),
    "signalr_builder_set_transports": (result, [builder_p, c_uint32]),
    "signalr_builder_set_skip_negotiation": (result, [builder_p, c_bool]),
    "signalr_builder_add_header": (result, [builder_p, c_char_p, c_char_p]),
    "signalr_builder_set_access_token_provider": (
        result, [builder_p, signalr_access_token_callback, c_void_p, signalr_userdata_free]),
    "signalr_builder_set_protocol": (result, [builder_p, c_uint32]),
    "signalr_builder_set_http_timeout_ms": (result, [builder_p, c_uint64]),
    "signalr_builder_set_server_timeout_ms": (result, [builder_p, c_uint64]),
    "signalr_builder_set_keep_alive_interval_ms": (result, [builder_p, c_uint64]),
    "signalr_builder_set_handshake_timeout_ms": (result, [builder_p, c_uint64]),
    "signalr_builder_set_max_message_size": (result, [builder_p, c_size_t]),
    "signalr_builder_set_automatic_reconnect": (result, [builder_p, POINTER(c_uint64), c_size_t]),
    "signalr_builder_set_reconnect_policy": (
        result, [builder_p, signalr_reconnect_policy_callback, c_void_p, signalr_userdata_free]),
    "signalr_builder_set_stateful_reconnect": (result, [builder_p, c_bool]),
    "signalr_builder_set_stateful_reconnect_buffer_size": (result, [builder_p, c_size_t]),
    "signalr_builder_add_trusted_ca_pem": (result, [builder_p, POINTER(c_uint8), c_size_t]),
    "signalr_builder_add_trusted_ca_file": (result, [builder_p, c_char_p]),
    "signalr_builder_build": (result, [builder_p, POINTER(connection_p)]),
    "signalr_builder_free": (None, [builder_p]),
    "signalr_token_request_complete": (result, [token_request_p, c_char_p, c_char_p]),
    # connection
    "signalr_connection_start": (
        result, [connection_p, signalr_completion_callback, c_void_p, signalr_userdata_free]),
    "signalr_connection_start_blocking": (result, [connection_p, c_uint64]),
    "signalr_connection_stop": (
        result, [connection_p, signalr_completion_callback, c_void_p, signalr_userdata_free]),
    "signalr_connection_stop_blocking": (result, [connection_p, c_uint64]),
    "signalr_connection_invoke": (
        result,
        [connection_p, c_char_p, c_char_p, signalr_completion_callback, c_void_p, signalr_userdata_free]),
    "signalr_connection_invoke_blocking": (
        result, [connection_p, c_char_p, c_char_p, c_uint64, owned_string_out]),
    "signalr_connection_send": (
        result,
        [connection_p, c_char_p, c_char_p, signalr_completion_callback, c_void_p, signalr_userdata_free]),
    "signalr_connection_send_blocking": (result, [connection_p, c_char_p, c_char_p, c_uint64]),
    "signalr_connection_stream": (
        result,
        [connection_p, c_char_p, c_char_p, signalr_stream_item_callback, signalr_completion_callback,
         c_void_p, signalr_userdata_free, POINTER(stream_p)]),
    "signalr_stream_cancel": (result, [stream_p]),
    "signalr_stream_free": (None, [stream_p]),
    "signalr_connection_invoke_with_uploads": (
        result,
        [connection_p, c_char_p, c_char_p, c_size_t, POINTER(upload_p), signalr_completion_callback,
         c_void_p, signalr_userdata_free]),
    "signalr_connection_send_with_uploads": (
        result,
        [connection_p, c_char_p, c_char_p, c_size_t, POINTER(upload_p), signalr_completion_callback,
         c_void_p, signalr_userdata_free]),
    "signalr_connection_stream_with_uploads": (
        result,
        [connection_p, c_char_p, c_char_p, c_size_t, POINTER(upload_p), signalr_stream_item_callback,
         signalr_completion_callback, c_void_p, signalr_userdata_free, POINTER(stream_p)]),
    "signalr_upload_write": (result, [upload_p, c_char_p]),
    "signalr_upload_complete": (result, [upload_p]),
    "signalr_upload_complete_with_error": (result, [upload_p, c_char_p]),
    "signalr_upload_free": (None, [upload_p]),
    "signalr_connection_on": (
        result,
        [connection_p, c_char_p, signalr_handler_callback, c_void_p, signalr_userdata_free,
         POINTER(c_uint64)]),
    "signalr_connection_on_batch": (
        result,
        [connection_p, c_char_p, signalr_batch_handler_callback, c_void_p, signalr_userdata_free,
         POINTER(c_uint64)]),
    "signalr_connection_on_invocation": (
        result,
        [connection_p, c_char_p, signalr_invocation_handler_callback, c_void_p, signalr_userdata_free,
         POINTER(c_uint64)]),
    "signalr_connection_off": (result, [connection_p, c_char_p]),
    "signalr_connection_remove_handler": (result, [connection_p, c_uint64]),
    "signalr_responder_complete": (result, [responder_p, c_char_p]),
    "signalr_responder_complete_with_error": (result, [responder_p, c_char_p]),
    "signalr_responder_free": (None, [responder_p]),
    "signalr_connection_on_state_changed": (
        result, [connection_p, signalr_state_changed_callback, c_void_p, signalr_userdata_free]),
    "signalr_connection_on_closed": (
        result, [connection_p, signalr_closed_callback, c_void_p, signalr_userdata_free]),
    "signalr_connection_on_reconnecting": (
        result, [connection_p, signalr_reconnecting_callback, c_void_p, signalr_userdata_free]),
    "signalr_connection_on_reconnected": (
        result, [connection_p, signalr_reconnected_callback, c_void_p, signalr_userdata_free]),
    "signalr_connection_get_state": (c_uint32, [connection_p]),
    "signalr_connection_get_connection_id": (result, [connection_p, owned_string_out]),
    "signalr_connection_get_transport": (c_uint32, [connection_p]),
    "signalr_connection_free": (None, [connection_p]),
}


class _Functions:
    """The declared functions as attributes (``fn.signalr_connection_start(...)``).

    A function the loaded library lacks (an older build) raises ``ImportError`` naming it when it
    is first used, so the plumbing still works with a library from before the full C API."""

    def __getattr__(self, name: str):
        try:
            restype, argtypes = DECLARATIONS[name]
        except KeyError:
            raise AttributeError(name) from None
        try:
            f = getattr(_lib_keeping_gil if name in QUICK else lib, name)
        except AttributeError:
            raise ImportError(f"the native library ({lib._name}) does not export {name}") from None
        f.restype = restype
        f.argtypes = argtypes
        setattr(self, name, f)
        return f


fn = _Functions()

# Fail loudly at import when the library was built from another version of the C API.
_lib_version = fn.signalr_version().decode()
if _lib_version != __version__:
    raise ImportError(
        f"signalr_native {__version__} found native library version {_lib_version} "
        f"at {lib._name}; they must match"
    )
