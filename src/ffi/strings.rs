//! Strings the library returns to the caller (convention 7): owned `char*`, freed only here.

use std::ffi::{c_char, CString};

/// Frees a string returned by this library. NULL is a no-op.
///
/// Ownership: consumes `s`; never pass a string from elsewhere, nor one borrowed in a callback.
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn signalr_string_free(s: *mut c_char) {
    if !s.is_null() {
        ffi_value!((), {
            drop(CString::from_raw(s));
        })
    }
}

/// Hands `text` to C as an owned string (interior NULs replaced, as C cannot carry them).
pub(crate) fn to_owned_c_string(text: &str) -> *mut c_char {
    CString::new(text.replace('\0', "\u{FFFD}")).unwrap_or_default().into_raw()
}
