"""The ctypes declarations in _native.py match include/signalr.h exactly (functions, callback
typedefs, enum values), and the versions agree. No server needed."""

from __future__ import annotations

import ctypes
import re
from ctypes import POINTER, c_bool, c_char_p, c_int64, c_size_t, c_uint8, c_uint32, c_uint64, c_void_p
from pathlib import Path

import pytest

import signalr_native
from signalr_native import _errors, _native as n
from signalr_native._types import HttpTransportType, HubConnectionState, HubProtocol

ROOT = Path(__file__).resolve().parents[3]
HEADER = ROOT / "include" / "signalr.h"


def _clean(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"^\s*#[^\n]*", " ", text, flags=re.M)
    return re.sub(r"\s+", " ", text)


def _split_param(param: str):
    """'const char *method' -> 'const char *' (the type, normalised)."""
    param = param.strip().replace("struct ", "")
    if param == "void":
        return None
    m = re.match(r"^(.*?)(\w+)$", param)
    assert m, f"cannot parse parameter {param!r}"
    return _norm(m.group(1))


def _norm(ctype: str) -> str:
    ctype = re.sub(r"\s*\*", " *", ctype.strip())
    ctype = re.sub(r"\*\s+\*", "**", ctype)
    return re.sub(r"\s+", " ", ctype).strip()


def _params(text: str):
    return [t for t in (_split_param(p) for p in text.split(",")) if t is not None] if text.strip() else []


def parse_header():
    text = _clean(HEADER.read_text())
    callbacks = {}
    for ret, name, params in re.findall(r"typedef ([\w\s\*]+?)\s*\(\*\s*(\w+)\)\s*\(([^)]*)\);", text):
        callbacks[name] = (_norm(ret), _params(params))
    functions = {}
    for ret, name, params in re.findall(r"(?:^|(?<=[;{}]))\s*([\w\s\*]+?)\s*\b(signalr_\w+)\s*\(([^)]*)\);", text):
        if ret.strip().startswith("typedef"):
            continue
        functions[name] = (_norm(ret), _params(params))
    opaque = set(re.findall(r"typedef struct (signalr_\w+) \1;", text))
    enums = {k: int(v) for k, v in re.findall(r"\b(SIGNALR_[A-Z0-9_]+) = (\d+)", text)}
    return functions, callbacks, opaque, enums


FUNCTIONS, CALLBACKS, OPAQUE, ENUMS = parse_header()

_SCALARS = {
    "signalr_result": c_uint32,
    "uint32_t": c_uint32,
    "uint64_t": c_uint64,
    "int64_t": c_int64,
    "size_t": c_size_t,
    "bool": c_bool,
    "void *": c_void_p,
    "const uint64_t *": POINTER(c_uint64),
    "uint64_t *": POINTER(c_uint64),
    "const uint8_t *": POINTER(c_uint8),
    "char **": POINTER(c_void_p),
    "char *": c_void_p,  # an owned string handed back to signalr_string_free
}


def expected(ctype: str, where: str):
    """The ctypes type(s) accepted for a C type; ``where`` is 'param', 'return' or 'callback'."""
    if ctype == "void" and where in ("return", "callback-return"):
        return {None}
    if ctype in _SCALARS:
        return {_SCALARS[ctype]}
    if ctype == "const char *":
        # Into the library and static returns: c_char_p; borrowed (ptr, len) in callbacks: c_void_p.
        return {c_void_p} if where == "callback" else {c_char_p}
    if ctype in CALLBACKS or ctype == "signalr_userdata_free":
        return {getattr(n, ctype)}
    m = re.fullmatch(r"(?:const )?(signalr_\w+) (\*+)", ctype)
    if m and hasattr(n, m.group(1)):
        t = getattr(n, m.group(1))
        for _ in m.group(2):
            t = POINTER(t)
        return {t}
    raise AssertionError(f"no ctypes mapping for the C type {ctype!r}")


