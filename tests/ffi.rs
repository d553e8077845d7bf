//! The C API called from Rust, as a C program would, against the test hub: every function, NULL
//! for every pointer, invalid UTF-8 and JSON, wrong states, the lifetime rules (exactly-once
//! completions, user data released exactly once, free at any time and from inside callbacks).

mod support;

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use signalr_native::ffi::*;
use support::Hub;

// ---------------------------------------------------------------------------------------------
// Helpers

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(signalr_last_error_message()) }.to_string_lossy().into_owned()
}

unsafe fn borrowed(ptr: *const c_char, len: usize) -> Option<String> {
    if ptr.is_null() {
        assert_eq!(len, 0, "NULL text with a length");
        return None;
    }
    let bytes = std::slice::from_raw_parts(ptr.cast::<u8>(), len);
    assert_eq!(*ptr.add(len), 0, "borrowed text is NUL-terminated");
    Some(String::from_utf8(bytes.to_vec()).expect("UTF-8 from the library"))
}

unsafe fn take_string(ptr: *mut c_char) -> String {
    assert!(!ptr.is_null());
    let s = CStr::from_ptr(ptr).to_string_lossy().into_owned();
    signalr_string_free(ptr);
    s
}

/// Something a callback reported.
#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Done(signalr_result, Option<String>, Option<String>),
    Item(String),
    Call(String, String),
    State(u32, u32),
    Closed(signalr_result, Option<String>),
    Reconnecting(signalr_result, Option<String>),
    Reconnected(Option<String>),
}

/// User data of the tests: records events, counts its releases.
struct Probe {
    tx: Mutex<mpsc::Sender<Ev>>,
    rx: Mutex<mpsc::Receiver<Ev>>,
    released: AtomicUsize,
    /// Run inside a callback, with the event (to free a connection from inside, …).
    on_event: Mutex<Option<Box<dyn FnMut(&Ev) + Send>>>,
}

impl Probe {
    fn new() -> Arc<Probe> {
        let (tx, rx) = mpsc::channel();
        Arc::new(Probe { tx: Mutex::new(tx), rx: Mutex::new(rx), released: AtomicUsize::new(0), on_event: Mutex::new(None) })
    }

    /// A user-data pointer holding one reference, released by `release_probe`.
    fn ud(self: &Arc<Self>) -> *mut c_void {
        Arc::into_raw(self.clone()) as *mut c_void
    }

    fn record(&self, ev: Ev) {
        if let Some(f) = self.on_event.lock().unwrap().as_mut() {
            f(&ev);
        }
        let _ = self.tx.lock().unwrap().send(ev);
    }

    fn next(&self) -> Ev {
        self.rx.lock().unwrap().recv_timeout(Duration::from_secs(60)).expect("no callback within 60 s")
    }

    fn try_next(&self) -> Option<Ev> {
        self.rx.lock().unwrap().try_recv().ok()
    }

    fn released(&self) -> usize {
        self.released.load(Ordering::SeqCst)
    }

    fn on_event(&self, f: impl FnMut(&Ev) + Send + 'static) {
        *self.on_event.lock().unwrap() = Some(Box::new(f));
    }
}

unsafe fn probe<'a>(ud: *mut c_void) -> &'a Probe {
    &*(ud as *const Probe)
}

unsafe extern "C" fn release_probe(ud: *mut c_void) {
    let p = Arc::from_raw(ud as *const Probe);
    p.released.fetch_add(1, Ordering::SeqCst);
}

unsafe extern "C" fn on_done(ud: *mut c_void, r: signalr_result, e: *const c_char, el: usize, j: *const c_char, jl: usize) {
    probe(ud).record(Ev::Done(r, borrowed(e, el), borrowed(j, jl)));
}

unsafe extern "C" fn on_item(ud: *mut c_void, j: *const c_char, jl: usize) {
    probe(ud).record(Ev::Item(borrowed(j, jl).unwrap()));
}

