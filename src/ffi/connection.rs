//! `signalr_connection`: a hub connection — start, stop, state, connection id, transport, free.
//! Calls, streams, handlers and lifecycle callbacks have their own files.

use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::blocking::{block_on, may_block, wait_on, waiting_would_deadlock};
use super::boundary::{handle_ref, out_arg, take_handle, BoxCastable};
use super::builder::{signalr_transport, Slot};
use super::dispatcher::{Dispatcher, Job};
use super::handlers::Registrations;
use super::lifecycle::LifecycleCallbacks;
use super::operation::{signalr_completion_callback, Callbacks, Ops, Work};
use super::result::{Failure, FfiResult};
use super::signalr_result;
use super::strings::to_owned_c_string;
use super::userdata::signalr_userdata_free;
use crate::{ConnectionState, HubConnection};

/// A connection to a hub, from `signalr_builder_build`.
///
/// Thread safety: every function may be called from any thread, concurrently, and from inside
/// the connection's own callbacks. Callbacks of one connection run on the connection's own
/// callback thread, never overlap, and arrive in the order the server sent what they report.
/// Ownership: freed exactly once with `signalr_connection_free`; as with `free()`, no other call
/// on the same handle may overlap or follow that call (the program orders them, e.g. with a lock
/// or by joining its other threads first).
pub struct signalr_connection {
    _private: [u8; 0],
}

impl BoxCastable for signalr_connection {
    type Inner = Arc<Connection>;
}

/// Connection states (`uint32_t` values), as the official clients name them.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum signalr_connection_state {
    Disconnected = 0,
    Connecting = 1,
    Connected = 2,
    Disconnecting = 3,
    Reconnecting = 4,
}

impl From<ConnectionState> for signalr_connection_state {
    fn from(state: ConnectionState) -> Self {
        match state {
            ConnectionState::Disconnected => Self::Disconnected,
            ConnectionState::Connecting => Self::Connecting,
            ConnectionState::Connected => Self::Connected,
            ConnectionState::Disconnecting => Self::Disconnecting,
            ConnectionState::Reconnecting => Self::Reconnecting,
        }
    }
}

/// How long `signalr_connection_free` (outside callbacks) waits for the connection to close.
const FREE_STOP_WAIT: Duration = Duration::from_secs(5);

/// Everything behind a `signalr_connection` handle. Library hooks hold it weakly.
pub(crate) struct Connection {
    pub hub: HubConnection,
    pub dispatcher: Dispatcher,
    pub ops: Ops,
    pub handlers: Registrations,
    pub lifecycle: LifecycleCallbacks,
    /// The builder's access-token provider and reconnect policy, released at teardown.
    pub slots: Vec<Arc<dyn Slot>>,
    freed: AtomicBool,
    me: Weak<Connection>,
}

impl Connection {
    /// Wraps a built core connection and starts its callback thread.
    pub fn new(hub: HubConnection, slots: Vec<Arc<dyn Slot>>) -> FfiResult<Arc<Connection>> {
        let dispatcher = Dispatcher::new();
        let conn = Arc::new_cyclic(|me| Connection {
            me: me.clone(),
            hub,
            dispatcher,
            ops: Ops::default(),
            handlers: Registrations::default(),
            lifecycle: LifecycleCallbacks::default(),
            slots,
            freed: AtomicBool::new(false),
        });
        Dispatcher::start(&conn)
            .map_err(|e| Failure::new(signalr_result::Internal, format!("cannot start the callback thread: {e}")))?;
        Ops::spawn_pump(&conn);
        super::lifecycle::attach(&conn);
        Ok(conn)
    }

    pub fn weak(&self) -> Weak<Connection> {
        self.me.clone()
    }

    pub fn is_freed(&self) -> bool {
        self.freed.load(Ordering::Acquire)
    }

    /// Starts an asynchronous operation reported to `callbacks`.
    pub fn run_op(self: &Arc<Self>, work: Work, callbacks: Callbacks) -> FfiResult {
        self.ops.register(self, work, callbacks)?.start();
        Ok(())
    }