def test_header_was_parsed():
    assert "signalr_version" in FUNCTIONS and "signalr_log_callback" in CALLBACKS
    assert ENUMS["SIGNALR_RESULT_OK"] == 0


def test_every_header_function_is_declared():
    missing = sorted(set(FUNCTIONS) - set(n.DECLARATIONS))
    assert not missing, f"declare these in _native.py: {missing}"


def test_every_declaration_is_in_the_header_and_the_library():
    extra = sorted(set(n.DECLARATIONS) - set(FUNCTIONS))
    assert not extra, f"not in include/signalr.h: {extra}"
    absent = sorted(name for name in n.DECLARATIONS if not hasattr(n.lib, name))
    assert not absent, f"not exported by {n.lib._name}: {absent}"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_signature(name):
    ret, params = FUNCTIONS[name]
    restype, argtypes = n.DECLARATIONS[name]
    assert restype in expected(ret, "return"), f"{name}: restype {restype} for {ret}"
    assert len(argtypes) == len(params), f"{name}: {len(argtypes)} argtypes for {params}"
    for i, (ctype, declared) in enumerate(zip(params, argtypes)):
        assert declared in expected(ctype, "param"), f"{name} argument {i}: {declared} for {ctype}"


@pytest.mark.parametrize("name", sorted(CALLBACKS))
def test_callback_typedef(name):
    ret, params = CALLBACKS[name]
    cft = getattr(n, name)
    assert cft._restype_ in expected(ret, "callback-return")
    assert len(cft._argtypes_) == len(params), f"{name}: {cft._argtypes_} for {params}"
    for i, (ctype, declared) in enumerate(zip(params, cft._argtypes_)):
        assert declared in expected(ctype, "callback"), f"{name} argument {i}: {declared} for {ctype}"


def test_opaque_types_are_declared():
    for name in OPAQUE:
        assert issubclass(getattr(n, name), ctypes.Structure), name


def test_result_codes_match():
    header = {k[len("SIGNALR_RESULT_"):]: v for k, v in ENUMS.items() if k.startswith("SIGNALR_RESULT_")}
    ours = {name: getattr(_errors, name) for name in header}
    assert ours == header
    for code, name in _errors.RESULT_NAMES.items():
        assert n.fn.signalr_result_name(code).decode() == name


@pytest.mark.parametrize(
    "prefix, enum",
    [
        ("SIGNALR_CONNECTION_STATE_", HubConnectionState),
        ("SIGNALR_TRANSPORT_", HttpTransportType),
        ("SIGNALR_PROTOCOL_", HubProtocol),
    ],
)
def test_enums_match(prefix, enum):
    header = {k[len(prefix):].replace("_", ""): v for k, v in ENUMS.items() if k.startswith(prefix)}
    assert header, f"no {prefix}* values in the header"
    ours = {name.replace("_", ""): int(m.value) for name, m in enum.__members__.items()}
    assert ours == header


def test_versions_agree():
    cargo = (ROOT / "Cargo.toml").read_text()
    version = re.search(r'\[package\][^\[]*?\nversion = "([^"]+)"', cargo).group(1)
    assert signalr_native.__version__ == version == signalr_native.library_version()


def test_library_lookup_order_and_failure(monkeypatch, tmp_path):
    monkeypatch.setenv(n.LIBRARY_ENV, str(tmp_path / "custom.so"))
    paths = n._candidates()
    assert paths[0] == tmp_path / "custom.so"
    assert paths[1].parent.name == "_lib"  # the copy shipped in the package
    assert [p.parent.name for p in paths[2:]] == ["release", "debug"]  # a checkout's cargo output
    bad = tmp_path / "not-a-library.so"
    bad.write_text("nope")
    monkeypatch.setattr(n, "_candidates", lambda: [tmp_path / "missing.so", bad])
    with pytest.raises(ImportError) as e:
        n._load()
    assert "missing.so (not found)" in str(e.value) and "not-a-library.so (" in str(e.value)
    assert n.LIBRARY_ENV in str(e.value)
