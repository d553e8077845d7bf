//! The panic boundary and argument checks every exported function goes through (conventions 11–12).
//!
//! `ffi_call!` runs a body returning `FfiResult`, records its outcome for
//! `signalr_last_error_message`, and turns a panic into `SIGNALR_RESULT_PANIC`. `ffi_value!` does
//! the same for infallible functions, which return a documented default instead.

use std::any::Any;
use std::ffi::{c_char, CStr};

use super::result::{Failure, FfiResult};
use super::signalr_result;

/// Runs a fallible FFI body: never unwinds into C.
macro_rules! ffi_call {
    ($body:block) => {
        $crate::ffi::boundary::call(move || -> $crate::ffi::result::FfiResult { $body })
    };
}

/// Runs an infallible FFI body: a panic yields `$default`.
macro_rules! ffi_value {
    ($default:expr, $body:block) => {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || $body)).unwrap_or($default)
    };
}

pub(crate) fn call(body: impl FnOnce() -> FfiResult) -> signalr_result {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))
        .unwrap_or_else(|payload| Err(Failure::new(signalr_result::Panic, panic_message(&*payload))));
    super::result::record(&outcome)
}

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".into());
    format!("internal panic caught at the C boundary: {detail}")
}

fn null(name: &str) -> Failure {
    Failure::new(signalr_result::NullParameter, format!("`{name}` is NULL"))
}

/// A borrowed NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, name: &str) -> FfiResult<&'a str> {
    if ptr.is_null() {
        return Err(null(name));
    }
    let bytes = CStr::from_ptr(ptr).to_bytes();
    std::str::from_utf8(bytes).map_err(|e| {
        Failure::new(
            signalr_result::InvalidUtf8,
            format!("`{name}` is not valid UTF-8 at byte {}", e.valid_up_to()),
        )
    })
}

/// Like [`str_arg`], but NULL means "not given".
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(ptr: *const c_char, name: &str) -> FfiResult<Option<&'a str>> {
    if ptr.is_null() {
        Ok(None)
    } else {
        str_arg(ptr, name).map(Some)
    }
}

/// Ties an opaque C handle type (an empty marker struct) to the Rust value behind its pointer.
///
/// Every handle of this API is a `Box` of its `Inner` owned by the caller: created by
/// [`to_handle`], borrowed by [`handle_ref`]/[`handle_mut`], released by [`take_handle`]. These
/// are the only pointer casts of the C API.
pub(crate) trait BoxCastable {
    type Inner;
}

/// Hands `value` to C as a caller-owned handle.
pub(crate) fn to_handle<C: BoxCastable>(value: C::Inner) -> *mut C {
    Box::into_raw(Box::new(value)).cast()
}

/// Borrows the value behind a handle.
///
/// # Safety
/// `ptr` is NULL or a live handle of type `C` from [`to_handle`].
pub(crate) unsafe fn handle_ref<'a, C: BoxCastable>(ptr: *const C, name: &str) -> FfiResult<&'a C::Inner> {
    ptr.cast::<C::Inner>().as_ref().ok_or_else(|| null(name))
}

/// Mutably borrows the value behind a single-owner handle (a builder).
///
/// # Safety
/// `ptr` is NULL or a live handle of type `C` that no other thread uses during the call.
pub(crate) unsafe fn handle_mut<'a, C: BoxCastable>(ptr: *mut C, name: &str) -> FfiResult<&'a mut C::Inner> {
    ptr.cast::<C::Inner>().as_mut().ok_or_else(|| null(name))
}

/// Takes back ownership of a handle (for `_free` and consuming calls); `None` for NULL.
///
/// # Safety
/// `ptr` is NULL or a live handle of type `C` from [`to_handle`], not used afterwards.
pub(crate) unsafe fn take_handle<C: BoxCastable>(ptr: *mut C) -> Option<Box<C::Inner>> {
    (!ptr.is_null()).then(|| Box::from_raw(ptr.cast::<C::Inner>()))
}

