//! User data that comes with every callback registration (convention 8).
//!
//! The library owns the release: `free_fn(userdata)` runs exactly once, after the last call that
//! used it has returned, never concurrently with one (the value is kept in an `Arc`; each call
//! holds a clone, and the release runs when the last clone drops).

use std::ffi::c_void;

/// Releases a user-data pointer given to the library together with a callback.
///
/// Called on: any library thread, exactly once, after every call of that callback has returned.
pub type signalr_userdata_free = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

pub(crate) struct UserData {
    ptr: *mut c_void,
    free: signalr_userdata_free,
}

// SAFETY: the C API contract requires callbacks and their user data to be usable from library
// threads (documented on every registration function).
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

impl UserData {
    pub fn new(ptr: *mut c_void, free: signalr_userdata_free) -> Self {
        UserData { ptr, free }
    }

    pub fn ptr(&self) -> *mut c_void {
        self.ptr
    }
}

impl Drop for UserData {
    fn drop(&mut self) {
        if let Some(free) = self.free {
            // A panic cannot come from C, but a C++ exception must not unwind here either: documented.
            unsafe { free(self.ptr) }
        }
    }
}
