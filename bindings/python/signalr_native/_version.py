"""The package version; it must equal the native library's `signalr_version()` (checked at import)
and the Rust crate's version (checked by tests/test_declarations.py)."""

__version__ = "0.1.0"