/// A borrowed array argument; NULL is allowed only with length 0.
///
/// # Safety
/// `ptr` is NULL or points to `len` readable values valid for the call.
pub(crate) unsafe fn slice_arg<'a, T>(ptr: *const T, len: usize, name: &str) -> FfiResult<&'a [T]> {
    match (ptr.is_null(), len) {
        (true, 0) => Ok(&[]),
        (true, _) => Err(null(name)),
        (false, _) => Ok(std::slice::from_raw_parts(ptr, len)),
    }
}

/// A JSON arguments array (`"[]"` for none), validated here so that a malformed one fails the
/// call itself rather than its completion.
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn json_array_arg(ptr: *const c_char, name: &str) -> FfiResult<crate::Payload> {
    let text = str_arg(ptr, name)?;
    let payload = crate::Payload::from_json(text.to_owned())
        .map_err(|e| Failure::new(signalr_result::InvalidJson, format!("`{name}`: {e}")))?;
    if !payload.is_array() {
        return Err(Failure::new(signalr_result::InvalidJson, format!("`{name}` must be a JSON array (\"[]\" for none)")));
    }
    Ok(payload)
}

/// A single JSON value (an upload item, a client result).
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn json_value_arg(ptr: *const c_char, name: &str) -> FfiResult<crate::Payload> {
    let text = str_arg(ptr, name)?;
    crate::Payload::from_json(text.to_owned())
        .map_err(|e| Failure::new(signalr_result::InvalidJson, format!("`{name}`: {e}")))
}

/// An out-parameter, checked before any work so that it is written only on success.
///
/// # Safety
/// `ptr` is NULL or valid for a write of `T`.
pub(crate) unsafe fn out_arg<'a, T>(ptr: *mut T, name: &str) -> FfiResult<&'a mut T> {
    ptr.as_mut().ok_or_else(|| null(name))
}

/// Validates an enum value given as `uint32_t` (an out-of-range Rust enum would be UB).
pub(crate) fn enum_arg<T>(value: u32, name: &str, parse: impl FnOnce(u32) -> Option<T>) -> FfiResult<T> {
    parse(value).ok_or_else(|| {
        Failure::new(signalr_result::InvalidArgument, format!("`{name}` has no meaning for value {value}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_a_status_and_a_message() {
        let rc = call(|| panic!("boom"));
        assert_eq!(rc, signalr_result::Panic);
        let msg = unsafe { CStr::from_ptr(super::super::signalr_last_error_message()) };
        assert!(msg.to_str().unwrap().contains("boom"), "{msg:?}");
    }

    #[test]
    fn invalid_utf8_names_the_argument_and_the_byte() {
        let bytes = b"ab\xffc\0";
        let err = unsafe { str_arg(bytes.as_ptr().cast(), "method") }.unwrap_err();
        assert_eq!(err.code, signalr_result::InvalidUtf8);
        assert_eq!(err.message, "`method` is not valid UTF-8 at byte 2");
    }

    #[test]
    fn null_arguments_are_errors() {
        let err = unsafe { str_arg(std::ptr::null(), "url") }.unwrap_err();
        assert_eq!((err.code, err.message.as_str()), (signalr_result::NullParameter, "`url` is NULL"));
        assert!(unsafe { slice_arg::<u8>(std::ptr::null(), 0, "data") }.unwrap().is_empty());
        assert_eq!(unsafe { slice_arg::<u8>(std::ptr::null(), 3, "data") }.unwrap_err().code, signalr_result::NullParameter);
    }

    #[test]
    fn success_clears_the_last_error() {
        call(|| Err(Failure::new(signalr_result::Timeout, "slow")));
        call(|| Ok(()));
        let msg = unsafe { CStr::from_ptr(super::super::signalr_last_error_message()) };
        assert_eq!(msg.to_bytes(), b"");
    }
}
