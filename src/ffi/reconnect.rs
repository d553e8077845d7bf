//! The reconnect policy as a C callback: `signalr_reconnect_policy_callback`.

use std::ffi::{c_char, c_void};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::Duration;

use tokio::sync::oneshot;

use super::builder::Slot;
use super::connection::Connection;
use super::dispatcher::{CallbackScope, Job};
use super::operation::c_text;
use super::userdata::UserData;
use crate::{ReconnectPolicy, RetryContext};

/// Decides the delay before the next automatic reconnect attempt: returns it in ms, or -1 (any
/// negative value) to stop reconnecting.
///
/// `previous_retry_count` is 0 before the first attempt; `elapsed_ms` the time since
/// reconnecting began; `retry_reason` (borrowed, NUL-terminated, valid until the callback
/// returns) why the connection was lost or why the last attempt failed.
/// Called on: the connection's callback thread, in turn with the connection's other callbacks
/// (reconnecting waits for the answer; blocking there delays only this connection's callbacks;
/// `_blocking` functions return `SIGNALR_RESULT_WOULD_DEADLOCK`). When the connection is freed
/// before a pending call runs, the call is skipped and reconnecting stops. Must not unwind.
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
    /// The connection whose callback thread runs the callback.
    conn: OnceLock<Weak<Connection>>,
}

impl PolicySlot {
    pub fn new(callback: Callback, userdata: UserData) -> Arc<PolicySlot> {
        Arc::new(PolicySlot { callback: RwLock::new(Some((callback, userdata))), conn: OnceLock::new() })
    }

    /// Connects the slot to the connection whose callback thread runs it.
    pub fn bind(&self, conn: &Arc<Connection>) {
        let _ = self.conn.set(Arc::downgrade(conn));
    }

    /// Calls the callback on the current thread; `None` once released (or "stop").
    fn call(&self, previous_retry_count: u64, elapsed_ms: u64, reason: &str) -> Option<Duration> {
        let guard = self.callback.read().unwrap_or_else(|p| p.into_inner());
        let (callback, userdata) = guard.as_ref()?;
        let reason = c_text(reason);
        let _scope = CallbackScope::enter();
        let delay =
            unsafe { callback(userdata.ptr(), previous_retry_count, elapsed_ms, reason.as_ptr().cast(), reason.len() - 1) };
        u64::try_from(delay).ok().map(Duration::from_millis)
    }

    pub fn policy(self: &Arc<Self>) -> impl ReconnectPolicy + 'static {
        Policy(self.clone())
    }
}

struct Policy(Arc<PolicySlot>);

fn elapsed_ms(context: &RetryContext) -> u64 {
    u64::try_from(context.elapsed.as_millis()).unwrap_or(u64::MAX)
}

impl ReconnectPolicy for Policy {
    /// Not used by the reconnect loop (it awaits [`Self::next_retry_delay_async`]).
    fn next_retry_delay(&self, context: &RetryContext) -> Option<Duration> {
        self.0.call(context.previous_retry_count, elapsed_ms(context), &context.retry_reason.to_string())
    }

    /// Runs the callback on the connection's callback thread and awaits its answer. A call that
    /// never runs (the connection was freed first) drops the answer's sender: "stop".
    fn next_retry_delay_async<'a>(
        &'a self,
        context: &'a RetryContext,
    ) -> Pin<Box<dyn Future<Output = Option<Duration>> + Send + 'a>> {
        let (tx, rx) = oneshot::channel();
        let (count, elapsed, reason) = (context.previous_retry_count, elapsed_ms(context), context.retry_reason.to_string());
        if let Some(conn) = self.0.conn.get().and_then(Weak::upgrade) {
            let slot = self.0.clone();
            conn.dispatcher.send(Job::Callback(Box::new(move |_| {
                let _ = tx.send(slot.call(count, elapsed, &reason));
            })));
        }
        Box::pin(async move { rx.await.unwrap_or(None) })
    }
}

impl Slot for PolicySlot {
    fn release(&self) {
        let taken = self.callback.write().unwrap_or_else(|p| p.into_inner()).take();
        drop(taken);
    }
}
