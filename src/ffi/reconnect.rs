//! The reconnect policy as a C callback: `signalr_reconnect_policy_callback`.

use std::ffi::{c_char, c_void};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::builder::Slot;
use super::dispatcher::CallbackScope;
use super::operation::c_text;
use super::userdata::UserData;
use crate::{ReconnectPolicy, RetryContext};

/// Decides the delay before the next automatic reconnect attempt: returns it in ms, or -1 (any
/// negative value) to stop reconnecting.
///
/// `previous_retry_count` is 0 before the first attempt; `elapsed_ms` the time since
/// reconnecting began; `retry_reason` (borrowed, NUL-terminated, valid until the callback
/// returns) why the connection was lost or why the last attempt failed.
/// Called on: a library thread, not the callback thread, possibly while other callbacks of the
/// connection run. It must return quickly and must not call `_blocking` functions (they return
/// `SIGNALR_RESULT_WOULD_DEADLOCK`). Must not unwind.
pub type signalr_reconnect_policy_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        previous_retry_count: u64,
        elapsed_ms: u64,
        retry_reason: *const c_char,
        reason_len: usize,
    ) -> i64,
>;

type Callback = unsafe extern "C" fn(*mut c_void, u64, u64, *const c_char, usize) -> i64;

pub(crate) struct PolicySlot {
    /// Read-locked during each call, so that teardown (write lock) waits for a running call.
    callback: RwLock<Option<(Callback, UserData)>>,
}

impl PolicySlot {
    pub fn new(callback: Callback, userdata: UserData) -> Arc<PolicySlot> {
        Arc::new(PolicySlot { callback: RwLock::new(Some((callback, userdata))) })
    }

    pub fn policy(self: &Arc<Self>) -> impl ReconnectPolicy + 'static {
        Policy(self.clone())
    }
}

struct Policy(Arc<PolicySlot>);

impl ReconnectPolicy for Policy {
    fn next_retry_delay(&self, context: &RetryContext) -> Option<Duration> {
        let guard = self.0.callback.read().unwrap_or_else(|p| p.into_inner());
        let (callback, userdata) = guard.as_ref()?;
        let reason = c_text(&context.retry_reason.to_string());
        let elapsed = u64::try_from(context.elapsed.as_millis()).unwrap_or(u64::MAX);
        let _scope = CallbackScope::enter();
        let delay = unsafe {
            callback(userdata.ptr(), context.previous_retry_count, elapsed, reason.as_ptr().cast(), reason.len() - 1)
        };
        u64::try_from(delay).ok().map(Duration::from_millis)
    }
}

impl Slot for PolicySlot {
    fn release(&self) {
        let taken = self.callback.write().unwrap_or_else(|p| p.into_inner()).take();
        drop(taken);
    }
}
