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
use crate::{Payload, Responder};

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

/// A call of a client method for one handler registration. Data rather than a closure, so that
/// the callback thread can see which registration the next queued calls are for and hand a
/// batch handler all of them at once.
pub(crate) struct Call {
    /// The registration's id in the connection's handler table.
    pub reg: u64,
    pub args: Payload,
    /// For client-result handlers.
    pub responder: Option<Responder>,
}

pub(crate) enum Job {
    /// A user callback (lifecycle event, stream item, token request): skipped once the
    /// connection is freed. Tasks capture ids and data, never user data, so dropping one unrun
    /// releases nothing the C side owns.
    Callback(Task),
    /// A handler call: as `Callback`, and counted in the backlog (see [`Dispatcher::send_call`]).
    Call(Call),
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

    /// `calls` calls left the queue.
    fn release(&self, calls: usize) {
        let mut state = self.lock();
        // Only a release from a full backlog can free a waiter (it waits while full, checked under
        // this lock). Notifying on every call cost a futex syscall per handler call.
        let was_full = state.0 >= BACKLOG_LIMIT;
        state.0 = state.0.saturating_sub(calls);
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
    pub fn send_call(&self, call: Call) {
        self.backlog.reserve();
        if self.jobs.send(Job::Call(call)).is_err() {
            self.backlog.release(1);
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

/// The callback thread's end of the queue, with room for one job taken early: std's channel
/// cannot peek, and a batch must see the next job to know whether it belongs to it.
pub(crate) struct Queue {
    rx: mpsc::Receiver<Job>,
    ahead: Option<Job>,
    /// Calls taken off the queue and not yet released from the backlog.
    taken: usize,
}

impl Queue {
    pub fn new(rx: mpsc::Receiver<Job>) -> Queue {
        Queue { rx, ahead: None, taken: 0 }
    }

    fn recv(&mut self) -> Option<Job> {
        let job = match self.ahead.take() {
            Some(job) => job,
            None => self.rx.recv().ok()?,
        };
        if matches!(job, Job::Call(_)) {
            self.taken += 1;
        }
        Some(job)
    }

    /// The next job if it is a call already queued that `belongs` accepts; never waits. Any
    /// other job stays first in line.
    pub fn next_call_if(&mut self, belongs: impl FnOnce(&Call) -> bool) -> Option<Call> {
        if self.ahead.is_none() {
            self.ahead = self.rx.try_recv().ok();
        }
        match self.ahead.take() {
            Some(Job::Call(call)) if belongs(&call) => {
                self.taken += 1;
                Some(call)
            }
            other => {
                self.ahead = other;
                None
            }
        }
    }
}

fn run(conn: Arc<Connection>, rx: mpsc::Receiver<Job>) {
    // Everything on this thread is "inside a callback", user data releases included: so
    // `signalr_connection_free` called here never waits for this very thread.
    let _scope = CallbackScope::enter();
    let mut queue = Queue::new(rx);
    while let Some(job) = queue.recv() {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match job {
            Job::Callback(task) => {
                if !conn.is_freed() {
                    task(&conn);
                }
                true
            }
            Job::Call(call) => {
                if !conn.is_freed() {
                    conn.handlers.run(&conn, call, &mut queue);
                }
                true
            }
            Job::Complete(op, outcome) => {
                op.deliver(&conn, outcome);
                true
            }
            Job::Teardown => false,
        }));
        // Once per call taken, batched ones included, even after a panic.
        if queue.taken > 0 {
            conn.dispatcher.backlog.release(std::mem::take(&mut queue.taken));
        }
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
    use crate::protocol::Format;
    use std::time::Duration;

    fn call(reg: u64) -> Job {
        Job::Call(Call { reg, args: Payload::empty_array(Format::Json), responder: None })
    }

    #[test]
    fn the_queue_hands_out_only_queued_calls_that_belong_and_keeps_the_rest_in_order() {
        let (tx, rx) = mpsc::channel();
        let mut queue = Queue::new(rx);
        for job in [call(1), call(1), call(2), Job::Teardown, call(1)] {
            tx.send(job).unwrap();
        }
        assert!(matches!(queue.recv(), Some(Job::Call(Call { reg: 1, .. }))));
        assert_eq!(queue.next_call_if(|c| c.reg == 1).map(|c| c.reg), Some(1));
        // The next one is for another registration: it stays first in line.
        assert!(queue.next_call_if(|c| c.reg == 1).is_none());
        assert!(queue.next_call_if(|c| c.reg == 1).is_none());
        assert!(matches!(queue.recv(), Some(Job::Call(Call { reg: 2, .. }))));
        assert!(queue.next_call_if(|_| true).is_none(), "a job that is not a call ends a batch");
        assert!(matches!(queue.recv(), Some(Job::Teardown)));
        assert_eq!(queue.taken, 3, "every call taken is counted once");
        assert!(queue.next_call_if(|c| c.reg == 1).is_some());
        assert!(queue.next_call_if(|_| true).is_none(), "never waits for more");
        drop(tx);
        assert!(queue.recv().is_none());
        assert_eq!(queue.taken, 4);
    }

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
        backlog.release(1);
        rx.recv_timeout(Duration::from_secs(60)).expect("room made: the producer goes on");
        assert!(rx.try_recv().is_err());
        backlog.close();
        rx.recv_timeout(Duration::from_secs(60)).expect("closed: the producer goes on");
        producer.join().unwrap();
    }
}
