//! Operations in flight (plumbing): start, stop, invoke, send and streams, each reported through a
//! completion callback exactly once.
//!
//! An operation's future (or stream) is polled first by the call that starts it, then whenever
//! it is woken: a woken operation joins its connection's ready list, and whoever flushes that list
//! turns the results into jobs for the callback thread — the connection's pump task, or a
//! handler/lifecycle hook that first flushes every operation woken before it. That keeps
//! callbacks in protocol order (a result that arrived before an Invocation is reported before
//! that handler runs, calls failed by a connection loss before the close callback) without
//! copying anything twice. One pump task per connection, not one task per operation: a burst of
//! results costs one task wake, where a task per call woke the runtime's other worker per call.
//!
//! Exactly once: the callbacks live in the operation and are taken by the one who reports —
//! delivery of the outcome, or cancellation by `signalr_connection_free`.

use std::cell::Cell;
use std::ffi::{c_char, c_void};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;
use futures_util::Stream;

use super::connection::Connection;
use super::dispatcher::{CallbackScope, Job};
use super::result::{code_of, Failure, FfiResult};
use super::signalr_result;
use super::userdata::{signalr_userdata_free, UserData};
use crate::id_map::IdMap;
use crate::protocol::Format;
use crate::{Error, HubStream, Payload};

/// Reports the end of an asynchronous operation, exactly once.
///
/// `error` is NULL (length 0) on `SIGNALR_RESULT_OK`, else the error text. `json` is the result
/// of an invoke as JSON text (`"null"` for a void hub method); NULL (length 0) for start, stop,
/// send and the end of a stream. Both are borrowed, NUL-terminated, valid until the callback
/// returns.
/// Called on: the connection's callback thread, never inside the call that registered it; after
/// everything the operation reported earlier (stream items). May call any `signalr_` function
/// except the `_blocking` ones (they return `SIGNALR_RESULT_WOULD_DEADLOCK`). Must not unwind.
pub type signalr_completion_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        result: signalr_result,
        error: *const c_char,
        error_len: usize,
        json: *const c_char,
        json_len: usize,
    ),
>;

/// Receives one item of a server-to-client stream, as JSON text (borrowed, NUL-terminated,
/// valid until the callback returns).
///
/// Called on: the connection's callback thread, items in order, all before the stream's
/// completion. Must not unwind.
pub type signalr_stream_item_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, json: *const c_char, json_len: usize)>;

/// What an operation ends with: a value for invokes, nothing for the others.
pub(crate) type Outcome = crate::Result<Option<Payload>>;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

pub(crate) enum Work {
    /// Start, stop, invoke, send: one outcome.
    Future(BoxFuture<Outcome>),
    /// A stream whose invocation is still being sent.
    StreamStarting(BoxFuture<crate::Result<HubStream>>),
    /// A running stream: items, then the end.
    Stream(HubStream),
    /// A stream canceled before its invocation went out: driven until the stream exists, which is
    /// then dropped (the server is sent CancelInvocation); reports nothing more.
    Canceling(BoxFuture<crate::Result<HubStream>>),
}

/// The C side of an operation: its callbacks and their user data.
pub(crate) struct Callbacks {
    done: signalr_completion_callback,
    item: signalr_stream_item_callback,
    userdata: UserData,
}

impl Callbacks {
    pub fn new(
        done: signalr_completion_callback,
        item: signalr_stream_item_callback,
        userdata: *mut c_void,
        userdata_free: signalr_userdata_free,
    ) -> Callbacks {
        Callbacks { done, item, userdata: UserData::new(userdata, userdata_free) }
    }