unsafe extern "C" fn on_call(ud: *mut c_void, m: *const c_char, ml: usize, a: *const c_char, al: usize) {
    probe(ud).record(Ev::Call(borrowed(m, ml).unwrap(), borrowed(a, al).unwrap()));
}

unsafe extern "C" fn on_state(ud: *mut c_void, old: u32, new: u32) {
    probe(ud).record(Ev::State(old, new));
}

unsafe extern "C" fn on_closed(ud: *mut c_void, r: signalr_result, e: *const c_char, el: usize) {
    probe(ud).record(Ev::Closed(r, borrowed(e, el)));
}

unsafe extern "C" fn on_reconnecting(ud: *mut c_void, r: signalr_result, e: *const c_char, el: usize) {
    probe(ud).record(Ev::Reconnecting(r, borrowed(e, el)));
}

unsafe extern "C" fn on_reconnected(ud: *mut c_void, id: *const c_char, l: usize) {
    probe(ud).record(Ev::Reconnected(borrowed(id, l)));
}

const OK: signalr_result = signalr_result::Ok;

fn builder(url: &str) -> *mut signalr_builder {
    let mut b = null_mut();
    assert_eq!(unsafe { signalr_builder_new(c(url).as_ptr(), &mut b) }, OK);
    b
}

fn build(b: *mut signalr_builder) -> *mut signalr_connection {
    let mut conn = null_mut();
    let rc = unsafe { signalr_builder_build(b, &mut conn) };
    assert_eq!(rc, OK, "{}", last_error());
    conn
}

/// A started connection to the hub's `/hub` with the given protocol.
fn connect(hub: &Hub, protocol: signalr_protocol) -> *mut signalr_connection {
    let b = builder(&hub.url("/hub"));
    assert_eq!(unsafe { signalr_builder_set_protocol(b, protocol as u32) }, OK);
    let conn = build(b);
    assert_eq!(unsafe { signalr_connection_start_blocking(conn, 30_000) }, OK, "{}", last_error());
    conn
}

fn invoke_blocking(conn: *mut signalr_connection, method: &str, args: &str) -> Result<String, (signalr_result, String)> {
    let mut out = null_mut();
    let rc = unsafe { signalr_connection_invoke_blocking(conn, c(method).as_ptr(), c(args).as_ptr(), 30_000, &mut out) };
    if rc == OK {
        Ok(unsafe { take_string(out) })
    } else {
        assert!(out.is_null(), "out-param written on failure");
        Err((rc, last_error()))
    }
}

const PROTOCOLS: [signalr_protocol; 2] = [signalr_protocol::Json, signalr_protocol::Messagepack];

// ---------------------------------------------------------------------------------------------
// Builder, start, stop, invoke, send (blocking and asynchronous)

