//! The library version.

use std::ffi::c_char;

const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The library's version, e.g. "0.1.0" (the same as the `SIGNALR_VERSION` macro of the header
/// it was built with).
///
/// Ownership: static string, never NULL, never freed. Thread safety: any thread.
#[no_mangle]
pub extern "C" fn signalr_version() -> *const c_char {
    VERSION.as_ptr().cast()
}