    /// Calls the completion (if any); the user data is released when `self` drops, after it.
    fn complete(self, outcome: Outcome) {
        let Some(done) = self.done else { return };
        let ud = self.userdata.ptr();
        let _scope = CallbackScope::enter();
        match outcome {
            Ok(value) => {
                let lent = value.as_ref().map(|value| {
                    lend_json_text(value, |text| unsafe {
                        done(ud, signalr_result::Ok, std::ptr::null(), 0, text.as_ptr().cast(), text.len() - 1)
                    })
                });
                match lent {
                    Some(Ok(())) => {}
                    Some(Err(e)) => {
                        let failure = Failure::from(e);
                        let text = c_text(&failure.message);
                        unsafe { done(ud, failure.code, text.as_ptr().cast(), text.len() - 1, std::ptr::null(), 0) }
                    }
                    None => unsafe { done(ud, signalr_result::Ok, std::ptr::null(), 0, std::ptr::null(), 0) },
                }
            }
            Err(e) => {
                let text = c_text(&e.to_string());
                unsafe { done(ud, code_of(&e), text.as_ptr().cast(), text.len() - 1, std::ptr::null(), 0) }
            }
        }
    }
}

/// `text` with a terminating NUL (interior NULs replaced: C cannot carry them).
pub(crate) fn c_text(text: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend_from_slice(text.as_bytes());
    if bytes.contains(&0) {
        bytes = text.replace('\0', "\u{FFFD}").into_bytes();
    }
    bytes.push(0);
    bytes
}

