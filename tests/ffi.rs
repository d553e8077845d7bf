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
    Batch(String, String, usize),
    State(u32, u32),
    Closed(signalr_result, Option<String>),
    Reconnecting(signalr_result, Option<String>),
    Reconnected(Option<String>),
}

type Hook = Box<dyn FnMut(&Ev) + Send>;

/// User data of the tests: records events, counts its releases.
struct Probe {
    tx: Mutex<mpsc::Sender<Ev>>,
    rx: Mutex<mpsc::Receiver<Ev>>,
    released: AtomicUsize,
    /// Run inside a callback, with the event (to free a connection from inside, …).
    on_event: Mutex<Option<Hook>>,
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

unsafe extern "C" fn on_batch(ud: *mut c_void, m: *const c_char, ml: usize, j: *const c_char, jl: usize, count: usize) {
    probe(ud).record(Ev::Batch(borrowed(m, ml).unwrap(), borrowed(j, jl).unwrap(), count));
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
        assert_eq!(signalr_builder_new(c"http://\xff".as_ptr(), &mut b), signalr_result::InvalidUtf8);
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
        assert_eq!(signalr_builder_add_header(b, c("n").as_ptr(), c"\xff".as_ptr()), signalr_result::InvalidUtf8);
        assert_eq!(signalr_builder_set_automatic_reconnect(b, null(), 2), nul);
        assert_eq!(signalr_builder_add_trusted_ca_pem(b, null(), 3), nul);
        assert_eq!(signalr_builder_add_trusted_ca_file(b, null()), nul);
        // Certificates are checked when given.
        assert_eq!(signalr_builder_add_trusted_ca_pem(b, b"junk".as_ptr(), 4), signalr_result::InvalidArgument);
        assert!(last_error().contains("no CERTIFICATE"), "{}", last_error());
        assert_eq!(signalr_builder_add_trusted_ca_file(b, c("/no/such/file.pem").as_ptr()), signalr_result::InvalidArgument);
        assert_eq!(signalr_builder_set_stateful_reconnect_buffer_size(nb, 1), nul);
        // build consumes the builder even when `out` is NULL.
        assert_eq!(signalr_builder_build(b, null_mut()), nul);

        // Validation at build: each consumes its builder.
        type Setup = Box<dyn Fn(*mut signalr_builder)>;
        let cases: Vec<(&str, Setup)> = vec![
            ("not a url", Box::new(|_| {})),
            ("ftp://x/hub", Box::new(|_| {})),
            ("http://x/hub", Box::new(|b| assert_eq!(signalr_builder_set_server_timeout_ms(b, 0), OK))),
            ("http://x/hub", Box::new(|b| assert_eq!(signalr_builder_set_max_message_size(b, 0), OK))),
            ("http://x/hub", Box::new(|b| assert_eq!(signalr_builder_add_header(b, c("bad name").as_ptr(), c("v").as_ptr()), OK))),
            ("http://x/hub", Box::new(|b| assert_eq!(signalr_builder_set_skip_negotiation(b, true), OK))),
            ("http://x/hub", Box::new(|b| assert_eq!(signalr_builder_set_stateful_reconnect_buffer_size(b, 0), OK))),
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
        assert_eq!(signalr_builder_set_stateful_reconnect_buffer_size(b, 50_000), OK);
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
    let began = std::time::Instant::now();
    let rc = unsafe { signalr_connection_invoke_blocking(conn, c("Delay").as_ptr(), c("[3000]").as_ptr(), 50, &mut out) };
    assert_eq!(rc, signalr_result::Timeout);
    assert!(began.elapsed() >= Duration::from_millis(50), "gave up before its deadline: {:?}", began.elapsed());
    assert!(out.is_null());
    // A result that comes before the deadline ends the wait then, not at the deadline.
    let began = std::time::Instant::now();
    let rc = unsafe { signalr_connection_invoke_blocking(conn, c("Delay").as_ptr(), c("[100]").as_ptr(), 60_000, &mut out) };
    assert_eq!(rc, OK);
    assert!(began.elapsed() < Duration::from_secs(30), "waited for the deadline: {:?}", began.elapsed());
    assert_eq!(unsafe { CStr::from_ptr(out) }.to_str().unwrap(), "100");
    unsafe { signalr_string_free(out) };
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

// ---------------------------------------------------------------------------------------------
// Handlers, client results, lifecycle callbacks

fn on(conn: *mut signalr_connection, method: &str, p: &Arc<Probe>) -> u64 {
    let mut id = 0;
    let rc = unsafe { signalr_connection_on(conn, c(method).as_ptr(), Some(on_call), p.ud(), Some(release_probe), &mut id) };
    assert_eq!(rc, OK, "{}", last_error());
    assert_ne!(id, 0);
    id
}

#[test]
fn handlers_receive_calls_in_order_and_can_be_removed() {
    let hub = Hub::start();
    for protocol in PROTOCOLS {
        let conn = connect(&hub, protocol);
        let (a, b) = (Probe::new(), Probe::new());
        let id_a = on(conn, "Notify", &a);
        let id_b = on(conn, "notify", &b); // same method, other case
        for i in 0..20 {
            invoke_blocking(conn, "SendToCaller", &format!(r#"["NOTIFY", {i}, "x{i}"]"#)).unwrap();
        }
        for i in 0..20 {
            assert_eq!(a.next(), Ev::Call("Notify".into(), format!(r#"[{i},"x{i}"]"#)));
            assert_eq!(b.next(), Ev::Call("notify".into(), format!(r#"[{i},"x{i}"]"#)));
        }
        unsafe {
            assert_eq!(signalr_connection_remove_handler(conn, id_a), OK);
            assert_eq!(signalr_connection_remove_handler(conn, id_a), OK, "removing twice is fine");
        }
        invoke_blocking(conn, "SendToCaller", r#"["Notify", "after"]"#).unwrap();
        assert_eq!(b.next(), Ev::Call("notify".into(), r#"["after"]"#.into()));
        assert_eq!(a.try_next(), None);
        assert_eq!(a.released(), 1, "released once removed");
        let _ = id_b;
        unsafe { assert_eq!(signalr_connection_off(conn, c("NOTIFY").as_ptr()), OK) };
        wait_until("released by off", || b.released() == 1);
        invoke_blocking(conn, "SendToCaller", r#"["Notify", "gone"]"#).unwrap();
        // A call after `off` reaches nobody: prove it by a later call of another handler.
        let z = Probe::new();
        on(conn, "Z", &z);
        invoke_blocking(conn, "SendToCaller", r#"["Z"]"#).unwrap();
        assert_eq!(z.next(), Ev::Call("Z".into(), "[]".into()));
        assert_eq!(b.try_next(), None);
        unsafe {
            // Bad arguments.
            let mut id = 0;
            assert_eq!(signalr_connection_on(conn, c("").as_ptr(), Some(on_call), z.ud(), Some(release_probe), &mut id), signalr_result::InvalidArgument);
            assert_eq!(signalr_connection_on(conn, null(), Some(on_call), z.ud(), Some(release_probe), &mut id), signalr_result::NullParameter);
            assert_eq!(signalr_connection_on(conn, c("x").as_ptr(), None, z.ud(), Some(release_probe), &mut id), signalr_result::NullParameter);
            assert_eq!(signalr_connection_on(conn, c("x").as_ptr(), Some(on_call), z.ud(), Some(release_probe), null_mut()), signalr_result::NullParameter);
            assert_eq!(signalr_connection_on(conn, c"\xfe".as_ptr(), Some(on_call), z.ud(), Some(release_probe), &mut id), signalr_result::InvalidUtf8);
            assert_eq!(signalr_connection_off(conn, null()), signalr_result::NullParameter);
            assert_eq!(z.released(), 5);
            assert_eq!(id, 0);
            signalr_connection_free(conn);
        }
        assert_eq!(z.released(), 6);
    }
}

#[test]
fn batch_handlers_receive_every_call_once_in_order_in_bounded_batches() {
    let hub = Hub::start();
    for protocol in PROTOCOLS {
        let conn = connect(&hub, protocol);
        let p = Probe::new();
        let mut id = 0;
        let rc = unsafe { signalr_connection_on_batch(conn, c("Flood").as_ptr(), Some(on_batch), p.ud(), Some(release_probe), &mut id) };
        assert_eq!(rc, OK, "{}", last_error());
        assert_ne!(id, 0);
        assert_eq!(invoke_blocking(conn, "Flood", "[5000, 8]").unwrap(), "5000");
        let mut next = 0;
        while next < 5000 {
            let Ev::Batch(method, json, count) = p.next() else { panic!("not a batch") };
            assert_eq!(method, "Flood");
            let calls: Vec<(u64, String)> = serde_json::from_str(&json).unwrap();
            assert_eq!(calls.len(), count);
            assert!((1..=1024).contains(&count), "{count} calls in a batch");
            for (i, payload) in calls {
                assert_eq!((i, payload.as_str()), (next, "xxxxxxxx"));
                next += 1;
            }
        }
        // With a plain handler on the same method, each call queues a job for both: a batch then
        // ends at the plain handler's job and holds one call.
        let q = Probe::new();
        on(conn, "flood", &q);
        assert_eq!(invoke_blocking(conn, "Flood", "[3, 1]").unwrap(), "3");
        for i in 0..3 {
            assert_eq!(q.next(), Ev::Call("flood".into(), format!(r#"[{i},"x"]"#)));
            assert_eq!(p.next(), Ev::Batch("Flood".into(), format!(r#"[[{i},"x"]]"#), 1));
        }
        unsafe { signalr_connection_free(conn) };
        assert_eq!((p.released(), q.released()), (1, 1));
        assert_eq!(p.try_next(), None);
    }
}

unsafe extern "C" fn answer_with_args(_: *mut c_void, _: *const c_char, _: usize, a: *const c_char, al: usize, r: *mut signalr_responder) {
    // The argument array is `[x]`: answer `{"got": x}`.
    let args: serde_json::Value = serde_json::from_str(&borrowed(a, al).unwrap()).unwrap();
    let answer = c(&serde_json::json!({ "got": args[0] }).to_string());
    assert_eq!(signalr_responder_complete(r, answer.as_ptr()), OK);
}

unsafe extern "C" fn answer_with_error(_: *mut c_void, _: *const c_char, _: usize, _: *const c_char, _: usize, r: *mut signalr_responder) {
    assert_eq!(signalr_responder_complete_with_error(r, c("not today").as_ptr()), OK);
}

unsafe extern "C" fn answer_never(_: *mut c_void, _: *const c_char, _: usize, _: *const c_char, _: usize, r: *mut signalr_responder) {
    signalr_responder_free(r);
}

/// Keeps the responder; a test thread answers it later.
static LATER: Mutex<Vec<usize>> = Mutex::new(Vec::new());

unsafe extern "C" fn answer_later(_: *mut c_void, _: *const c_char, _: usize, _: *const c_char, _: usize, r: *mut signalr_responder) {
    LATER.lock().unwrap().push(r as usize);
}

unsafe extern "C" fn answer_invalid_json(_: *mut c_void, _: *const c_char, _: usize, _: *const c_char, _: usize, r: *mut signalr_responder) {
    // Consumed although invalid: the server gets an error naming the problem.
    assert_eq!(signalr_responder_complete(r, c("{not json").as_ptr()), signalr_result::InvalidJson);
}

unsafe extern "C" fn answer_invalid_utf8(_: *mut c_void, _: *const c_char, _: usize, _: *const c_char, _: usize, r: *mut signalr_responder) {
    assert_eq!(signalr_responder_complete_with_error(r, c"\xff".as_ptr()), signalr_result::InvalidUtf8);
}

#[test]
fn client_results_are_answered_at_once_later_with_errors_or_not_at_all() {
    let hub = Hub::start();
    for protocol in PROTOCOLS {
        let conn = connect(&hub, protocol);
        let p = Probe::new();
        let mut id = 0;
        unsafe {
            assert_eq!(signalr_connection_on_invocation(conn, c("Ask").as_ptr(), Some(answer_with_args), p.ud(), Some(release_probe), &mut id), OK);
            assert_eq!(
                signalr_connection_on_invocation(conn, c("ask").as_ptr(), Some(answer_with_error), p.ud(), Some(release_probe), &mut id),
                signalr_result::InvalidState,
                "one client-result handler per method"
            );
            assert_eq!(p.released(), 1);
            assert_eq!(signalr_connection_on_invocation(conn, c("Refuse").as_ptr(), Some(answer_with_error), p.ud(), Some(release_probe), &mut id), OK);
            assert_eq!(signalr_connection_on_invocation(conn, c("Ignore").as_ptr(), Some(answer_never), p.ud(), Some(release_probe), &mut id), OK);
            assert_eq!(signalr_connection_on_invocation(conn, c("Later").as_ptr(), Some(answer_later), p.ud(), Some(release_probe), &mut id), OK);
        }
        let got: serde_json::Value = serde_json::from_str(&invoke_blocking(conn, "AskClient", r#"["Ask", [1, "two"]]"#).unwrap()).unwrap();
        assert_eq!(got, serde_json::json!({"got": [1, "two"]}));
        let (rc, msg) = invoke_blocking(conn, "AskClient", r#"["Refuse", 0]"#).unwrap_err();
        assert_eq!(rc, signalr_result::HubError);
        assert!(msg.ends_with("not today"), "{msg}");
        let (_, msg) = invoke_blocking(conn, "AskClient", r#"["Ignore", 0]"#).unwrap_err();
        assert!(msg.ends_with("Client didn't provide a result."), "{msg}");
        let (_, msg) = invoke_blocking(conn, "AskClient", r#"["Nobody", 0]"#).unwrap_err();
        assert!(msg.ends_with("Client didn't provide a result."), "{msg}");
        unsafe {
            assert_eq!(signalr_connection_on_invocation(conn, c("BadJson").as_ptr(), Some(answer_invalid_json), p.ud(), Some(release_probe), &mut id), OK);
            assert_eq!(signalr_connection_on_invocation(conn, c("BadUtf8").as_ptr(), Some(answer_invalid_utf8), p.ud(), Some(release_probe), &mut id), OK);
        }
        let (rc, msg) = invoke_blocking(conn, "AskClient", r#"["BadJson", 0]"#).unwrap_err();
        assert_eq!(rc, signalr_result::HubError);
        assert!(msg.contains("The client's result was not valid: `result_json`"), "{msg}");
        let (_, msg) = invoke_blocking(conn, "AskClient", r#"["BadUtf8", 0]"#).unwrap_err();
        assert!(msg.contains("The client's error was not valid: `error` is not valid UTF-8"), "{msg}");
        // Answered later from another thread.
        let done = Probe::new();
        unsafe {
            assert_eq!(
                signalr_connection_invoke(conn, c("AskClient").as_ptr(), c(r#"["Later", 7]"#).as_ptr(), Some(on_done), done.ud(), Some(release_probe)),
                OK
            );
        }
        let r = loop {
            if let Some(r) = LATER.lock().unwrap().pop() {
                break r;
            }
            std::thread::yield_now();
        };
        std::thread::spawn(move || unsafe {
            assert_eq!(signalr_responder_complete(r as *mut signalr_responder, c("\"late\"").as_ptr()), OK);
        })
        .join()
        .unwrap();
        assert_eq!(done.next(), Ev::Done(OK, None, Some("\"late\"".into())));
        unsafe {
            assert_eq!(signalr_responder_complete(null_mut(), c("1").as_ptr()), signalr_result::NullParameter);
            assert_eq!(signalr_responder_complete_with_error(null_mut(), c("x").as_ptr()), signalr_result::NullParameter);
            signalr_responder_free(null_mut());
            signalr_connection_free(conn);
        }
        assert_eq!(p.released(), 7);
        assert_eq!(done.released(), 1);
    }
}

#[test]
fn a_responder_kept_past_the_connection_reports_it_closed() {
    let hub = Hub::start();
    let conn = connect(&hub, signalr_protocol::Json);
    let p = Probe::new();
    let mut id = 0;
    unsafe {
        assert_eq!(signalr_connection_on_invocation(conn, c("Later").as_ptr(), Some(answer_later), p.ud(), Some(release_probe), &mut id), OK);
        assert_eq!(signalr_connection_invoke(conn, c("AskClient").as_ptr(), c(r#"["Later", 1]"#).as_ptr(), Some(on_done), p.ud(), Some(release_probe)), OK);
    }
    let r = loop {
        if let Some(r) = LATER.lock().unwrap().pop() {
            break r;
        }
        std::thread::yield_now();
    };
    unsafe {
        signalr_connection_free(conn);
        assert!(matches!(p.next(), Ev::Done(signalr_result::Canceled, Some(_), None)));
        assert_eq!(p.released(), 2);
        assert_eq!(signalr_responder_complete(r as *mut signalr_responder, c("1").as_ptr()), signalr_result::ConnectionClosed);
    }
}

#[test]
fn lifecycle_callbacks_report_states_close_and_reconnects() {
    let hub = Hub::start();
    let b = builder(&hub.url("/hub"));
    unsafe { assert_eq!(signalr_builder_set_automatic_reconnect(b, [0u64].as_ptr(), 1), OK) };
    let conn = build(b);
    let p = Probe::new();
    unsafe {
        assert_eq!(signalr_connection_on_state_changed(conn, Some(on_state), p.ud(), Some(release_probe)), OK);
        assert_eq!(signalr_connection_on_closed(conn, Some(on_closed), p.ud(), Some(release_probe)), OK);
        assert_eq!(signalr_connection_on_reconnecting(conn, Some(on_reconnecting), p.ud(), Some(release_probe)), OK);
        assert_eq!(signalr_connection_on_reconnected(conn, Some(on_reconnected), p.ud(), Some(release_probe)), OK);
        assert_eq!(signalr_connection_on_closed(conn, None, p.ud(), Some(release_probe)), signalr_result::NullParameter);
        assert_eq!(p.released(), 1);
        assert_eq!(signalr_connection_get_transport(conn), signalr_transport::None as u32);
        assert_eq!(signalr_connection_start_blocking(conn, 30_000), OK);
        assert_eq!(signalr_connection_get_transport(conn), signalr_transport::Websockets as u32);
    }
    use signalr_connection_state as S;
    assert_eq!(p.next(), Ev::State(S::Disconnected as u32, S::Connecting as u32));
    assert_eq!(p.next(), Ev::State(S::Connecting as u32, S::Connected as u32));
    // The server drops the transport: reconnecting, then reconnected with a new id.
    let mut out = null_mut();
    let rc = unsafe { signalr_connection_invoke_blocking(conn, c("DropTransport").as_ptr(), c("[]").as_ptr(), 30_000, &mut out) };
    assert_eq!(rc, signalr_result::ConnectionClosed, "{}", last_error());
    assert_eq!(p.next(), Ev::State(S::Connected as u32, S::Reconnecting as u32));
    match p.next() {
        Ev::Reconnecting(signalr_result::TransportFailed | signalr_result::ConnectionClosed, Some(_)) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(p.next(), Ev::State(S::Reconnecting as u32, S::Connected as u32));
    let Ev::Reconnected(Some(new_id)) = p.next() else { panic!("no reconnected id") };
    assert_eq!(invoke_blocking(conn, "GetConnectionId", "[]").unwrap(), format!("\"{new_id}\""));
    // A server Close with an error (no reconnect allowed) closes with that error.
    let _ = invoke_blocking(conn, "CloseWithError", r#"["bye", false]"#);
    assert_eq!(p.next(), Ev::State(S::Connected as u32, S::Disconnected as u32));
    assert_eq!(p.next(), Ev::Closed(signalr_result::ConnectionClosed, Some("Server returned an error on close: bye".into())));
    // Start again, then a clean stop: closed with OK.
    unsafe { assert_eq!(signalr_connection_start_blocking(conn, 30_000), OK) };
    assert_eq!(p.next(), Ev::State(S::Disconnected as u32, S::Connecting as u32));
    assert_eq!(p.next(), Ev::State(S::Connecting as u32, S::Connected as u32));
    unsafe { assert_eq!(signalr_connection_stop_blocking(conn, 30_000), OK) };
    assert_eq!(p.next(), Ev::State(S::Connected as u32, S::Disconnecting as u32));
    assert_eq!(p.next(), Ev::State(S::Disconnecting as u32, S::Disconnected as u32));
    assert_eq!(p.next(), Ev::Closed(OK, None));
    unsafe { signalr_connection_free(conn) };
    assert_eq!(p.released(), 5);
    assert_eq!(p.try_next(), None);
}

// ---------------------------------------------------------------------------------------------
// Streams and uploads

fn stream(conn: *mut signalr_connection, method: &str, args: &str, p: &Arc<Probe>) -> *mut signalr_stream {
    let mut s = null_mut();
    let rc = unsafe {
        signalr_connection_stream(conn, c(method).as_ptr(), c(args).as_ptr(), Some(on_item), Some(on_done), p.ud(), Some(release_probe), &mut s)
    };
    assert_eq!(rc, OK, "{}", last_error());
    s
}

#[test]
fn streams_deliver_items_in_order_then_end_once() {
    let hub = Hub::start();
    for protocol in PROTOCOLS {
        let conn = connect(&hub, protocol);
        let p = Probe::new();
        let s = stream(conn, "Counter", "[5, 0]", &p);
        for i in 0..5 {
            assert_eq!(p.next(), Ev::Item(i.to_string()));
        }
        assert_eq!(p.next(), Ev::Done(OK, None, None));
        unsafe {
            assert_eq!(signalr_stream_cancel(s), OK, "cancel after the end is a no-op");
            signalr_stream_free(s);
        }
        wait_until("user data released after the end", || p.released() == 1);
        // An unknown stream method: the server's error ends it.
        let s = stream(conn, "Nope", "[]", &p);
        match p.next() {
            Ev::Done(signalr_result::HubError, Some(msg), None) => assert!(msg.contains("Method does not exist"), "{msg}"),
            other => panic!("{other:?}"),
        }
        unsafe { signalr_stream_free(s) };
        // Canceled while running: CANCELED once, and the server stops it.
        let s = stream(conn, "Counter", "[1000, 20]", &p);
        assert_eq!(p.next(), Ev::Item("0".into()));
        unsafe { assert_eq!(signalr_stream_cancel(s), OK) };
        let mut items_after = 0;
        loop {
            match p.next() {
                Ev::Item(_) => items_after += 1,
                Ev::Done(signalr_result::Canceled, Some(_), None) => break,
                other => panic!("{other:?}"),
            }
        }
        assert!(items_after < 1000);
        unsafe { signalr_stream_free(s) };
        // Freed while running: the same.
        let s = stream(conn, "Counter", "[1000, 20]", &p);
        assert_eq!(p.next(), Ev::Item("0".into()));
        unsafe { signalr_stream_free(s) };
        loop {
            match p.next() {
                Ev::Item(_) => {}
                Ev::Done(signalr_result::Canceled, _, None) => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(invoke_blocking(conn, "Add", "[1,1]").unwrap(), "2", "connection fine after cancels");
        wait_until("user data released after the ends", || p.released() == 4);
        unsafe {
            let mut s = null_mut();
            assert_eq!(
                signalr_connection_stream(conn, c("Counter").as_ptr(), c("[1,0]").as_ptr(), None, Some(on_done), p.ud(), Some(release_probe), &mut s),
                signalr_result::NullParameter
            );
            assert_eq!(
                signalr_connection_stream(conn, c("Counter").as_ptr(), c("[1,0]").as_ptr(), Some(on_item), None, p.ud(), Some(release_probe), &mut s),
                signalr_result::NullParameter
            );
            assert_eq!(
                signalr_connection_stream(conn, c("Counter").as_ptr(), c("[1,0]").as_ptr(), Some(on_item), Some(on_done), p.ud(), Some(release_probe), null_mut()),
                signalr_result::NullParameter
            );
            assert!(s.is_null());
            assert_eq!(signalr_stream_cancel(null_mut()), signalr_result::NullParameter);
            signalr_stream_free(null_mut());
            signalr_connection_free(conn);
        }
        assert_eq!(p.released(), 7);
    }
}

#[test]
fn upload_streams_send_items_in_order_and_end_with_complete_error_or_free() {
    let hub = Hub::start();
    for protocol in PROTOCOLS {
        let conn = connect(&hub, protocol);
        let p = Probe::new();
        unsafe {
            // Sum: items written right away (possibly before the invocation went out) are summed.
            let mut ups = [null_mut(); 1];
            assert_eq!(
                signalr_connection_invoke_with_uploads(conn, c("Sum").as_ptr(), c("[]").as_ptr(), 1, ups.as_mut_ptr(), Some(on_done), p.ud(), Some(release_probe)),
                OK
            );
            for i in 1..=10 {
                assert_eq!(signalr_upload_write(ups[0], c(&i.to_string()).as_ptr()), OK);
            }
            assert_eq!(signalr_upload_write(ups[0], c("{bad").as_ptr()), signalr_result::InvalidJson);
            assert_eq!(signalr_upload_complete(ups[0]), OK);
            assert_eq!(signalr_upload_write(ups[0], c("1").as_ptr()), signalr_result::InvalidState);
            assert_eq!(signalr_upload_complete(ups[0]), signalr_result::InvalidState);
            assert_eq!(p.next(), Ev::Done(OK, None, Some("55".into())));
            signalr_upload_free(ups[0]);

            // An upload that ends with an error: the hub method throws it.
            let mut ups = [null_mut(); 1];
            assert_eq!(
                signalr_connection_invoke_with_uploads(conn, c("Sum").as_ptr(), c("[]").as_ptr(), 1, ups.as_mut_ptr(), Some(on_done), p.ud(), Some(release_probe)),
                OK
            );
            assert_eq!(signalr_upload_write(ups[0], c("1").as_ptr()), OK);
            assert_eq!(signalr_upload_complete_with_error(ups[0], c("client gave up").as_ptr()), OK);
            match p.next() {
                Ev::Done(signalr_result::HubError, Some(msg), None) => assert!(msg.contains("client gave up"), "{msg}"),
                other => panic!("{other:?}"),
            }
            signalr_upload_free(ups[0]);

            // Freed unfinished: "Stream canceled by client."
            let mut ups = [null_mut(); 1];
            assert_eq!(
                signalr_connection_invoke_with_uploads(conn, c("Sum").as_ptr(), c("[]").as_ptr(), 1, ups.as_mut_ptr(), Some(on_done), p.ud(), Some(release_probe)),
                OK
            );
            signalr_upload_free(ups[0]);
            match p.next() {
                Ev::Done(signalr_result::HubError, Some(msg), None) => assert!(msg.contains("Stream canceled by client."), "{msg}"),
                other => panic!("{other:?}"),
            }

            // A stream fed by an upload: items echoed in order.
            let mut ups = [null_mut(); 1];
            let mut s = null_mut();
            assert_eq!(
                signalr_connection_stream_with_uploads(
                    conn, c("UploadEcho").as_ptr(), c("[]").as_ptr(), 1, ups.as_mut_ptr(), Some(on_item), Some(on_done), p.ud(), Some(release_probe), &mut s
                ),
                OK
            );
            for i in 0..5 {
                assert_eq!(signalr_upload_write(ups[0], c(&format!("{{\"n\":{i}}}")).as_ptr()), OK);
            }
            assert_eq!(signalr_upload_complete(ups[0]), OK);
            for i in 0..5 {
                assert_eq!(p.next(), Ev::Item(format!("{{\"n\":{i}}}")));
            }
            assert_eq!(p.next(), Ev::Done(OK, None, None));
            signalr_upload_free(ups[0]);
            signalr_stream_free(s);

            // send with an upload: done once written; the hub sees it (Sum's result is lost, as for send).
            let mut ups = [null_mut(); 1];
            assert_eq!(
                signalr_connection_send_with_uploads(conn, c("Sum").as_ptr(), c("[]").as_ptr(), 1, ups.as_mut_ptr(), Some(on_done), p.ud(), Some(release_probe)),
                OK
            );
            assert_eq!(p.next(), Ev::Done(OK, None, None));
            assert_eq!(signalr_upload_write(ups[0], c("3").as_ptr()), OK);
            assert_eq!(signalr_upload_complete(ups[0]), OK);
            signalr_upload_free(ups[0]);

            // Argument checks.
            assert_eq!(
                signalr_connection_invoke_with_uploads(conn, c("Sum").as_ptr(), c("[]").as_ptr(), 1, null_mut(), Some(on_done), p.ud(), Some(release_probe)),
                signalr_result::NullParameter
            );
            assert_eq!(signalr_upload_write(null_mut(), c("1").as_ptr()), signalr_result::NullParameter);
            assert_eq!(signalr_upload_complete(null_mut()), signalr_result::NullParameter);
            assert_eq!(signalr_upload_complete_with_error(null_mut(), c("e").as_ptr()), signalr_result::NullParameter);
            signalr_upload_free(null_mut());

            // Uploads outlive their connection: their operations fail, free still works.
            let mut ups = [null_mut(); 2];
            assert_eq!(
                signalr_connection_invoke_with_uploads(conn, c("Sum").as_ptr(), c("[]").as_ptr(), 2, ups.as_mut_ptr(), Some(on_done), p.ud(), Some(release_probe)),
                OK
            );
            signalr_connection_free(conn);
            assert!(matches!(p.next(), Ev::Done(signalr_result::Canceled, Some(_), None)));
            let rc = signalr_upload_write(ups[0], c("1").as_ptr());
            assert!(matches!(rc, signalr_result::ConnectionClosed | signalr_result::Canceled), "{rc:?} {}", last_error());
            signalr_upload_free(ups[0]);
            signalr_upload_free(ups[1]);
        }
        assert_eq!(p.released(), 7);
        assert_eq!(p.try_next(), None);
    }
}

// ---------------------------------------------------------------------------------------------
// Access-token provider and reconnect policy

/// The token to answer with, read from the probe's... simpler: user data is a C string.
unsafe extern "C" fn token_now(ud: *mut c_void, request: *mut signalr_token_request) {
    let calls = &*(ud as *const AtomicUsize);
    calls.fetch_add(1, Ordering::SeqCst);
    assert_eq!(signalr_token_request_complete(request, c("alice").as_ptr(), null()), OK);
}

unsafe extern "C" fn token_later(_: *mut c_void, request: *mut signalr_token_request) {
    let r = request as usize;
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        assert_eq!(signalr_token_request_complete(r as *mut signalr_token_request, c("bob").as_ptr(), null()), OK);
    });
}

unsafe extern "C" fn token_fails(_: *mut c_void, request: *mut signalr_token_request) {
    assert_eq!(signalr_token_request_complete(request, null(), c("no credentials").as_ptr()), OK);
}

unsafe extern "C" fn token_blocking_is_refused(ud: *mut c_void, request: *mut signalr_token_request) {
    let conn = *(ud as *const usize) as *mut signalr_connection;
    assert_eq!(signalr_connection_stop_blocking(conn, 1000), signalr_result::WouldDeadlock);
    assert_eq!(signalr_token_request_complete(request, c("carol").as_ptr(), null()), OK);
}

unsafe extern "C" fn free_counter(ud: *mut c_void) {
    (*(ud as *const AtomicUsize)).fetch_add(1000, Ordering::SeqCst);
}

#[test]
fn the_access_token_provider_is_asked_before_negotiate_and_connect() {
    let hub = Hub::start();
    unsafe {
        let calls = Box::leak(Box::new(AtomicUsize::new(0)));
        let b = builder(&hub.url("/auth-hub"));
        assert_eq!(signalr_builder_set_access_token_provider(b, Some(token_now), calls as *mut AtomicUsize as *mut c_void, Some(free_counter)), OK);
        let conn = build(b);
        assert_eq!(signalr_connection_start_blocking(conn, 30_000), OK, "{}", last_error());
        assert_eq!(invoke_blocking(conn, "GetUser", "[]").unwrap(), "\"alice\"");
        assert_eq!(calls.load(Ordering::SeqCst), 2, "negotiate and connect");
        signalr_connection_free(conn);
        assert_eq!(calls.load(Ordering::SeqCst), 1002, "user data released once at free");

        let b = builder(&hub.url("/auth-hub"));
        assert_eq!(signalr_builder_set_access_token_provider(b, Some(token_later), null_mut(), None), OK);
        let conn = build(b);
        assert_eq!(signalr_connection_start_blocking(conn, 30_000), OK, "{}", last_error());
        assert_eq!(invoke_blocking(conn, "GetUser", "[]").unwrap(), "\"bob\"");
        signalr_connection_free(conn);

        let b = builder(&hub.url("/auth-hub"));
        assert_eq!(signalr_builder_set_access_token_provider(b, Some(token_fails), null_mut(), None), OK);
        let conn = build(b);
        assert_eq!(signalr_connection_start_blocking(conn, 30_000), signalr_result::Unauthorized);
        assert!(last_error().contains("no credentials"), "{}", last_error());
        signalr_connection_free(conn);

        // Inside the token callback, blocking calls are refused.
        let slot = Box::leak(Box::new(0usize));
        let b = builder(&hub.url("/auth-hub"));
        assert_eq!(signalr_builder_set_access_token_provider(b, Some(token_blocking_is_refused), slot as *mut usize as *mut c_void, None), OK);
        let conn = build(b);
        *slot = conn as usize;
        assert_eq!(signalr_connection_start_blocking(conn, 30_000), OK, "{}", last_error());
        assert_eq!(invoke_blocking(conn, "GetUser", "[]").unwrap(), "\"carol\"");
        signalr_connection_free(conn);

        // A NULL callback removes the provider: the auth hub refuses.
        let calls = Box::leak(Box::new(AtomicUsize::new(0)));
        let b = builder(&hub.url("/auth-hub"));
        assert_eq!(signalr_builder_set_access_token_provider(b, Some(token_now), calls as *mut AtomicUsize as *mut c_void, Some(free_counter)), OK);
        assert_eq!(signalr_builder_set_access_token_provider(b, None, null_mut(), None), OK);
        assert_eq!(calls.load(Ordering::SeqCst), 1000, "replaced: released");
        let conn = build(b);
        assert_eq!(signalr_connection_start_blocking(conn, 30_000), signalr_result::Unauthorized);
        signalr_connection_free(conn);

        assert_eq!(signalr_token_request_complete(null_mut(), null(), null()), signalr_result::NullParameter);
    }
}

/// Records each question of the policy; retries at once twice, then stops.
unsafe extern "C" fn policy_twice(ud: *mut c_void, count: u64, elapsed_ms: u64, reason: *const c_char, len: usize) -> i64 {
    // The policy runs on the connection's callback thread (a thread that ends), not a runtime one.
    assert_eq!(std::thread::current().name(), Some("signalr-callbacks"));
    let conn_slot = &*(ud as *const Mutex<Vec<(u64, u64, String)>>);
    conn_slot.lock().unwrap().push((count, elapsed_ms, borrowed(reason, len).unwrap()));
    if count < 2 {
        0
    } else {
        -1
    }
}

unsafe extern "C" fn policy_retry_now(ud: *mut c_void, _: u64, _: u64, _: *const c_char, _: usize) -> i64 {
    probe(ud).record(Ev::Call("policy".into(), String::new()));
    0
}

unsafe extern "C" fn slow_call(_: *mut c_void, _: *const c_char, _: usize, _: *const c_char, _: usize) {
    std::thread::sleep(Duration::from_millis(1500));
}

#[test]
fn freeing_while_a_reconnect_policy_call_is_pending_does_not_hang() {
    let hub = Hub::start();
    let b = builder(&hub.url("/hub"));
    let p = Probe::new();
    unsafe { assert_eq!(signalr_builder_set_reconnect_policy(b, Some(policy_retry_now), p.ud(), Some(release_probe)), OK) };
    let conn = build(b);
    let mut id = 0;
    unsafe {
        assert_eq!(signalr_connection_on(conn, c("Slow").as_ptr(), Some(slow_call), null_mut(), None, &mut id), OK);
        assert_eq!(signalr_connection_start_blocking(conn, 30_000), OK);
        // The callback thread is busy in the handler; the connection is lost meanwhile, so the
        // policy call is queued behind it when the connection is freed.
        assert_eq!(signalr_connection_send_blocking(conn, c("SendToCaller").as_ptr(), c(r#"["Slow"]"#).as_ptr(), 30_000), OK);
        let mut out = null_mut();
        let _ = signalr_connection_invoke_blocking(conn, c("DropTransport").as_ptr(), c("[]").as_ptr(), 300, &mut out);
        if !out.is_null() {
            signalr_string_free(out);
        }
        std::thread::sleep(Duration::from_millis(200));
        let began = std::time::Instant::now();
        signalr_connection_free(conn);
        assert!(began.elapsed() < Duration::from_secs(20), "free took {:?}", began.elapsed());
    }
    assert_eq!(p.released(), 1, "the policy's user data is released at free");
}

#[test]
fn the_reconnect_policy_callback_decides_the_delays() {
    let hub = Hub::start();
    let asked: &'static Mutex<Vec<(u64, u64, String)>> = Box::leak(Box::new(Mutex::new(Vec::new())));
    let b = builder(&hub.url("/hub"));
    unsafe { assert_eq!(signalr_builder_set_reconnect_policy(b, Some(policy_twice), asked as *const _ as *mut c_void, None), OK) };
    let conn = build(b);
    let p = Probe::new();
    unsafe {
        assert_eq!(signalr_connection_on_reconnecting(conn, Some(on_reconnecting), p.ud(), Some(release_probe)), OK);
        assert_eq!(signalr_connection_on_reconnected(conn, Some(on_reconnected), p.ud(), Some(release_probe)), OK);
        assert_eq!(signalr_connection_on_closed(conn, Some(on_closed), p.ud(), Some(release_probe)), OK);
        assert_eq!(signalr_connection_start_blocking(conn, 30_000), OK);
    }
    let _ = invoke_blocking(conn, "DropTransport", "[]");
    assert!(matches!(p.next(), Ev::Reconnecting(_, Some(_))));
    assert!(matches!(p.next(), Ev::Reconnected(Some(_))));
    {
        let asked = asked.lock().unwrap();
        assert_eq!(asked.len(), 1);
        assert_eq!((asked[0].0, asked[0].1), (0, 0));
        assert!(!asked[0].2.is_empty());
    }
    // Every reconnect attempt fails: the policy is asked again, then stops the retries.
    unsafe {
        let mut out = null_mut();
        assert_eq!(signalr_connection_invoke_blocking(conn, c("FailNextConnects").as_ptr(), c(r#"["WebSockets", 10]"#).as_ptr(), 30_000, &mut out), OK);
        signalr_string_free(out);
        assert_eq!(signalr_connection_invoke_blocking(conn, c("FailNextNegotiations").as_ptr(), c("[10, 500]").as_ptr(), 30_000, &mut out), OK);
        signalr_string_free(out);
    }
    let _ = invoke_blocking(conn, "DropTransport", "[]");
    assert!(matches!(p.next(), Ev::Reconnecting(_, Some(_))));
    match p.next() {
        Ev::Closed(signalr_result::Canceled, Some(msg)) => assert!(msg.contains("Reconnect retries have been exhausted"), "{msg}"),
        other => panic!("{other:?}"),
    }
    let counts: Vec<u64> = asked.lock().unwrap().iter().map(|a| a.0).collect();
    assert_eq!(counts, vec![0, 0, 1, 2]);
    unsafe { signalr_connection_free(conn) };
    assert_eq!(p.released(), 3);
}

// ---------------------------------------------------------------------------------------------
// Free at any time: with calls in flight, from inside callbacks; exactly-once completions

/// Waits for a condition that a library thread makes true (a hang guard, not a timing assertion).
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "{what} did not happen within 60 s");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn invoke_async(conn: *mut signalr_connection, method: &str, args: &str, p: &Arc<Probe>) {
    let rc = unsafe { signalr_connection_invoke(conn, c(method).as_ptr(), c(args).as_ptr(), Some(on_done), p.ud(), Some(release_probe)) };
    assert_eq!(rc, OK, "{}", last_error());
}

#[test]
fn free_with_calls_in_flight_completes_each_exactly_once_before_returning() {
    let hub = Hub::start();
    for protocol in PROTOCOLS {
        let conn = connect(&hub, protocol);
        let (calls, items, life) = (Probe::new(), Probe::new(), Probe::new());
        on(conn, "Never", &life);
        unsafe { assert_eq!(signalr_connection_on_closed(conn, Some(on_closed), life.ud(), Some(release_probe)), OK) };
        for _ in 0..10 {
            invoke_async(conn, "Delay", "[20000]", &calls);
        }
        let mut streams = Vec::new();
        for _ in 0..3 {
            streams.push(stream(conn, "Counter", "[100000, 5]", &items));
        }
        let mut ups = [null_mut(); 1];
        unsafe {
            assert_eq!(
                signalr_connection_invoke_with_uploads(conn, c("Sum").as_ptr(), c("[]").as_ptr(), 1, ups.as_mut_ptr(), Some(on_done), calls.ud(), Some(release_probe)),
                OK
            );
            signalr_connection_free(conn);
        }
        // Everything happened before free returned.
        assert_eq!(calls.released(), 11);
        assert_eq!(items.released(), 3);
        assert_eq!(life.released(), 2);
        let mut done = 0;
        while let Some(ev) = calls.try_next() {
            assert!(matches!(ev, Ev::Done(signalr_result::Canceled, Some(_), None)), "{ev:?}");
            done += 1;
        }
        assert_eq!(done, 11, "each completion exactly once, with CANCELED");
        let mut stream_ends = 0;
        while let Some(ev) = items.try_next() {
            match ev {
                Ev::Item(_) => assert_eq!(stream_ends, 0, "no item after a stream's end"),
                Ev::Done(signalr_result::Canceled, Some(_), None) => stream_ends += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(stream_ends, 3);
        // Handles of the freed connection stay valid to use and free.
        unsafe {
            assert_eq!(signalr_stream_cancel(streams[0]), OK);
            for s in streams {
                signalr_stream_free(s);
            }
            assert_eq!(signalr_upload_write(ups[0], c("1").as_ptr()), signalr_result::ConnectionClosed);
            signalr_upload_free(ups[0]);
        }
        // Nothing runs afterwards: another connection's round trip through the hub later, still nothing.
        let other = connect(&hub, protocol);
        assert_eq!(invoke_blocking(other, "Broadcast", r#"["Never", 1]"#).unwrap(), "null");
        unsafe { signalr_connection_free(other) };
        assert_eq!(calls.try_next(), None);
        assert_eq!(items.try_next(), None);
        assert_eq!(life.try_next(), None);
    }
}

#[test]
fn free_during_start_cancels_the_start() {
    let hub = Hub::start();
    for _ in 0..10 {
        let conn = build(builder(&hub.url("/hub")));
        let p = Probe::new();
        unsafe {
            assert_eq!(signalr_connection_start(conn, Some(on_done), p.ud(), Some(release_probe)), OK);
            signalr_connection_free(conn);
        }
        assert_eq!(p.released(), 1);
        assert!(matches!(p.try_next(), Some(Ev::Done(signalr_result::Canceled, Some(_), None))));
        assert_eq!(p.try_next(), None);
    }
}

/// A connection pointer a callback may free, set once the connection exists.
#[derive(Default)]
struct Target(AtomicUsize);

impl Target {
    fn set(&self, conn: *mut signalr_connection) {
        self.0.store(conn as usize, Ordering::SeqCst);
    }
    /// Frees it from inside a callback, after checking that blocking calls are refused there.
    fn free_from_callback(&self) {
        let conn = self.0.swap(0, Ordering::SeqCst) as *mut signalr_connection;
        if conn.is_null() {
            return;
        }
        unsafe {
            let mut out = null_mut();
            assert_eq!(signalr_connection_invoke_blocking(conn, c("Add").as_ptr(), c("[1,1]").as_ptr(), 0, &mut out), signalr_result::WouldDeadlock);
            assert!(last_error().contains("inside a library callback"), "{}", last_error());
            assert_eq!(signalr_connection_send_blocking(conn, c("Add").as_ptr(), c("[1,1]").as_ptr(), 0), signalr_result::WouldDeadlock);
            assert_eq!(signalr_connection_stop_blocking(conn, 0), signalr_result::WouldDeadlock);
            assert_eq!(signalr_connection_start_blocking(conn, 0), signalr_result::WouldDeadlock);
            // Asynchronous calls are fine in here (INVALID_STATE only because it is closing).
            let rc = signalr_connection_send(conn, c("Record").as_ptr(), c("[1]").as_ptr(), None, null_mut(), None);
            assert!(matches!(rc, OK | signalr_result::InvalidState), "{rc:?}");
            signalr_connection_free(conn);
        }
    }
}

#[test]
fn free_from_inside_a_handler_a_completion_and_lifecycle_callbacks() {
    let hub = Hub::start();
    let other = connect(&hub, signalr_protocol::Json);
    // Which callback frees: a handler, a completion, the closed and the state-changed callback.
    for case in ["handler", "completion", "closed", "state"] {
        let conn = connect(&hub, signalr_protocol::Json);
        let target = Arc::new(Target::default());
        target.set(conn);
        let (trigger, pending) = (Probe::new(), Probe::new());
        let t = target.clone();
        trigger.on_event(move |ev| match (case, ev) {
            ("handler", Ev::Call(..)) | ("completion", Ev::Done(..)) | ("closed", Ev::Closed(..)) => t.free_from_callback(),
            ("state", Ev::State(_, new)) if *new == signalr_connection_state::Disconnecting as u32 => t.free_from_callback(),
            _ => {}
        });
        on(conn, "Ping", &trigger);
        unsafe {
            assert_eq!(signalr_connection_on_closed(conn, Some(on_closed), trigger.ud(), Some(release_probe)), OK);
            assert_eq!(signalr_connection_on_state_changed(conn, Some(on_state), trigger.ud(), Some(release_probe)), OK);
        }
        // The hub runs one invocation of a connection at a time: these keep it busy.
        for _ in 0..5 {
            invoke_async(conn, "Delay", "[20000]", &pending);
        }
        match case {
            // From the other connection, as the hub is busy with this one's calls.
            "handler" => assert_eq!(invoke_blocking(other, "Broadcast", r#"["Ping"]"#).unwrap(), "null"),
            "completion" => unsafe {
                assert_eq!(signalr_connection_send(conn, c("Record").as_ptr(), c("[0]").as_ptr(), Some(on_done), trigger.ud(), Some(release_probe)), OK)
            },
            _ => unsafe { assert_eq!(signalr_connection_stop(conn, Some(on_done), pending.ud(), Some(release_probe)), OK) },
        }
        // The teardown finishes on the callback thread once the freeing callback returned.
        let pending_count = if matches!(case, "closed" | "state") { 6 } else { 5 };
        let (mut canceled, mut closed) = (0, 0);
        for _ in 0..pending_count {
            match pending.next() {
                Ev::Done(signalr_result::Canceled, Some(_), None) => canceled += 1,
                // A stop fails its pending calls before the closed callbacks run.
                Ev::Done(signalr_result::ConnectionClosed, Some(_), None) if case == "closed" => closed += 1,
                other => panic!("{case}: {other:?}"),
            }
        }
        assert_eq!((canceled, closed), if case == "closed" { (1, 5) } else { (pending_count, 0) }, "{case}");
        let trigger_refs = 3 + (case == "completion") as usize;
        wait_until("user data released", || pending.released() == pending_count && trigger.released() == trigger_refs);
        assert_eq!(target.0.load(Ordering::SeqCst), 0, "{case}: the callback ran and freed");
        assert_eq!(pending.try_next(), None);
    }
    unsafe { signalr_connection_free(other) };
}

/// Signals that the client-result call arrived and keeps its responder unanswered (freed later).
unsafe extern "C" fn hold(ud: *mut c_void, _: *const c_char, _: usize, _: *const c_char, _: usize, r: *mut signalr_responder) {
    probe(ud).record(Ev::Item(format!("{}", r as usize)));
}

#[test]
fn free_from_another_thread_ends_a_blocking_call_waiting_on_the_connection() {
    let hub = Hub::start();
    let conn = connect(&hub, signalr_protocol::Json);
    let held = Probe::new();
    let mut id = 0;
    unsafe { assert_eq!(signalr_connection_on_invocation(conn, c("Hold").as_ptr(), Some(hold), held.ud(), Some(release_probe), &mut id), OK) };
    let c_addr = conn as usize;
    let waiter = std::thread::spawn(move || {
        let mut out = null_mut();
        unsafe { signalr_connection_invoke_blocking(c_addr as *mut _, c("AskClient").as_ptr(), c(r#"["Hold", 0]"#).as_ptr(), 0, &mut out) }
    });
    // Once the hub asks this client, the blocking call is in flight: free the connection.
    let Ev::Item(responder) = held.next() else { panic!() };
    unsafe { signalr_connection_free(conn) };
    let rc = waiter.join().unwrap();
    assert!(matches!(rc, signalr_result::ConnectionClosed | signalr_result::Canceled), "{rc:?}");
    unsafe { signalr_responder_free(responder.parse::<usize>().unwrap() as *mut signalr_responder) };
    assert_eq!(held.released(), 1);
}

#[test]
fn many_connections_created_started_and_freed_with_traffic() {
    let hub = Hub::start();
    for i in 0..20 {
        let conn = connect(&hub, PROTOCOLS[i % 2]);
        let p = Probe::new();
        on(conn, "Notify", &p);
        for _ in 0..5 {
            invoke_async(conn, "SendToCaller", r#"["Notify", 1]"#, &p);
        }
        let s = stream(conn, "Counter", "[1000, 1]", &p);
        if i % 3 == 0 {
            assert!(matches!(p.next(), Ev::Call(..) | Ev::Done(..) | Ev::Item(_)));
        }
        unsafe {
            signalr_connection_free(conn);
            signalr_stream_free(s);
        }
        assert_eq!(p.released(), 7, "iteration {i}");
        let mut ends = 0;
        while let Some(ev) = p.try_next() {
            if let Ev::Done(..) = ev {
                ends += 1;
            }
        }
        assert_eq!(ends, 6, "iteration {i}: every completion exactly once");
    }
}

// ---------------------------------------------------------------------------------------------
// Process-wide functions

unsafe extern "C" fn on_log(ud: *mut c_void, level: u32, target: *const c_char, tl: usize, message: *const c_char, ml: usize) {
    let target = borrowed(target, tl).unwrap();
    let message = borrowed(message, ml).unwrap();
    assert!(level <= signalr_log_level::Critical as u32);
    // Records are delivered on the one library log thread (which ends when the callback is removed).
    assert_eq!(std::thread::current().name(), Some("signalr-log"));
    // Inside the log callback blocking calls are refused too.
    assert_eq!(signalr_connection_stop_blocking(null_mut(), 0), signalr_result::WouldDeadlock);
    probe(ud).record(Ev::Call(target, message));
}

#[test]
fn version_result_names_logging_and_huge_timeouts() {
    unsafe {
        assert_eq!(CStr::from_ptr(signalr_version()).to_str().unwrap(), env!("CARGO_PKG_VERSION"));
        assert_eq!(CStr::from_ptr(signalr_result_name(signalr_result::WouldDeadlock as u32)).to_str().unwrap(), "SIGNALR_RESULT_WOULD_DEADLOCK");
        assert_eq!(CStr::from_ptr(signalr_result_name(999)).to_str().unwrap(), "SIGNALR_RESULT_UNKNOWN");
        signalr_string_free(null_mut());

        let p = Probe::new();
        assert_eq!(signalr_log_set_callback(Some(on_log), p.ud(), Some(release_probe), 99), signalr_result::InvalidArgument);
        assert_eq!(p.released(), 1);
        assert_eq!(signalr_log_set_callback(Some(on_log), p.ud(), Some(release_probe), signalr_log_level::Trace as u32), OK);
        let hub = Hub::start();
        let conn = connect(&hub, signalr_protocol::Json);
        // No time limit: UINT64_MAX must not overflow a deadline.
        let mut out = null_mut();
        assert_eq!(signalr_connection_invoke_blocking(conn, c("Add").as_ptr(), c("[1,2]").as_ptr(), u64::MAX, &mut out), OK);
        assert_eq!(take_string(out), "3");
        assert_eq!(signalr_connection_send_blocking(conn, c("Record").as_ptr(), c("[1]").as_ptr(), u64::MAX), OK);
        signalr_connection_free(conn);
        let Ev::Call(target, message) = p.next() else { panic!() };
        assert!(!target.is_empty() && !message.is_empty());
        assert_eq!(signalr_log_set_level(99), signalr_result::InvalidArgument);
        assert_eq!(signalr_log_set_level(signalr_log_level::None as u32), OK);
        assert_eq!(signalr_log_set_callback(None, null_mut(), None, signalr_log_level::None as u32), OK);
        assert_eq!(p.released(), 2, "released when removed");
    }
}

// ---------------------------------------------------------------------------------------------
// Callback order across kinds

#[test]
fn stream_items_results_and_handler_calls_arrive_in_protocol_order() {
    let hub = Hub::start();
    let conn = connect(&hub, signalr_protocol::Json);
    let p = Probe::new();
    on(conn, "H", &p);
    // Invocation id "0": a stream the hub keeps silent for a long time (streams run beside the
    // hub's one-at-a-time invocations); id "1": the SendRaw call that plays a script for id "0".
    let s = stream(conn, "Counter", "[1, 600000]", &p);
    let frames = [
        r#"{"type":2,"invocationId":"0","item":"a"}"#,
        r#"{"type":1,"target":"H","arguments":[1]}"#,
        r#"{"type":2,"invocationId":"0","item":"b"}"#,
        r#"{"type":1,"target":"H","arguments":[2]}"#,
        r#"{"type":3,"invocationId":"0"}"#,
        r#"{"type":1,"target":"H","arguments":[3]}"#,
    ]
    .map(|f| format!("{f}\u{1e}"));
    let args = serde_json::json!([frames, false]).to_string();
    invoke_async(conn, "SendRaw", &args, &p);
    let got: Vec<Ev> = (0..7).map(|_| p.next()).collect();
    assert_eq!(
        got,
        vec![
            Ev::Item("\"a\"".into()),
            Ev::Call("H".into(), "[1]".into()),
            Ev::Item("\"b\"".into()),
            Ev::Call("H".into(), "[2]".into()),
            Ev::Done(OK, None, None),
            Ev::Call("H".into(), "[3]".into()),
            Ev::Done(OK, None, Some("null".into())),
        ]
    );
    unsafe {
        signalr_stream_free(s);
        signalr_connection_free(conn);
    }
}

#[test]
fn streams_canceled_at_once_end_once_and_leave_the_connection_usable() {
    let hub = Hub::start();
    let conn = connect(&hub, signalr_protocol::Messagepack);
    let p = Probe::new();
    for _ in 0..50 {
        let s = stream(conn, "Counter", "[1000000, 0]", &p);
        unsafe { signalr_stream_free(s) };
    }
    let mut ends = 0;
    while ends < 50 {
        match p.next() {
            Ev::Item(_) => {}
            Ev::Done(signalr_result::Canceled, Some(_), None) => ends += 1,
            other => panic!("{other:?}"),
        }
    }
    // The connection is still usable.
    assert_eq!(invoke_blocking(conn, "Add", "[20, 22]").unwrap(), "42");
    unsafe { signalr_connection_free(conn) };
    assert_eq!(p.released(), 50);
    while let Some(ev) = p.try_next() {
        assert!(matches!(ev, Ev::Item(_)), "{ev:?}");
    }
}

/// Blocks the callback thread on the first call until the test lets it go.
static GATE: Mutex<Option<mpsc::Receiver<()>>> = Mutex::new(None);

unsafe extern "C" fn slow_then_count(ud: *mut c_void, _: *const c_char, _: usize, a: *const c_char, al: usize) {
    if let Some(gate) = GATE.lock().unwrap().take() {
        probe(ud).record(Ev::Item("blocked".into()));
        gate.recv().unwrap();
    }
    let args: serde_json::Value = serde_json::from_str(&borrowed(a, al).unwrap()).unwrap();
    probe(ud).record(Ev::State(args[0].as_u64().unwrap() as u32, 0));
}

#[test]
fn a_handler_blocked_during_a_flood_loses_and_reorders_nothing() {
    let hub = Hub::start();
    let conn = connect(&hub, signalr_protocol::Json);
    let (open, gate) = mpsc::channel();
    *GATE.lock().unwrap() = Some(gate);
    let p = Probe::new();
    let mut id = 0;
    unsafe { assert_eq!(signalr_connection_on(conn, c("Flood").as_ptr(), Some(slow_then_count), p.ud(), Some(release_probe), &mut id), OK) };
    // More calls than the callback backlog holds (4096), 20 MB in all. (The back-pressure itself is
    // unit-tested in src/ffi/dispatcher.rs.)
    const N: u32 = 10_000;
    let done = Probe::new();
    invoke_async(conn, "Flood", &format!("[{N}, 2000]"), &done);
    assert_eq!(p.next(), Ev::Item("blocked".into()));
    open.send(()).unwrap();
    for i in 0..N {
        assert_eq!(p.next(), Ev::State(i, 0), "calls in order, none lost");
    }
    assert_eq!(done.next(), Ev::Done(OK, None, Some(N.to_string())));
    unsafe { signalr_connection_free(conn) };
    assert_eq!(p.released(), 1);
}

#[test]
fn every_transport_can_be_chosen_and_is_reported() {
    let hub = Hub::start();
    for (transport, name) in [
        (signalr_transport::Websockets, "WebSockets"),
        (signalr_transport::ServerSentEvents, "ServerSentEvents"),
        (signalr_transport::LongPolling, "LongPolling"),
    ] {
        let b = builder(&hub.url("/hub"));
        unsafe { assert_eq!(signalr_builder_set_transports(b, transport as u32), OK) };
        let conn = build(b);
        unsafe {
            assert_eq!(signalr_connection_start_blocking(conn, 30_000), OK, "{name}: {}", last_error());
            assert_eq!(signalr_connection_get_transport(conn), transport as u32, "{name}");
        }
        let info: serde_json::Value = serde_json::from_str(&invoke_blocking(conn, "GetRequestInfo", "[]").unwrap()).unwrap();
        assert_eq!(info["transport"], name);
        let p = Probe::new();
        on(conn, "Notify", &p);
        invoke_blocking(conn, "SendToCaller", r#"["Notify", "x"]"#).unwrap();
        assert_eq!(p.next(), Ev::Call("Notify".into(), r#"["x"]"#.into()));
        unsafe {
            assert_eq!(signalr_connection_stop_blocking(conn, 30_000), OK);
            assert_eq!(signalr_connection_get_transport(conn), signalr_transport::None as u32);
            signalr_connection_free(conn);
        }
    }
    assert_eq!(unsafe { signalr_connection_get_transport(null()) }, signalr_transport::None as u32);
}

#[test]
fn stateful_reconnect_keeps_the_connection_across_a_drop() {
    let hub = Hub::start();
    let b = builder(&hub.url("/hub"));
    unsafe {
        assert_eq!(signalr_builder_set_stateful_reconnect(b, true), OK);
        assert_eq!(signalr_builder_set_stateful_reconnect_buffer_size(b, 200_000), OK);
    }
    let conn = build(b);
    let p = Probe::new();
    unsafe {
        assert_eq!(signalr_connection_on_reconnecting(conn, Some(on_reconnecting), p.ud(), Some(release_probe)), OK);
        assert_eq!(signalr_connection_on_closed(conn, Some(on_closed), p.ud(), Some(release_probe)), OK);
        assert_eq!(signalr_connection_start_blocking(conn, 30_000), OK, "{}", last_error());
    }
    let mut id = null_mut();
    unsafe { assert_eq!(signalr_connection_get_connection_id(conn, &mut id), OK) };
    let id = unsafe { take_string(id) };
    invoke_blocking(conn, "Record", "[1]").unwrap();
    unsafe { assert_eq!(signalr_connection_send(conn, c("DropTransport").as_ptr(), c("[]").as_ptr(), None, null_mut(), None), OK) };
    invoke_blocking(conn, "Record", "[2]").unwrap();
    assert_eq!(invoke_blocking(conn, "GetRecorded", "[]").unwrap(), "[1,2]");
    assert_eq!(invoke_blocking(conn, "GetConnectionId", "[]").unwrap(), format!("\"{id}\""), "the same connection");
    unsafe { signalr_connection_free(conn) };
    assert_eq!(p.try_next(), None, "no reconnecting or closed callback");
    assert_eq!(p.released(), 2);
}
