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

/// A borrowed `(pointer, length)` byte slice; NULL is allowed only with length 0.
///
/// # Safety
/// `ptr` is NULL or points to `len` readable bytes valid for the call.
pub(crate) unsafe fn bytes_arg<'a>(ptr: *const u8, len: usize, name: &str) -> FfiResult<&'a [u8]> {
    match (ptr.is_null(), len) {
        (true, 0) => Ok(&[]),
        (true, _) => Err(null(name)),
        (false, _) => Ok(std::slice::from_raw_parts(ptr, len)),
    }
}

/// A shared reference to a library object handed out earlier.
///
/// # Safety
/// `ptr` is NULL or a live object of type `T` created by this library.
pub(crate) unsafe fn ref_arg<'a, T>(ptr: *const T, name: &str) -> FfiResult<&'a T> {
    ptr.as_ref().ok_or_else(|| null(name))
}

/// A mutable reference to a single-owner library object (a builder).
///
/// # Safety
/// `ptr` is NULL or a live object of type `T` that no other thread uses during the call.
pub(crate) unsafe fn mut_arg<'a, T>(ptr: *mut T, name: &str) -> FfiResult<&'a mut T> {
    ptr.as_mut().ok_or_else(|| null(name))
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
        assert!(unsafe { bytes_arg(std::ptr::null(), 0, "data") }.unwrap().is_empty());
        assert_eq!(unsafe { bytes_arg(std::ptr::null(), 3, "data") }.unwrap_err().code, signalr_result::NullParameter);
    }

    #[test]
    fn success_clears_the_last_error() {
        call(|| Err(Failure::new(signalr_result::Timeout, "slow")));
        call(|| Ok(()));
        let msg = unsafe { CStr::from_ptr(super::super::signalr_last_error_message()) };
        assert_eq!(msg.to_bytes(), b"");
    }
}