thread_local! {
    /// The buffer the callback thread writes the text it lends to callbacks into, kept from one
    /// callback to the next: a handler call or stream item then costs no allocation there.
    static LENT_TEXT: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A lent-text buffer is kept up to this capacity; a bigger one (a rare big message) is released
/// after use rather than held by the thread.
const LENT_TEXT_KEEP: usize = 4096;

/// Calls `lend` with `payload` as NUL-terminated JSON text (whatever the hub protocol), written
/// into the thread's reused buffer; `lend` gets the text with its NUL.
pub(crate) fn lend_json_text<R>(payload: &Payload, lend: impl FnOnce(&[u8]) -> R) -> crate::Result<R> {
    // Taken, not borrowed: a nested call (from inside a callback) finds it empty and allocates.
    let mut text = LENT_TEXT.take();
    text.clear();
    let written = match payload.format {
        // JSON is checked to be UTF-8 and copied; MessagePack is transcoded straight into the
        // buffer (its strings are checked on the way).
        Format::Json => payload.to_json().map(|json| text.extend_from_slice(json.as_bytes())),
        Format::MessagePack => payload.write_as(Format::Json, &mut text),
    };
    let result = written.map(|()| {
        text.push(0);
        lend(&text)
    });
    if text.capacity() <= LENT_TEXT_KEEP {
        LENT_TEXT.set(text);
    }
    Ok(result?)
}

pub(crate) struct Op {
    id: u64,
    conn: Weak<Connection>,
    state: Mutex<OpState>,
    waker: Arc<OpWaker>,
}

struct OpState {
    work: Option<Work>,
    /// Taken by whoever reports the end: delivery or cancellation.
    callbacks: Option<Callbacks>,
}

/// Marks an operation ready for the next flush and wakes its connection's pump task.
struct OpWaker {
    id: u64,
    queued: AtomicBool,
    ready: Arc<Ready>,
}

/// Ids of operations woken since they were last pumped, in wake order.
#[derive(Default)]
struct Ready {
    ids: Mutex<Vec<u64>>,
    /// Whether `ids` may be non-empty: lets the receive loop's flush before every handler call
    /// skip the lock.
    any: AtomicBool,
    /// The connection's pump task (see [`Ops::spawn_pump`]).
    pump: AtomicWaker,
}

impl Wake for OpWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            lock(&self.ready.ids).push(self.id);
            self.ready.any.store(true, Ordering::Release);
            self.ready.pump.wake();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Tells whether operations of a connection have news to flush, without holding the connection.
pub(crate) struct ReadyProbe(Arc<Ready>);

impl ReadyProbe {
    pub fn any(&self) -> bool {
        self.0.any.load(Ordering::Acquire)
    }
}

/// The operations of one connection.
#[derive(Default)]
pub(crate) struct Ops {
    table: Mutex<Table>,
    ready: Arc<Ready>,
    /// Held while pumping, so that two pumpers cannot reorder the jobs of different operations.
    pumping: Mutex<()>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    ops: IdMap<Arc<Op>>,
    /// Set by teardown: no operation may start afterwards.
    closed: bool,
}

impl Ops {
    /// Registers an operation; fails once the connection is freed (the callbacks are dropped,
    /// releasing the user data before the registering call returns).
    pub fn register(&self, conn: &Arc<Connection>, work: Work, callbacks: Callbacks) -> FfiResult<Arc<Op>> {
        let mut table = lock(&self.table);
        if table.closed {
            return Err(Failure::new(signalr_result::ConnectionClosed, "the connection was freed"));
        }
        let id = table.next_id;
        table.next_id += 1;
        let op = Arc::new(Op {
            id,
            conn: Arc::downgrade(conn),
            state: Mutex::new(OpState { work: Some(work), callbacks: Some(callbacks) }),
            waker: Arc::new(OpWaker { id, queued: AtomicBool::new(false), ready: self.ready.clone() }),
        });
        table.ops.insert(id, op.clone());
        Ok(op)
    }

    /// Starts the task that flushes the connection's woken operations; it ends at teardown.
    pub fn spawn_pump(conn: &Arc<Connection>) {
        let weak = Arc::downgrade(conn);
        let ready = conn.ops.ready.clone();
        crate::runtime::global().spawn(std::future::poll_fn(move |cx| {
            // Registered before looking, so a wake that comes while flushing is not lost.
            ready.pump.register(cx.waker());
            let Some(conn) = weak.upgrade() else { return Poll::Ready(()) };
            if lock(&conn.ops.table).closed {
                return Poll::Ready(());
            }
            conn.ops.flush();
            Poll::Pending
        }));
    }

    pub fn ready_probe(&self) -> ReadyProbe {
        ReadyProbe(self.ready.clone())
    }

    /// Turns everything ready so far into jobs. Called by hooks before they queue their own job.
    pub fn flush(&self) {
        if !self.ready.any.load(Ordering::Acquire) {
            return;
        }
        let _pumping = lock(&self.pumping);
        let ids = {
            let mut ids = lock(&self.ready.ids);
            // Cleared under the lock: an id pushed after this sets it again.
            self.ready.any.store(false, Ordering::Release);
            std::mem::take(&mut *ids)
        };
        for id in ids {
            let op = lock(&self.table).ops.get(&id).cloned();
            if let Some(op) = op {
                op.waker.queued.store(false, Ordering::Release);
                op.pump();
            }
        }
    }

    /// Teardown: every operation still pending is canceled; its completion gets `CANCELED`.
    pub fn cancel_all(&self) {
        let mut ops: Vec<Arc<Op>> = {
            let mut table = lock(&self.table);
            table.closed = true;
            table.ops.drain().map(|(_, op)| op).collect()
        };
        ops.sort_by_key(|op| op.id);
        for op in ops {
            let (work, callbacks) = {
                let mut state = lock(&op.state);
                (state.work.take(), state.callbacks.take())
            };
            drop(work); // a stream's CancelInvocation goes out here
            if let Some(callbacks) = callbacks {
                callbacks.complete(Err(freed()));
            }
        }
        self.ready.pump.wake(); // it sees `closed` and ends
    }
}

enum Step {
    Pending,
    /// Nothing left to do (ended earlier).
    Finished,
    Item(Payload),
    End(Outcome),
}

/// One step of an operation's work.
fn poll_work(work: &mut Option<Work>, cx: &mut Context<'_>) -> Step {
    loop {
        return match work.as_mut() {
            None => Step::Finished,
            Some(Work::Future(f)) => match f.as_mut().poll(cx) {
                Poll::Pending => Step::Pending,
                Poll::Ready(outcome) => Step::End(outcome),
            },
            Some(Work::StreamStarting(f)) => match f.as_mut().poll(cx) {
                Poll::Pending => Step::Pending,
                Poll::Ready(Ok(stream)) => {
                    *work = Some(Work::Stream(stream));
                    continue;
                }
                Poll::Ready(Err(e)) => Step::End(Err(e)),
            },
            Some(Work::Canceling(f)) => match f.as_mut().poll(cx) {
                Poll::Pending => Step::Pending,
                Poll::Ready(stream) => {
                    drop(stream);
                    *work = None;
                    Step::Finished
                }
            },
            Some(Work::Stream(s)) => match Pin::new(s).poll_next(cx) {
                Poll::Pending => Step::Pending,
                Poll::Ready(Some(Ok(item))) => Step::Item(item),
                // A stream's error is its last item; the end follows.
                Poll::Ready(Some(Err(e))) => Step::End(Err(e)),
                Poll::Ready(None) => Step::End(Ok(None)),
            },
        };
    }
}

/// The error of operations canceled by `signalr_connection_free`.
pub(crate) fn freed() -> Error {
    Error::Canceled("the connection was freed".into())
}

impl Op {
    /// Polls the operation once on the calling thread, so that its message is queued before the
    /// registering call returns and calls go out in the order they were made. Its waker has the
    /// pump task poll it again until it has reported its end.
    pub fn start(self: &Arc<Self>) {
        if let Some(conn) = self.conn.upgrade() {
            let _runtime = crate::runtime::global().enter();
            let _pumping = lock(&conn.ops.pumping);
            self.pump();
        }
    }

    /// Polls the work with the operation's own waker and queues what it produced.
    fn pump(self: &Arc<Self>) {
        let waker = Waker::from(self.waker.clone());
        let mut cx = Context::from_waker(&waker);
        let mut state = lock(&self.state);
        loop {
            let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| poll_work(&mut state.work, &mut cx)))
                .unwrap_or_else(|payload| {
                    // A bug in the library: this operation fails with PANIC and the connection is
                    // stopped, which ends every other pending call (convention 12).
                    let error = Error::panicked("operation", &*payload);
                    tracing::error!("{error}");
                    if let Some(conn) = self.conn.upgrade() {
                        let hub = conn.hub.clone();
                        crate::runtime::global().spawn(async move { hub.stop().await });
                    }
                    Step::End(Err(error))
                });
            let Some(conn) = self.conn.upgrade() else { return };
            match step {
                Step::Pending | Step::Finished => return,
                Step::Item(item) => {
                    let op = self.clone();
                    conn.dispatcher.send(Job::Callback(Box::new(move |_| op.deliver_item(&item))));
                }
                Step::End(outcome) => {
                    state.work = None;
                    conn.dispatcher.send(Job::Complete(self.clone(), outcome));
                    return;
                }
            }
        }
    }

    /// Ends the operation early (stream cancel): its completion gets `error`. False when it had
    /// already ended.
    pub fn cancel(self: &Arc<Self>, error: Error) -> bool {
        let work = {
            let mut state = lock(&self.state);
            if matches!(state.work, None | Some(Work::Canceling(_))) {
                return false;
            }
            match state.work.take() {
                None => return false,
                // Dropping it now could leave the server streaming: finish sending, then cancel.
                Some(Work::StreamStarting(f)) => {
                    state.work = Some(Work::Canceling(f));
                    None
                }
                Some(work) => Some(work),
            }
        };
        drop(work);
        if let Some(conn) = self.conn.upgrade() {
            conn.dispatcher.send(Job::Complete(self.clone(), Err(error)));
        }
        true
    }

    /// On the callback thread: reports the outcome (or `CANCELED` once the connection is freed).
    pub fn deliver(self: &Arc<Self>, conn: &Connection, outcome: Outcome) {
        let callbacks = lock(&self.state).callbacks.take();
        lock(&conn.ops.table).ops.remove(&self.id);
        if let Some(callbacks) = callbacks {
            callbacks.complete(if conn.is_freed() { Err(freed()) } else { outcome });
        }
    }

    fn deliver_item(&self, item: &Payload) {
        let (callback, ud) = {
            let state = lock(&self.state);
            match &state.callbacks {
                Some(Callbacks { item: Some(cb), userdata, .. }) => (*cb, userdata.ptr()),
                _ => return,
            }
        };
        let _scope = CallbackScope::enter();
        if let Err(e) = lend_json_text(item, |text| unsafe { callback(ud, text.as_ptr().cast(), text.len() - 1) }) {
            tracing::error!("stream item dropped: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::ffi::boundary::to_handle;
    use crate::ffi::connection::{signalr_connection, signalr_connection_free};

    type Reports = Mutex<mpsc::Sender<(signalr_result, String)>>;

    unsafe extern "C" fn report(ud: *mut c_void, r: signalr_result, e: *const c_char, el: usize, _: *const c_char, _: usize) {
        let text = String::from_utf8_lossy(std::slice::from_raw_parts(e.cast::<u8>(), el)).into_owned();
        let _ = (*(ud as *const Reports)).lock().unwrap().send((r, text));
    }

    unsafe extern "C" fn release(ud: *mut c_void) {
        drop(Box::from_raw(ud as *mut Reports));
    }

    #[test]
    fn lent_text_is_each_payload_with_its_nul_whatever_came_before_or_around_it() {
        let text = |p: &Payload| lend_json_text(p, |t| t.to_vec()).unwrap();
        let small = Payload::from_json("[1,\"a\"]").unwrap();
        let big = Payload::from_json(format!("[\"{}\"]", "x".repeat(2 * LENT_TEXT_KEEP))).unwrap();
        assert_eq!(text(&small), b"[1,\"a\"]\0");
        assert_eq!(text(&big).len(), big.bytes.len() + 1, "bigger than the kept buffer");
        assert_eq!(text(&small), b"[1,\"a\"]\0", "nothing left over from the big one");
        // A nested lend (a callback's own) gets its own buffer; the outer text stays intact.
        let other = Payload::from_json("[2]").unwrap();
        let (inner, outer) =
            lend_json_text(&small, |outer| (lend_json_text(&other, |t| t.to_vec()).unwrap(), outer.to_vec())).unwrap();
        assert_eq!((inner, outer), (b"[2]\0".to_vec(), b"[1,\"a\"]\0".to_vec()));
    }

    #[test]
    fn a_panicking_operation_completes_with_panic_exactly_once() {
        let hub = crate::HubConnectionBuilder::new("http://127.0.0.1:9/hub")
            .runtime(crate::runtime::global().handle().clone())
            .build()
            .unwrap();
        let conn = Connection::new(hub, Vec::new()).unwrap();
        let (tx, rx) = mpsc::channel::<(signalr_result, String)>();
        let ud = Box::into_raw(Box::new(Mutex::new(tx))) as *mut c_void;
        let work = Work::Future(Box::pin(async {
            tokio::task::yield_now().await;
            panic!("boom in a future")
        }));
        conn.run_op(work, Callbacks::new(Some(report), None, ud, Some(release))).unwrap();
        let (code, text) = rx.recv_timeout(std::time::Duration::from_secs(60)).unwrap();
        assert_eq!(code, signalr_result::Panic);
        assert!(text.contains("boom in a future"), "{text}");
        // The connection is still usable (and freeable); the user data went with the completion.
        unsafe { signalr_connection_free(to_handle::<signalr_connection>(conn)) };
        assert!(rx.try_recv().is_err(), "reported once");
    }
}