    /// On the callback thread, after the last job: cancel, release, end.
    pub fn teardown(&self) {
        self.ops.cancel_all();
        self.handlers.clear();
        self.lifecycle.clear();
        for slot in &self.slots {
            slot.release();
        }
    }

    fn free(self: Arc<Self>) {
        if self.freed.swap(true, Ordering::AcqRel) {
            return;
        }
        let hub = self.hub.clone();
        let stop = async move { hub.stop().await };
        if waiting_would_deadlock() {
            // Waiting here could deadlock: the teardown finishes when the callback returns.
            crate::runtime::global().spawn(stop);
            self.dispatcher.send(Job::Teardown);
            return;
        }
        // Outside callbacks the connection is closed when this returns (Close message written,
        // transport closed), bounded so that an unresponsive peer cannot hold a finalizer thread.
        // What the stop reports is not delivered any more: the connection is already freed.
        let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_on(Some(FREE_STOP_WAIT), stop).is_some()
        }));
        if !matches!(stopped, Ok(true)) {
            tracing::debug!("signalr_connection_free: the stop goes on in the background");
        }
        self.dispatcher.send(Job::Teardown);
        self.dispatcher.join();
    }
}

/// The connection behind a handle, as an owned reference (the handle may be freed by another
/// thread while a blocking call waits).
pub(crate) unsafe fn connection_arg(c: *const signalr_connection) -> FfiResult<Arc<Connection>> {
    Ok(handle_ref(c, "connection")?.clone())
}

/// Connects: negotiate, transport, hub handshake. Only from `DISCONNECTED`.
///
/// Ownership: `userdata` is released with `userdata_free` (may be NULL) exactly once: after
/// `done` returned, or before this function returns when it fails.
/// Called on: `done` on the connection's callback thread, exactly once when this returns OK.
/// Errors: `NULL_PARAMETER` (`c` or `done` NULL), `INVALID_STATE` (not `DISCONNECTED`),
/// `CONNECTION_CLOSED` (freed); failures of the start itself go to `done`.
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_start(
    c: *mut signalr_connection,
    done: signalr_completion_callback,
    userdata: *mut c_void,
    userdata_free: signalr_userdata_free,
) -> signalr_result {
    ffi_call!({
        let callbacks = Callbacks::new(done, None, userdata, userdata_free);
        let conn = connection_arg(c)?;
        if done.is_none() {
            return Err(Failure::new(signalr_result::NullParameter, "`done` is NULL"));
        }
        check_disconnected(&conn)?;
        let hub = conn.hub.clone();
        conn.run_op(Work::Future(Box::pin(async move { hub.start().await.map(|()| None) })), callbacks)
    })
}

fn check_disconnected(conn: &Connection) -> FfiResult {
    match conn.hub.state() {
        ConnectionState::Disconnected => Ok(()),
        state => Err(Failure::new(
            signalr_result::InvalidState,
            format!("cannot start a connection that is {state}; it must be Disconnected"),
        )),
    }
}

/// `signalr_connection_start`, waiting up to `timeout_ms` (0 = no limit). On timeout the start is
/// canceled (the connection returns to `DISCONNECTED`) and `SIGNALR_RESULT_TIMEOUT` returned.
///
/// Errors: as the start's completion; `WOULD_DEADLOCK` inside a library callback.
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_start_blocking(
    c: *mut signalr_connection,
    timeout_ms: u64,
) -> signalr_result {
    ffi_call!({
        may_block()?;
        let conn = connection_arg(c)?;
        check_disconnected(&conn)?;
        let hub = conn.hub.clone();
        let started = block_on(timeout_ms, async { hub.start().await.map_err(Failure::from) });
        if matches!(&started, Err(f) if f.code == signalr_result::Timeout) {
            // Cancel the start that is still running, so that the state is known again.
            let hub = conn.hub.clone();
            let _ = block_on(0, async move {
                hub.stop().await;
                Ok(())
            });
        }
        started
    })
}

