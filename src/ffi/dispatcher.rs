//! The callback thread of a connection (plumbing).
//!
//! Every callback of one connection — handlers, lifecycle events, stream items, completions,
//! access-token requests — runs on that connection's own thread, one at a time, in the order the
//! events were queued. Library tasks never run C code: they queue a [`Job`] and carry on, so a
//! slow or blocking callback delays only its own connection, and `signalr_connection_free` can
//! tell "inside a callback" from "outside" by the thread.

use std::cell::Cell;
use std::sync::{mpsc, Arc};
use std::thread::{JoinHandle, ThreadId};

use super::connection::Connection;
use super::operation::{Op, Outcome};

thread_local! {
    /// How many library callbacks are running on this thread (they may nest: a log record
    /// emitted from inside a handler).
    static CALLBACK_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Marks the current thread as running a library callback while it lives.
pub(crate) struct CallbackScope(());

impl CallbackScope {
    pub fn enter() -> CallbackScope {
        CALLBACK_DEPTH.with(|d| d.set(d.get() + 1));
        CallbackScope(())
    }
}

impl Drop for CallbackScope {
    fn drop(&mut self) {
        CALLBACK_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Whether the current thread is inside a library callback (where blocking calls would deadlock).
pub(crate) fn in_callback() -> bool {
    CALLBACK_DEPTH.with(|d| d.get() > 0)
}

/// Work for the callback thread, run with the connection.
pub(crate) type Task = Box<dyn FnOnce(&Connection) + Send>;

pub(crate) enum Job {
    /// A user callback (handler, lifecycle event, stream item, token request): skipped once the
    /// connection is freed. Tasks capture ids and data, never user data, so dropping one unrun
    /// releases nothing the C side owns.
    Callback(Task),
    /// An operation finished: its completion is called (with `CANCELED` once freed).
    Complete(Arc<Op>, Outcome),
    /// `signalr_connection_free` was called: what is queued before is drained, then pending
    /// completions are canceled, every user data released, and the thread ends.
    Teardown,
}

/// The sending side, owned by the connection.
pub(crate) struct Dispatcher {
    jobs: mpsc::Sender<Job>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
    thread_id: std::sync::OnceLock<ThreadId>,
}

impl Dispatcher {
    /// A dispatcher whose thread is started by [`Dispatcher::start`] once the connection exists.
    pub fn new() -> (Dispatcher, mpsc::Receiver<Job>) {
        let (jobs, rx) = mpsc::channel();
        (Dispatcher { jobs, thread: Default::default(), thread_id: Default::default() }, rx)
    }

    pub fn start(connection: &Arc<Connection>, rx: mpsc::Receiver<Job>) -> std::io::Result<()> {
        let conn = connection.clone();
        let thread = std::thread::Builder::new()
            .name("signalr-callbacks".into())
            .spawn(move || run(conn, rx))?;
        let _ = connection.dispatcher.thread_id.set(thread.thread().id());
        *connection.dispatcher.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread);
        Ok(())
    }

    /// Queues a job; after teardown the job is dropped (it owns no user data).
    pub fn send(&self, job: Job) {
        let _ = self.jobs.send(job);
    }

    /// A sender for hooks that must not hold the connection.
    pub fn sender(&self) -> mpsc::Sender<Job> {
        self.jobs.clone()
    }

    pub fn is_current_thread(&self) -> bool {
        self.thread_id.get() == Some(&std::thread::current().id())
    }

    /// Waits until the thread has ended (after [`Job::Teardown`]).
    pub fn join(&self) {
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

fn run(conn: Arc<Connection>, rx: mpsc::Receiver<Job>) {
    // Everything on this thread is "inside a callback": user data releases included.
    let _scope = CallbackScope::enter();
    while let Ok(job) = rx.recv() {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match job {
            Job::Callback(task) => {
                if !conn.is_freed() {
                    task(&conn);
                }
                true
            }
            Job::Complete(op, outcome) => {
                op.deliver(&conn, outcome);
                true
            }
            Job::Teardown => false,
        }));
        match outcome {
            Ok(true) => {}
            Ok(false) => break,
            Err(payload) => tracing::error!("{}", super::boundary::panic_message(&*payload)),
        }
    }
    conn.teardown();
}
