//! The callback thread of a connection (plumbing).
//!
//! Every callback of one connection — handlers, lifecycle events, stream items, completions,
//! access-token requests — runs on that connection's own thread, one at a time, in the order the
//! events were queued. Library tasks never run C code: they queue a [`Job`] and carry on, so a
//! slow or blocking callback delays only its own connection, and `signalr_connection_free` can
//! tell "inside a callback" from "outside" by the thread.

use std::cell::Cell;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

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
    /// A user callback (lifecycle event, stream item, token request): skipped once the
    /// connection is freed. Tasks capture ids and data, never user data, so dropping one unrun
    /// releases nothing the C side owns.
    Callback(Task),
    /// A handler call: as `Callback`, and counted in the backlog (see [`Dispatcher::send_call`]).
    Call(Task),
    /// An operation finished: its completion is called (with `CANCELED` once freed).
    Complete(Arc<Op>, Outcome),
    /// `signalr_connection_free` was called: what is queued before is drained, then pending
    /// completions are canceled, every user data released, and the thread ends.
    Teardown,
}

/// Handler calls queued and not yet run, above which the receive loop waits: the server then
/// sees back-pressure, as it would if handlers ran inline, instead of the queue growing without
/// bound behind a slow callback.
const BACKLOG_LIMIT: usize = 4096;

#[derive(Default)]
struct Backlog {
    /// Calls queued, and whether the callback thread stopped taking them (teardown).
    state: Mutex<(usize, bool)>,
    room: Condvar,
}

impl Backlog {
    fn lock(&self) -> MutexGuard<'_, (usize, bool)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn full(state: &(usize, bool)) -> bool {
        state.0 >= BACKLOG_LIMIT && !state.1
    }

    fn reserve(&self) {
        let mut state = self.lock();
        if Backlog::full(&state) {
            drop(state);
            let wait = || {
                let mut state = self.lock();
                while Backlog::full(&state) {
                    state = self.room.wait(state).unwrap_or_else(|p| p.into_inner());
                }
                state.0 += 1;
            };
            // On a runtime worker (the receive loop): let the runtime move its other tasks away.
            match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
                Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
                _ => wait(),
            }
            return;
        }
        state.0 += 1;
    }

    fn release(&self) {
        let mut state = self.lock();
        // Only a release from a full backlog can free a waiter (it waits while full, checked under
        // this lock). Notifying on every call cost a futex syscall per handler call.
        let was_full = state.0 >= BACKLOG_LIMIT;
        state.0 = state.0.saturating_sub(1);
        drop(state);
        if was_full {
            self.room.notify_all();
        }
    }

    fn close(&self) {
        self.lock().1 = true;
        self.room.notify_all();
    }
}

/// The sending side, owned by the connection.
pub(crate) struct Dispatcher {
    jobs: mpsc::Sender<Job>,
    backlog: Backlog,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Dispatcher {
    /// A dispatcher whose thread is started by [`Dispatcher::start`] once the connection exists.
    pub fn new() -> (Dispatcher, mpsc::Receiver<Job>) {
        let (jobs, rx) = mpsc::channel();
        (Dispatcher { jobs, backlog: Backlog::default(), thread: Default::default() }, rx)
    }

    pub fn start(connection: &Arc<Connection>, rx: mpsc::Receiver<Job>) -> std::io::Result<()> {
        let conn = connection.clone();
        let thread = std::thread::Builder::new()
            .name("signalr-callbacks".into())
            .spawn(move || run(conn, rx))?;
        *connection.dispatcher.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread);
        Ok(())
    }

    /// Queues a job; after teardown the job is dropped (it owns no user data).
    pub fn send(&self, job: Job) {
        let _ = self.jobs.send(job);
    }

    /// Queues a handler call, first waiting while the callback thread is far behind. Only for the
    /// receive loop's hooks, which hold no lock.
    pub fn send_call(&self, task: Task) {
        self.backlog.reserve();
        if self.jobs.send(Job::Call(task)).is_err() {
            self.backlog.release();
        }
    }

    /// A sender for hooks that must not hold the connection.
    pub fn sender(&self) -> mpsc::Sender<Job> {
        self.jobs.clone()
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
    // Everything on this thread is "inside a callback", user data releases included: so
    // `signalr_connection_free` called here never waits for this very thread.
    let _scope = CallbackScope::enter();
    while let Ok(job) = rx.recv() {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match job {
            Job::Callback(task) => {
                if !conn.is_freed() {
                    task(&conn);
                }
                true
            }
            Job::Call(task) => {
                if !conn.is_freed() {
                    task(&conn);
                }
                conn.dispatcher.backlog.release();
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
    conn.dispatcher.backlog.close();
    conn.teardown();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_backlog_makes_a_producer_wait_until_there_is_room_or_it_closes() {
        let backlog = Arc::new(Backlog::default());
        for _ in 0..BACKLOG_LIMIT {
            backlog.reserve();
        }
        let (tx, rx) = mpsc::channel();
        let b = backlog.clone();
        let producer = std::thread::spawn(move || {
            b.reserve();
            tx.send(()).unwrap();
            b.reserve(); // full again: waits until closed
            tx.send(()).unwrap();
        });
        // Still full: the producer cannot have passed. (A wrong implementation is caught here
        // whenever the producer ran first, so this can miss a bug but never fails a right one.)
        std::thread::sleep(Duration::from_millis(20));
        assert!(rx.try_recv().is_err(), "reserve must wait while the backlog is full");
        backlog.release();
        rx.recv_timeout(Duration::from_secs(60)).expect("room made: the producer goes on");
        assert!(rx.try_recv().is_err());
        backlog.close();
        rx.recv_timeout(Duration::from_secs(60)).expect("closed: the producer goes on");
        producer.join().unwrap();
    }
}