/// Stops the connection: pending calls fail with `CONNECTION_CLOSED`, the close callbacks run,
/// then `done` (may be NULL). A no-op (still reported) when already `DISCONNECTED`; cancels a
/// start or a reconnect in progress.
///
/// Ownership: `userdata` as for `signalr_connection_start`.
/// Errors: `NULL_PARAMETER` (`c` NULL), `CONNECTION_CLOSED` (freed).
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_stop(
    c: *mut signalr_connection,
    done: signalr_completion_callback,
    userdata: *mut c_void,
    userdata_free: signalr_userdata_free,
) -> signalr_result {
    ffi_call!({
        let callbacks = Callbacks::new(done, None, userdata, userdata_free);
        let conn = connection_arg(c)?;
        let hub = conn.hub.clone();
        conn.run_op(
            Work::Future(Box::pin(async move {
                hub.stop().await;
                Ok(None)
            })),
            callbacks,
        )
    })
}

/// `signalr_connection_stop`, waiting up to `timeout_ms` (0 = no limit).
///
/// Errors: `NULL_PARAMETER`, `TIMEOUT`, `WOULD_DEADLOCK` inside a library callback.
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_stop_blocking(c: *mut signalr_connection, timeout_ms: u64) -> signalr_result {
    ffi_call!({
        may_block()?;
        let conn = connection_arg(c)?;
        let hub = conn.hub.clone();
        block_on(timeout_ms, async move {
            hub.stop().await;
            Ok(())
        })
    })
}

/// The connection's state, a `signalr_connection_state` value; `DISCONNECTED` for NULL.
///
/// Thread safety: any thread; the state may change right after it was read.
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_get_state(c: *const signalr_connection) -> u32 {
    ffi_value!(signalr_connection_state::Disconnected as u32, {
        match handle_ref(c, "connection") {
            Ok(conn) => signalr_connection_state::from(conn.hub.state()) as u32,
            Err(_) => signalr_connection_state::Disconnected as u32,
        }
    })
}

/// The server's id of this connection; `*out` = NULL when there is none (not connected, or
/// negotiation skipped). It changes on every reconnect.
///
/// Ownership: `*out` belongs to the caller: `signalr_string_free`.
/// Errors: `NULL_PARAMETER`.
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_get_connection_id(
    c: *const signalr_connection,
    out: *mut *mut c_char,
) -> signalr_result {
    ffi_call!({
        let out = out_arg(out, "out")?;
        let conn = handle_ref(c, "connection")?;
        *out = conn.hub.connection_id().map_or(std::ptr::null_mut(), |id| to_owned_c_string(&id));
        Ok(())
    })
}

/// The transport in use, a `signalr_transport` value; `NONE` when not connected (or for NULL).
///
/// Thread safety: any thread; it may change with a reconnect right after it was read.
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_get_transport(c: *const signalr_connection) -> u32 {
    ffi_value!(signalr_transport::None as u32, {
        match handle_ref(c, "connection").map(|conn| conn.hub.transport()) {
            Ok(Some(kind)) => kind as u32,
            _ => signalr_transport::None as u32,
        }
    })
}

/// Frees the connection, at any time, from any thread — also with calls in flight and from
/// inside one of its callbacks. NULL is a no-op.
///
/// It stops the connection; every pending completion is called exactly once with
/// `SIGNALR_RESULT_CANCELED`; then every user data of the connection is released. Called from
/// outside a library callback it returns after all of that — having waited up to 5 s for the
/// connection to close (Close message written, transport closed) — and no callback of the
/// connection runs any more. Called from inside a library callback it returns at once, and the teardown finishes
/// on the callback thread when the running callback returns (no callback other than those
/// cancellations starts after this returns).
/// Ownership: consumes `c`; streams, uploads and responders of the connection stay valid until
/// their own `_free` (their operations then fail).
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_free(c: *mut signalr_connection) {
    ffi_value!((), {
        if let Some(conn) = take_handle(c) {
            conn.free();
        }
    })
}
