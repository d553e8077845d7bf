//! Lifecycle callbacks of a connection: state changes, closed, reconnecting, reconnected.
//!
//! The core is given one hook per event when the connection is built; each queues a job that
//! calls every C callback registered for that event, in registration order.

use std::ffi::{c_char, c_void};
use std::sync::{Arc, Mutex, MutexGuard};

use super::connection::{connection_arg, signalr_connection, signalr_connection_state, Connection};
use super::dispatcher::{CallbackScope, Job};
use super::invocation::require_callback;
use super::operation::c_text;
use super::result::{code_of, Failure, FfiResult};
use super::signalr_result;
use super::userdata::{signalr_userdata_free, UserData};
use crate::Error;

/// Told every state change: `old_state` and `new_state` are `signalr_connection_state` values.
///
/// Called on: the connection's callback thread, one call per change, in order.
/// May call any `signalr_` function except the `_blocking` ones. Must not unwind.
pub type signalr_state_changed_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, old_state: u32, new_state: u32)>;

/// Told that the connection closed: `result` is `SIGNALR_RESULT_OK` (error NULL, 0) after a
/// clean stop, else the status and text of the cause (borrowed, valid until the callback
/// returns).
///
/// Called on: the connection's callback thread, after every call the close failed was reported;
/// once per close. May call any `signalr_` function except the `_blocking` ones (a new start
/// included). Must not unwind.
pub type signalr_closed_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, result: signalr_result, error: *const c_char, error_len: usize)>;

/// Told that automatic reconnect began, with the status and text of the error that dropped the
/// connection (borrowed, valid until the callback returns).
///
/// Called on: as `signalr_closed_callback`.
pub type signalr_reconnecting_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, result: signalr_result, error: *const c_char, error_len: usize)>;

/// Told that automatic reconnect succeeded, with the new connection id (borrowed, valid until
/// the callback returns; NULL, 0 when negotiation is skipped).
///
/// Called on: as `signalr_closed_callback`.
pub type signalr_reconnected_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, connection_id: *const c_char, len: usize)>;

type StateFn = unsafe extern "C" fn(*mut c_void, u32, u32);
type ErrorFn = unsafe extern "C" fn(*mut c_void, signalr_result, *const c_char, usize);
type IdFn = unsafe extern "C" fn(*mut c_void, *const c_char, usize);

struct Registered<F> {
    callback: F,
    userdata: UserData,
}

#[derive(Default)]
pub(crate) struct LifecycleCallbacks {
    lists: Mutex<Lists>,
}

#[derive(Default)]
struct Lists {
    state: Vec<Arc<Registered<StateFn>>>,
    closed: Vec<Arc<Registered<ErrorFn>>>,
    reconnecting: Vec<Arc<Registered<ErrorFn>>>,
    reconnected: Vec<Arc<Registered<IdFn>>>,
    released: bool,
}

impl LifecycleCallbacks {
    fn lock(&self) -> MutexGuard<'_, Lists> {
        self.lists.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, add: impl FnOnce(&mut Lists)) -> FfiResult {
        let mut lists = self.lock();
        if lists.released {
            return Err(Failure::new(signalr_result::ConnectionClosed, "the connection was freed"));
        }
        add(&mut lists);
        Ok(())
    }

    /// Teardown: releases every registration (on the callback thread, so no call is running).
    pub fn clear(&self) {
        let lists = {
            let mut lists = self.lock();
            let taken = std::mem::take(&mut *lists);
            lists.released = true;
            taken
        };
        drop(lists);
    }

    fn state_changed(&self, old: u32, new: u32) {
        let list = self.lock().state.clone();
        let _scope = CallbackScope::enter();
        for r in list {
            unsafe { (r.callback)(r.userdata.ptr(), old, new) };
        }
    }

    fn error_event(&self, pick: impl FnOnce(&Lists) -> Vec<Arc<Registered<ErrorFn>>>, error: Option<&Error>) {
        let list = pick(&self.lock());
        let (code, text) = match error {
            Some(e) => (code_of(e), Some(c_text(&e.to_string()))),
            None => (signalr_result::Ok, None),
        };
        let (ptr, len) = text.as_ref().map_or((std::ptr::null(), 0), |t| (t.as_ptr().cast(), t.len() - 1));
        let _scope = CallbackScope::enter();
        for r in list {
            unsafe { (r.callback)(r.userdata.ptr(), code, ptr, len) };
        }
    }

    fn reconnected(&self, connection_id: Option<&str>) {
        let list = self.lock().reconnected.clone();
        let text = connection_id.map(c_text);
        let (ptr, len) = text.as_ref().map_or((std::ptr::null(), 0), |t| (t.as_ptr().cast(), t.len() - 1));
        let _scope = CallbackScope::enter();
        for r in list {
            unsafe { (r.callback)(r.userdata.ptr(), ptr, len) };
        }
    }
}

