//! What the C API's pending operations cost the library runtime: no task each (one pump task per
//! connection polls them), and nothing left behind once the connection is freed. Its own test
//! binary, so that no other test's tasks run on the library runtime meanwhile.

mod support;

use std::ffi::{c_char, c_void, CString};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use signalr_native::ffi::*;
use support::Hub;

const OK: signalr_result = signalr_result::Ok;
const CALLS: usize = 200;

static COMPLETED: AtomicUsize = AtomicUsize::new(0);
static CANCELED: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn on_done(
    _: *mut c_void,
    result: signalr_result,
    _: *const c_char,
    _: usize,
    _: *const c_char,
    _: usize,
) {
    COMPLETED.fetch_add(1, Ordering::SeqCst);
    if result == signalr_result::Canceled {
        CANCELED.fetch_add(1, Ordering::SeqCst);
    }
}

fn alive_tasks() -> usize {
    signalr_native::runtime::global().metrics().num_alive_tasks()
}

/// Waits for `cond`, at most 10 s: ending a freed connection's tasks takes milliseconds, while a
/// task nobody wakes at teardown lingers until some timer of the connection fires (30 s).
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "{what} did not happen within 10 s");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn connect(hub: &Hub) -> *mut signalr_connection {
    let url = CString::new(hub.url("/hub")).unwrap();
    let (mut b, mut conn) = (null_mut(), null_mut());
    unsafe {
        assert_eq!(signalr_builder_new(url.as_ptr(), &mut b), OK);
        assert_eq!(signalr_builder_build(b, &mut conn), OK);
        assert_eq!(signalr_connection_start_blocking(conn, 30_000), OK);
    }
    conn
}

#[test]
fn pending_calls_cost_no_runtime_task_each_and_a_freed_connection_leaves_none() {
    let hub = Hub::start();
    // A first connection sets up what connections share (the HTTP client's pooled connection
    // and its timers): those tasks outlive any one connection.
    let first = connect(&hub);
    let shared = alive_tasks();
    let conn = connect(&hub);
    let connected = alive_tasks();
    assert!(connected > shared, "a connection runs tasks of its own");

    // Calls the hub answers only after a minute: all still pending below.
    let (method, args) = (CString::new("Delay").unwrap(), CString::new("[60000]").unwrap());
    for _ in 0..CALLS {
        let rc =
            unsafe { signalr_connection_invoke(conn, method.as_ptr(), args.as_ptr(), Some(on_done), null_mut(), None) };
        assert_eq!(rc, OK);
    }
    let pending = alive_tasks();
    assert!(
        pending <= connected + 2,
        "{CALLS} pending calls took {} runtime tasks",
        pending - connected
    );
    assert_eq!(COMPLETED.load(Ordering::SeqCst), 0);

    // Free reports every call canceled, exactly once, before it returns; then every task of the
    // connection (receive loop, writer, pump) ends.
    unsafe { signalr_connection_free(conn) };
    assert_eq!(
        (COMPLETED.load(Ordering::SeqCst), CANCELED.load(Ordering::SeqCst)),
        (CALLS, CALLS)
    );
    wait_until("the freed connection's tasks ending", || alive_tasks() <= shared);
    unsafe { signalr_connection_free(first) };
}