#[test]
fn start_invoke_send_stop_blocking_with_both_protocols() {
    let hub = Hub::start();
    for protocol in PROTOCOLS {
        let conn = connect(&hub, protocol);
        assert_eq!(unsafe { signalr_connection_get_state(conn) }, signalr_connection_state::Connected as u32);
        let mut id = null_mut();
        assert_eq!(unsafe { signalr_connection_get_connection_id(conn, &mut id) }, OK);
        let id = unsafe { take_string(id) };
        assert_eq!(invoke_blocking(conn, "GetConnectionId", "[]").unwrap(), format!("\"{id}\""));
        assert_eq!(invoke_blocking(conn, "Add", "[1, 2]").unwrap(), "3");
        let echoed = invoke_blocking(conn, "Echo", r#"[{"a":[1,"x",null,true]}]"#).unwrap();
        assert_eq!(serde_json::from_str::<serde_json::Value>(&echoed).unwrap(), serde_json::json!({"a":[1,"x",null,true]}));
        // A void method's result is JSON null.
        assert_eq!(invoke_blocking(conn, "Record", "[5]").unwrap(), "null");
        assert_eq!(unsafe { signalr_connection_send_blocking(conn, c("Record").as_ptr(), c("[6]").as_ptr(), 30_000) }, OK);
        assert_eq!(invoke_blocking(conn, "GetRecorded", "[]").unwrap(), "[5,6]");
        let (rc, msg) = invoke_blocking(conn, "Fail", r#"["boom"]"#).unwrap_err();
        assert_eq!(rc, signalr_result::HubError);
        assert_eq!(msg, "An unexpected error occurred invoking 'Fail' on the server. HubException: boom");
        assert_eq!(unsafe { signalr_connection_stop_blocking(conn, 30_000) }, OK);
        assert_eq!(unsafe { signalr_connection_get_state(conn) }, signalr_connection_state::Disconnected as u32);
        let mut id = null_mut();
        assert_eq!(unsafe { signalr_connection_get_connection_id(conn, &mut id) }, OK);
        assert!(id.is_null(), "no connection id once stopped");
        unsafe { signalr_connection_free(conn) };
    }
}

#[test]
fn asynchronous_start_invoke_send_stop_report_exactly_once() {
    let hub = Hub::start();
    let b = builder(&hub.url("/hub"));
    let conn = build(b);
    let p = Probe::new();
    unsafe {
        assert_eq!(signalr_connection_start(conn, Some(on_done), p.ud(), Some(release_probe)), OK);
        assert_eq!(p.next(), Ev::Done(OK, None, None));
        assert_eq!(signalr_connection_invoke(conn, c("Add").as_ptr(), c("[40, 2]").as_ptr(), Some(on_done), p.ud(), Some(release_probe)), OK);
        assert_eq!(p.next(), Ev::Done(OK, None, Some("42".into())));
        assert_eq!(signalr_connection_invoke(conn, c("Fail").as_ptr(), c("[\"no\"]").as_ptr(), Some(on_done), p.ud(), Some(release_probe)), OK);
        assert_eq!(
            p.next(),
            Ev::Done(signalr_result::HubError, Some("An unexpected error occurred invoking 'Fail' on the server. HubException: no".into()), None)
        );
        assert_eq!(signalr_connection_send(conn, c("Record").as_ptr(), c("[1]").as_ptr(), Some(on_done), p.ud(), Some(release_probe)), OK);
        assert_eq!(p.next(), Ev::Done(OK, None, None));
        // send with no callback: the user data is still released.
        assert_eq!(signalr_connection_send(conn, c("Record").as_ptr(), c("[2]").as_ptr(), None, p.ud(), Some(release_probe)), OK);
        assert_eq!(invoke_blocking(conn, "GetRecorded", "[]").unwrap(), "[1,2]");
        assert_eq!(signalr_connection_stop(conn, Some(on_done), p.ud(), Some(release_probe)), OK);
        assert_eq!(p.next(), Ev::Done(OK, None, None));
        signalr_connection_free(conn);
    }
    assert_eq!(p.released(), 6, "every user data released exactly once");
    assert_eq!(p.try_next(), None, "nothing reported twice");
}

#[test]
fn calls_in_the_wrong_state_and_bad_arguments_are_rejected_with_their_status() {
    let hub = Hub::start();
    let conn = build(builder(&hub.url("/hub")));
    let p = Probe::new();
    unsafe {
        // Not connected.
        assert_eq!(
            signalr_connection_invoke(conn, c("Add").as_ptr(), c("[1,2]").as_ptr(), Some(on_done), p.ud(), Some(release_probe)),
            signalr_result::InvalidState
        );
        assert!(last_error().contains("Disconnected"), "{}", last_error());
        assert_eq!(p.released(), 1, "released before the failing call returned");
        assert_eq!(invoke_blocking(conn, "Add", "[1,2]").unwrap_err().0, signalr_result::InvalidState);
        assert_eq!(signalr_connection_send_blocking(conn, c("Add").as_ptr(), c("[]").as_ptr(), 1000), signalr_result::InvalidState);
        assert_eq!(signalr_connection_stop_blocking(conn, 1000), OK, "stop when disconnected is a no-op");
        assert_eq!(signalr_connection_start_blocking(conn, 30_000), OK);
        assert_eq!(signalr_connection_start_blocking(conn, 30_000), signalr_result::InvalidState);
        assert_eq!(
            signalr_connection_start(conn, Some(on_done), p.ud(), Some(release_probe)),
            signalr_result::InvalidState
        );
        assert_eq!(p.released(), 2);
        // Malformed and non-array JSON, invalid UTF-8, empty and NULL names.
        for (args, code) in [
            ("[1,", signalr_result::InvalidJson),
            ("{\"a\":1}", signalr_result::InvalidJson),
            ("42", signalr_result::InvalidJson),
            ("", signalr_result::InvalidJson),
        ] {
            let rc = signalr_connection_invoke(conn, c("Add").as_ptr(), c(args).as_ptr(), Some(on_done), p.ud(), Some(release_probe));
            assert_eq!(rc, code, "{args:?}: {}", last_error());
            assert!(last_error().contains("args_json"), "{}", last_error());
            assert_eq!(invoke_blocking(conn, "Add", args).unwrap_err().0, code);
        }
        let bad = b"Ad\xffd\0";
        assert_eq!(
            signalr_connection_invoke(conn, bad.as_ptr().cast(), c("[]").as_ptr(), Some(on_done), p.ud(), Some(release_probe)),
            signalr_result::InvalidUtf8
        );
        assert_eq!(last_error(), "`method` is not valid UTF-8 at byte 2");
        let bad_args = b"[\"\xc3\x28\"]\0";
        assert_eq!(
            signalr_connection_send(conn, c("Echo").as_ptr(), bad_args.as_ptr().cast(), None, null_mut(), None),
            signalr_result::InvalidUtf8
        );
        assert_eq!(
            signalr_connection_invoke(conn, c("").as_ptr(), c("[]").as_ptr(), Some(on_done), p.ud(), Some(release_probe)),
            signalr_result::InvalidArgument
        );
        assert_eq!(
            signalr_connection_invoke(conn, null(), c("[]").as_ptr(), Some(on_done), p.ud(), Some(release_probe)),
            signalr_result::NullParameter
        );
        assert_eq!(
            signalr_connection_invoke(conn, c("Add").as_ptr(), null(), Some(on_done), p.ud(), Some(release_probe)),
            signalr_result::NullParameter
        );
        assert_eq!(
            signalr_connection_invoke(conn, c("Add").as_ptr(), c("[]").as_ptr(), None, p.ud(), Some(release_probe)),
            signalr_result::NullParameter
        );
        assert_eq!(
            signalr_connection_invoke(null_mut(), c("Add").as_ptr(), c("[]").as_ptr(), Some(on_done), p.ud(), Some(release_probe)),
            signalr_result::NullParameter
        );
        assert_eq!(last_error(), "`connection` is NULL");
        // The server says what it thinks of an unknown method.
        let (rc, msg) = invoke_blocking(conn, "Nope", "[]").unwrap_err();
        assert_eq!(rc, signalr_result::HubError);
        assert_eq!(msg, "Failed to invoke 'Nope' due to an error on the server. HubException: Method does not exist.");
        signalr_connection_free(conn);
    }
    assert_eq!(p.released(), 12, "user data of every failed registration released at once");
    assert_eq!(p.try_next(), None, "no completion for a call that failed");
}

#[test]
fn null_pointers_are_errors_for_every_connection_function() {
    let p = Probe::new();
    let args = c("[]");
    let m = c("Echo");
    unsafe {
        let n: *mut signalr_connection = null_mut();
        let nul = signalr_result::NullParameter;
        assert_eq!(signalr_connection_start(n, Some(on_done), p.ud(), Some(release_probe)), nul);
        assert_eq!(signalr_connection_start_blocking(n, 1), nul);
        assert_eq!(signalr_connection_stop(n, None, p.ud(), Some(release_probe)), nul);
        assert_eq!(signalr_connection_stop_blocking(n, 1), nul);
        assert_eq!(signalr_connection_invoke(n, m.as_ptr(), args.as_ptr(), Some(on_done), p.ud(), Some(release_probe)), nul);
        let mut out = null_mut();
        assert_eq!(signalr_connection_invoke_blocking(n, m.as_ptr(), args.as_ptr(), 1, &mut out), nul);
        assert_eq!(signalr_connection_send(n, m.as_ptr(), args.as_ptr(), None, p.ud(), Some(release_probe)), nul);
        assert_eq!(signalr_connection_send_blocking(n, m.as_ptr(), args.as_ptr(), 1), nul);
        let mut stream = null_mut();
        assert_eq!(
            signalr_connection_stream(n, m.as_ptr(), args.as_ptr(), Some(on_item), Some(on_done), p.ud(), Some(release_probe), &mut stream),
            nul
        );
        let mut uploads = [null_mut(); 1];
        assert_eq!(
            signalr_connection_invoke_with_uploads(n, m.as_ptr(), args.as_ptr(), 1, uploads.as_mut_ptr(), Some(on_done), p.ud(), Some(release_probe)),
            nul
        );
        assert_eq!(
            signalr_connection_send_with_uploads(n, m.as_ptr(), args.as_ptr(), 1, uploads.as_mut_ptr(), None, p.ud(), Some(release_probe)),
            nul
        );
        assert_eq!(
            signalr_connection_stream_with_uploads(
                n, m.as_ptr(), args.as_ptr(), 1, uploads.as_mut_ptr(), Some(on_item), Some(on_done), p.ud(), Some(release_probe), &mut stream
            ),
            nul
        );
        let mut id = 0u64;
        assert_eq!(signalr_connection_on(n, m.as_ptr(), Some(on_call), p.ud(), Some(release_probe), &mut id), nul);
        assert_eq!(signalr_connection_off(n, m.as_ptr()), nul);
        assert_eq!(signalr_connection_remove_handler(n, 1), nul);
        assert_eq!(signalr_connection_on_state_changed(n, Some(on_state), p.ud(), Some(release_probe)), nul);
        assert_eq!(signalr_connection_on_closed(n, Some(on_closed), p.ud(), Some(release_probe)), nul);
        assert_eq!(signalr_connection_on_reconnecting(n, Some(on_reconnecting), p.ud(), Some(release_probe)), nul);
        assert_eq!(signalr_connection_on_reconnected(n, Some(on_reconnected), p.ud(), Some(release_probe)), nul);
        assert_eq!(signalr_connection_get_state(n), signalr_connection_state::Disconnected as u32);
        let mut s = null_mut();
        assert_eq!(signalr_connection_get_connection_id(n, &mut s), nul);
        signalr_connection_free(n);
        assert_eq!(p.released(), 13, "every user data released although the call failed");
        assert!(stream.is_null() && uploads[0].is_null() && id == 0 && out.is_null(), "out-params untouched");
    }
}

#[test]
fn builder_options_and_their_validation() {
    let hub = Hub::start();
    unsafe {
        let mut b = null_mut();
        assert_eq!(signalr_builder_new(null(), &mut b), signalr_result::NullParameter);
        assert_eq!(signalr_builder_new(c("http://x/hub").as_ptr(), null_mut()), signalr_result::NullParameter);
        assert_eq!(signalr_builder_new(b"http://\xff\0".as_ptr().cast(), &mut b), signalr_result::InvalidUtf8);
        assert!(b.is_null());

        // Every setter on NULL.
        let nb: *mut signalr_builder = null_mut();
        let nul = signalr_result::NullParameter;
        let p = Probe::new();
        assert_eq!(signalr_builder_set_transports(nb, 1), nul);
        assert_eq!(signalr_builder_set_skip_negotiation(nb, true), nul);
        assert_eq!(signalr_builder_add_header(nb, c("a").as_ptr(), c("b").as_ptr()), nul);
        assert_eq!(signalr_builder_set_access_token_provider(nb, None, p.ud(), Some(release_probe)), nul);
        assert_eq!(signalr_builder_set_protocol(nb, 0), nul);
        assert_eq!(signalr_builder_set_http_timeout_ms(nb, 1), nul);
        assert_eq!(signalr_builder_set_server_timeout_ms(nb, 1), nul);
        assert_eq!(signalr_builder_set_keep_alive_interval_ms(nb, 1), nul);
        assert_eq!(signalr_builder_set_handshake_timeout_ms(nb, 1), nul);
        assert_eq!(signalr_builder_set_max_message_size(nb, 1), nul);
        assert_eq!(signalr_builder_set_automatic_reconnect(nb, null(), 0), nul);
        assert_eq!(signalr_builder_set_reconnect_policy(nb, None, p.ud(), Some(release_probe)), nul);
        assert_eq!(signalr_builder_set_stateful_reconnect(nb, false), nul);
        assert_eq!(signalr_builder_add_trusted_ca_pem(nb, b"x".as_ptr(), 1), nul);
        assert_eq!(signalr_builder_add_trusted_ca_file(nb, c("/x").as_ptr()), nul);
        let mut conn = null_mut();
        assert_eq!(signalr_builder_build(nb, &mut conn), nul);
        signalr_builder_free(nb);
        assert_eq!(p.released(), 2);

        // Argument checks of the setters themselves.
        let b = builder(&hub.url("/hub"));
        assert_eq!(signalr_builder_set_transports(b, 8), signalr_result::InvalidArgument);
        assert_eq!(signalr_builder_set_protocol(b, 2), signalr_result::InvalidArgument);
        assert_eq!(signalr_builder_add_header(b, null(), c("v").as_ptr()), nul);
        assert_eq!(signalr_builder_add_header(b, c("n").as_ptr(), b"\xff\0".as_ptr().cast()), signalr_result::InvalidUtf8);
        assert_eq!(signalr_builder_set_automatic_reconnect(b, null(), 2), nul);
        assert_eq!(signalr_builder_add_trusted_ca_pem(b, null(), 3), nul);
        assert_eq!(signalr_builder_add_trusted_ca_file(b, null()), nul);
        // build consumes the builder even when `out` is NULL.
        assert_eq!(signalr_builder_build(b, null_mut()), nul);

        // Validation at build: each consumes its builder.
        let cases: Vec<(&str, Box<dyn Fn(*mut signalr_builder)>)> = vec![
            ("not a url", Box::new(|_| {})),
            ("ftp://x/hub", Box::new(|_| {})),
            ("http://x/hub", Box::new(|b| assert_eq!(signalr_builder_set_server_timeout_ms(b, 0), OK))),
            ("http://x/hub", Box::new(|b| assert_eq!(signalr_builder_set_max_message_size(b, 0), OK))),
            ("http://x/hub", Box::new(|b| assert_eq!(signalr_builder_add_header(b, c("bad name").as_ptr(), c("v").as_ptr()), OK))),
            ("http://x/hub", Box::new(|b| assert_eq!(signalr_builder_add_trusted_ca_pem(b, b"junk".as_ptr(), 4), OK))),
            ("http://x/hub", Box::new(|b| assert_eq!(signalr_builder_add_trusted_ca_file(b, c("/no/such/file.pem").as_ptr()), OK))),
            ("http://x/hub", Box::new(|b| assert_eq!(signalr_builder_set_skip_negotiation(b, true), OK))),
        ];
        for (url, setup) in cases {
            let b = builder(url);
            setup(b);
            let mut conn = null_mut();
            assert_eq!(signalr_builder_build(b, &mut conn), signalr_result::InvalidArgument, "{url}");
            assert!(conn.is_null());
            assert!(!last_error().is_empty());
        }

        // A builder with everything set connects; one that is never built is freed.
        let p = Probe::new();
        let b = builder(&hub.url("/hub"));
        assert_eq!(signalr_builder_set_transports(b, signalr_transport::Websockets as u32), OK);
        assert_eq!(signalr_builder_set_skip_negotiation(b, true), OK);
        assert_eq!(signalr_builder_add_header(b, c("X-Test").as_ptr(), c("yes").as_ptr()), OK);
        assert_eq!(signalr_builder_set_protocol(b, signalr_protocol::Messagepack as u32), OK);
        assert_eq!(signalr_builder_set_http_timeout_ms(b, 20_000), OK);
        assert_eq!(signalr_builder_set_server_timeout_ms(b, 40_000), OK);
        assert_eq!(signalr_builder_set_keep_alive_interval_ms(b, 10_000), OK);
        assert_eq!(signalr_builder_set_handshake_timeout_ms(b, 20_000), OK);
        assert_eq!(signalr_builder_set_max_message_size(b, 1 << 20), OK);
        assert_eq!(signalr_builder_set_automatic_reconnect(b, [0u64, 10].as_ptr(), 2), OK);
        assert_eq!(signalr_builder_set_stateful_reconnect(b, false), OK);
        let conn = build(b);
        assert_eq!(signalr_connection_start_blocking(conn, 30_000), OK, "{}", last_error());
        let info: serde_json::Value = serde_json::from_str(&invoke_blocking(conn, "GetRequestInfo", "[]").unwrap()).unwrap();
        assert_eq!(info["protocol"], "messagepack");
        assert_eq!(info["negotiate"], serde_json::Value::Null, "negotiation skipped");
        assert_eq!(info["connect"]["headers"]["x-test"], "yes");
        let mut id = null_mut();
        assert_eq!(signalr_connection_get_connection_id(conn, &mut id), OK);
        assert!(id.is_null(), "no connection id without negotiation");
        signalr_connection_free(conn);

        let b = builder(&hub.url("/hub"));
        assert_eq!(signalr_builder_set_reconnect_policy(b, Some(policy_stop), p.ud(), Some(release_probe)), OK);
        assert_eq!(signalr_builder_set_reconnect_policy(b, Some(policy_stop), p.ud(), Some(release_probe)), OK);
        assert_eq!(p.released(), 1, "replacing a callback releases the previous user data");
        signalr_builder_free(b);
        assert_eq!(p.released(), 2, "freeing the builder releases its user data");
        signalr_builder_free(null_mut());
    }
}

unsafe extern "C" fn policy_stop(_: *mut c_void, _: u64, _: u64, _: *const c_char, _: usize) -> i64 {
    -1
}

#[test]
fn blocking_calls_time_out() {
    let hub = Hub::start();
    let conn = connect(&hub, signalr_protocol::Json);
    let mut out = null_mut();
    let rc = unsafe { signalr_connection_invoke_blocking(conn, c("Delay").as_ptr(), c("[3000]").as_ptr(), 50, &mut out) };
    assert_eq!(rc, signalr_result::Timeout);
    assert!(out.is_null());
    // The connection is still usable.
    assert_eq!(invoke_blocking(conn, "Add", "[2,2]").unwrap(), "4");
    unsafe { signalr_connection_free(conn) };
}

#[test]
fn start_failures_report_their_status() {
    unsafe {
        // Nothing listens on port 9 (discard): negotiation fails.
        let conn = build(builder("http://127.0.0.1:9/hub"));
        let rc = signalr_connection_start_blocking(conn, 30_000);
        assert_eq!(rc, signalr_result::NegotiationFailed, "{}", last_error());
        assert_eq!(signalr_connection_get_state(conn), signalr_connection_state::Disconnected as u32);
        let p = Probe::new();
        assert_eq!(signalr_connection_start(conn, Some(on_done), p.ud(), Some(release_probe)), OK);
        match p.next() {
            Ev::Done(signalr_result::NegotiationFailed, Some(msg), None) => assert!(!msg.is_empty()),
            other => panic!("{other:?}"),
        }
        signalr_connection_free(conn);
        assert_eq!(p.released(), 1);
    }
    let hub = Hub::start();
    unsafe {
        let conn = build(builder(&hub.url("/auth-hub")));
        assert_eq!(signalr_connection_start_blocking(conn, 30_000), signalr_result::Unauthorized, "{}", last_error());
        signalr_connection_free(conn);
    }
}