/// Gives the core its hooks (once, when the connection is built).
pub(crate) fn attach(conn: &Arc<Connection>) {
    // Runs under the core's state lock: only queues (the sender, not the connection, is captured
    // so that no connection can be dropped here).
    let jobs = conn.dispatcher.sender();
    conn.hub.on_state_changed(move |old, new| {
        let (old, new) = (signalr_connection_state::from(old) as u32, signalr_connection_state::from(new) as u32);
        jobs.send(Job::Callback(Box::new(move |conn| conn.lifecycle.state_changed(old, new))));
    });
    // Handler calls wake the callback thread once per burst (see the dispatcher).
    let jobs = conn.dispatcher.sender();
    conn.hub.on_caught_up(move || jobs.caught_up());
    let weak = Arc::downgrade(conn);
    conn.hub.on_close(move |error| {
        let error = error.cloned();
        queue(&weak, move |conn| conn.lifecycle.error_event(|l| l.closed.clone(), error.as_ref()));
    });
    let weak = Arc::downgrade(conn);
    conn.hub.on_reconnecting(move |error| {
        let error = error.clone();
        queue(&weak, move |conn| conn.lifecycle.error_event(|l| l.reconnecting.clone(), Some(&error)));
    });
    let weak = Arc::downgrade(conn);
    conn.hub.on_reconnected(move |id| {
        let id = id.map(str::to_owned);
        queue(&weak, move |conn| conn.lifecycle.reconnected(id.as_deref()));
    });
}

/// Flushes the operations the event ended (E-1: they are reported first), then queues it.
fn queue(weak: &std::sync::Weak<Connection>, task: impl FnOnce(&Connection) + Send + 'static) {
    let Some(conn) = weak.upgrade() else { return };
    conn.ops.flush();
    conn.dispatcher.send(Job::Callback(Box::new(task)));
}

/// Adds a registration (the user data is released right away when it fails).
unsafe fn register<F: Copy>(
    c: *mut signalr_connection,
    callback: Option<F>,
    userdata: UserData,
    list: impl FnOnce(&mut Lists) -> &mut Vec<Arc<Registered<F>>>,
) -> FfiResult {
    let conn = connection_arg(c)?;
    require_callback(&callback, "callback")?;
    let registered = Arc::new(Registered { callback: callback.expect("checked"), userdata });
    conn.lifecycle.add(|lists| list(lists).push(registered))
}

/// Registers a callback told every state change.
///
/// Each call adds one more callback; all are released when the connection is freed.
/// Ownership: `userdata` is released with `userdata_free` exactly once, after the connection's
/// teardown (its last call returned), or before this function returns when it fails.
/// Errors: `NULL_PARAMETER`, `CONNECTION_CLOSED` (freed).
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_on_state_changed(
    c: *mut signalr_connection,
    callback: signalr_state_changed_callback,
    userdata: *mut c_void,
    userdata_free: signalr_userdata_free,
) -> signalr_result {
    ffi_call!({ register(c, callback, UserData::new(userdata, userdata_free), |l| &mut l.state) })
}

/// Registers a callback told when the connection closes.
///
/// Each call adds one more callback; all are released when the connection is freed.
/// Ownership: `userdata` is released with `userdata_free` exactly once, after the connection's
/// teardown (its last call returned), or before this function returns when it fails.
/// Errors: `NULL_PARAMETER`, `CONNECTION_CLOSED` (freed).
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_on_closed(
    c: *mut signalr_connection,
    callback: signalr_closed_callback,
    userdata: *mut c_void,
    userdata_free: signalr_userdata_free,
) -> signalr_result {
    ffi_call!({ register(c, callback, UserData::new(userdata, userdata_free), |l| &mut l.closed) })
}

/// Registers a callback told when automatic reconnect begins.
///
/// Each call adds one more callback; all are released when the connection is freed.
/// Ownership: `userdata` is released with `userdata_free` exactly once, after the connection's
/// teardown (its last call returned), or before this function returns when it fails.
/// Errors: `NULL_PARAMETER`, `CONNECTION_CLOSED` (freed).
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_on_reconnecting(
    c: *mut signalr_connection,
    callback: signalr_reconnecting_callback,
    userdata: *mut c_void,
    userdata_free: signalr_userdata_free,
) -> signalr_result {
    ffi_call!({ register(c, callback, UserData::new(userdata, userdata_free), |l| &mut l.reconnecting) })
}

/// Registers a callback told when automatic reconnect succeeded.
///
/// Each call adds one more callback; all are released when the connection is freed.
/// Ownership: `userdata` is released with `userdata_free` exactly once, after the connection's
/// teardown (its last call returned), or before this function returns when it fails.
/// Errors: `NULL_PARAMETER`, `CONNECTION_CLOSED` (freed).
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_on_reconnected(
    c: *mut signalr_connection,
    callback: signalr_reconnected_callback,
    userdata: *mut c_void,
    userdata_free: signalr_userdata_free,
) -> signalr_result {
    ffi_call!({ register(c, callback, UserData::new(userdata, userdata_free), |l| &mut l.reconnected) })
}
