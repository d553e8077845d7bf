//! The callback thread of a connection (plumbing).
//!
//! Every callback of one connection — handlers, lifecycle events, stream items, completions,
//! access-token requests — runs on that connection's own thread, one at a time, in the order the
//! events were queued. Library tasks never run C code: they queue a [`Job`] and carry on, so a
//! slow or blocking callback delays only its own connection, and `signalr_connection_free` can
//! tell "inside a callback" from "outside" by the thread.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::call_args::CallArgs;
use super::connection::Connection;
use super::operation::{Op, Outcome};
use crate::Responder;

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
    pub args: CallArgs,
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

/// Handler calls queued without waking the callback thread, above which it is woken anyway: a
/// bound on how long the first of a long burst waits for the receive loop to catch up.
const WAKE_EVERY: usize = 256;

/// The queue between the library's tasks and the callback thread. One lock guards it all: the
/// callback thread takes every queued job at once, and handler calls wake it only once the
/// receive loop has caught up ([`Sender::caught_up`]) — a sleeping thread woken per message
/// cost a futex wake and a context switch per message.
#[derive(Default)]
struct Jobs {
    state: Mutex<Shared>,
    /// The callback thread waits here for jobs.
    ready: Condvar,
    /// The receive loop waits here for room in the backlog.
    room: Condvar,
}

#[derive(Default)]
struct Shared {
    jobs: VecDeque<Job>,
    /// Calls queued or taken and not yet run: the backlog.
    calls: usize,
    /// Calls queued since the callback thread last took the queue.
    new_calls: usize,
    /// The callback thread waits on `ready` and nobody has woken it yet. It had taken every
    /// job, and any job but a call wakes it: so while it waits, `jobs` holds only the calls
    /// queued since, not yet announced.
    idle: bool,
    /// Teardown: the callback thread takes no more jobs; producers never wait.
    closed: bool,
}

impl Jobs {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the callback thread if it waits (one futex call at most, whoever calls).
    fn wake(&self, state: &mut Shared) {
        if state.idle {
            state.idle = false;
            self.ready.notify_one();
        }
    }

    fn send(&self, job: Job) {
        let mut state = self.lock();
        if state.closed {
            drop(state);
            return; // `job` is dropped here, outside the lock
        }
        state.jobs.push_back(job);
        self.wake(&mut state);
    }

    /// See [`Sender::send_call`].
    fn send_call(&self, call: Call) {
        let mut state = self.lock();
        if state.calls >= BACKLOG_LIMIT && !state.closed {
            drop(state);
            let wait = || {
                let mut state = self.lock();
                while state.calls >= BACKLOG_LIMIT && !state.closed {
                    self.wake(&mut state);
                    state = self.room.wait(state).unwrap_or_else(|p| p.into_inner());
                }
                state
            };
            // On a runtime worker (the receive loop): let the runtime move its other tasks away.
            state = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
                Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
                _ => wait(),
            };
        }
        if state.closed {
            drop(state);
            return;
        }
        state.jobs.push_back(Job::Call(call));
        state.calls += 1;
        state.new_calls += 1;
        if state.jobs.len() >= WAKE_EVERY {
            self.wake(&mut state);
        }
    }

    /// The receive loop has handled everything received: wakes the callback thread for the
    /// calls it queued.
    fn caught_up(&self) {
        let mut state = self.lock();
        if !state.jobs.is_empty() {
            self.wake(&mut state);
        }
    }
}

/// Queues jobs without holding the connection (for the core's hooks).
#[derive(Clone)]
pub(crate) struct Sender(Arc<Jobs>);

impl Sender {
    /// As [`Dispatcher::send`].
    pub fn send(&self, job: Job) {
        self.0.send(job)
    }

    /// Wakes the callback thread for the handler calls queued so far (see [`Jobs`]).
    pub fn caught_up(&self) {
        self.0.caught_up()
    }

    /// Queues a handler call, first waiting while the callback thread is far behind. The callback
    /// thread is woken later, by [`Sender::caught_up`]. Only for the receive loop's hooks,
    /// which hold no lock.
    pub fn send_call(&self, call: Call) {
        self.0.send_call(call)
    }
}

/// The sending side, owned by the connection.
pub(crate) struct Dispatcher {
    jobs: Arc<Jobs>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Dispatcher {
    /// A dispatcher whose thread is started by [`Dispatcher::start`] once the connection exists.
    pub fn new() -> Dispatcher {
        Dispatcher { jobs: Arc::default(), thread: Default::default() }
    }

    pub fn start(connection: &Arc<Connection>) -> std::io::Result<()> {
        let conn = connection.clone();
        let queue = Queue::new(connection.dispatcher.jobs.clone());
        let thread = std::thread::Builder::new()
            .name("signalr-callbacks".into())
            .spawn(move || run(conn, queue))?;
        *connection.dispatcher.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread);
        Ok(())
    }

    /// Queues a job and wakes the callback thread; after teardown the job is dropped (it owns no
    /// user data).
    pub fn send(&self, job: Job) {
        self.jobs.send(job)
    }

    /// As [`Sender::send_call`] (for tests that play the receive loop).
    #[cfg(test)]
    pub fn send_call(&self, call: Call) {
        self.jobs.send_call(call)
    }

    /// A sender for hooks that must not hold the connection.
    pub fn sender(&self) -> Sender {
        Sender(self.jobs.clone())
    }

    /// Waits until the thread has ended (after [`Job::Teardown`]).
    pub fn join(&self) {
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// The callback thread's end of the queue: the jobs it took, in order, which it can look ahead in
/// (a batch must see the next job to know whether it belongs to it).
pub(crate) struct Queue {
    jobs: Arc<Jobs>,
    taken: VecDeque<Job>,
    /// Calls taken with `taken`: they leave the backlog once run, at the next take.
    taken_calls: usize,
}

impl Queue {
    fn new(jobs: Arc<Jobs>) -> Queue {
        Queue { jobs, taken: VecDeque::new(), taken_calls: 0 }
    }

    /// The next job, waiting for one.
    fn recv(&mut self) -> Job {
        if self.taken.is_empty() {
            self.take(true);
        }
        self.taken.pop_front().expect("take(true) returns with jobs")
    }

    /// Takes every queued job (`taken` is empty: what was taken before has run). With `wait`,
    /// waits until there is one.
    fn take(&mut self, wait: bool) {
        let Queue { jobs, taken, taken_calls } = self;
        let mut state = jobs.lock();
        // Only a release from a full backlog can free a waiter (it waits while full, checked
        // under this lock).
        let was_full = state.calls >= BACKLOG_LIMIT;
        state.calls -= std::mem::take(taken_calls);
        if was_full && state.calls < BACKLOG_LIMIT {
            jobs.room.notify_all();
        }
        while wait && state.jobs.is_empty() {
            state.idle = true;
            state = jobs.ready.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        state.idle = false;
        std::mem::swap(taken, &mut state.jobs);
        *taken_calls = std::mem::take(&mut state.new_calls);
    }

    /// The next job if it is a call already queued that `belongs` accepts; never waits. Any
    /// other job stays first in line.
    pub fn next_call_if(&mut self, belongs: impl FnOnce(&Call) -> bool) -> Option<Call> {
        if self.taken.is_empty() {
            self.take(false);
        }
        match self.taken.front() {
            Some(Job::Call(call)) if belongs(call) => match self.taken.pop_front() {
                Some(Job::Call(call)) => Some(call),
                _ => unreachable!("the front was a call"),
            },
            _ => None,
        }
    }

    /// Teardown: no job is taken any more; what is still queued is dropped, and producers never
    /// wait again.
    fn close(&mut self) {
        let dropped = {
            let mut state = self.jobs.lock();
            state.closed = true;
            self.jobs.room.notify_all();
            std::mem::take(&mut state.jobs)
        };
        drop(dropped);
        self.taken.clear();
    }
}

fn run(conn: Arc<Connection>, mut queue: Queue) {
    // Everything on this thread is "inside a callback", user data releases included: so
    // `signalr_connection_free` called here never waits for this very thread.
    let _scope = CallbackScope::enter();
    loop {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match queue.recv() {
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
        match outcome {
            Ok(true) => {}
            Ok(false) => break,
            Err(payload) => tracing::error!("{}", super::boundary::panic_message(&*payload)),
        }
    }
    queue.close();
    conn.teardown();
}

#[cfg(test)]
impl Dispatcher {
    /// The callback thread's end, for tests that play the callback thread themselves.
    pub(crate) fn test_queue(&self) -> Queue {
        Queue::new(self.jobs.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Format;
    use crate::Payload;
    use std::sync::mpsc;
    use std::time::Duration;

    fn call(reg: u64) -> Call {
        Call { reg, args: CallArgs::new(&Payload::empty_array(Format::Json)), responder: None }
    }

    fn backlog(d: &Dispatcher) -> usize {
        d.jobs.lock().calls
    }

    #[test]
    fn the_queue_hands_out_only_queued_calls_that_belong_and_keeps_the_rest_in_order() {
        let d = Dispatcher::new();
        let mut queue = d.test_queue();
        d.send_call(call(1));
        d.send_call(call(1));
        d.send_call(call(2));
        d.send(Job::Teardown);
        d.send_call(call(1));
        assert!(matches!(queue.recv(), Job::Call(Call { reg: 1, .. })));
        assert_eq!(queue.next_call_if(|c| c.reg == 1).map(|c| c.reg), Some(1));
        // The next one is for another registration: it stays first in line.
        assert!(queue.next_call_if(|c| c.reg == 1).is_none());
        assert!(queue.next_call_if(|c| c.reg == 1).is_none());
        assert!(matches!(queue.recv(), Job::Call(Call { reg: 2, .. })));
        assert!(queue.next_call_if(|_| true).is_none(), "a job that is not a call ends a batch");
        assert!(matches!(queue.recv(), Job::Teardown));
        assert!(queue.next_call_if(|c| c.reg == 1).is_some());
        assert_eq!(backlog(&d), 4, "calls taken count until the next take");
        assert!(queue.next_call_if(|_| true).is_none(), "never waits for more");
        assert_eq!(backlog(&d), 0, "taking again releases what ran");
    }

    #[test]
    fn calls_wake_the_waiting_callback_thread_once_the_receive_loop_caught_up() {
        let d = Arc::new(Dispatcher::new());
        let mut queue = d.test_queue();
        let (tx, rx) = mpsc::channel();
        let consumer = std::thread::spawn(move || loop {
            match queue.recv() {
                Job::Teardown => break,
                _ => tx.send(()).unwrap(),
            }
        });
        // Wait until the consumer sleeps, then queue calls without catching up.
        while !d.jobs.lock().idle {
            std::thread::yield_now();
        }
        d.send_call(call(1));
        d.send_call(call(1));
        // Not woken yet. (A wrong implementation is caught whenever the consumer would have run
        // within the wait, so this can miss a bug but never fails a right one.)
        assert!(rx.recv_timeout(Duration::from_millis(20)).is_err(), "a call alone must not wake the callback thread");
        d.sender().caught_up();
        for _ in 0..2 {
            rx.recv_timeout(Duration::from_secs(60)).expect("caught up: both calls run");
        }
        // A long burst wakes it on its own.
        while !d.jobs.lock().idle {
            std::thread::yield_now();
        }
        for _ in 0..WAKE_EVERY {
            d.send_call(call(1));
        }
        for _ in 0..WAKE_EVERY {
            rx.recv_timeout(Duration::from_secs(60)).expect("a burst of WAKE_EVERY calls wakes the thread");
        }
        // Any other job wakes it at once.
        d.send(Job::Callback(Box::new(|_| {})));
        rx.recv_timeout(Duration::from_secs(60)).expect("a callback job wakes the thread");
        d.send(Job::Teardown);
        consumer.join().unwrap();
    }

    #[test]
    fn the_backlog_makes_a_producer_wait_until_there_is_room_or_it_closes() {
        let d = Arc::new(Dispatcher::new());
        let mut queue = d.test_queue();
        for _ in 0..BACKLOG_LIMIT {
            d.send_call(call(1));
        }
        let (tx, rx) = mpsc::channel();
        let producer = {
            let d = d.clone();
            std::thread::spawn(move || {
                d.send_call(call(1));
                tx.send(()).unwrap();
                for _ in 0..BACKLOG_LIMIT + 1 {
                    d.send_call(call(1)); // full again: waits until closed
                }
                tx.send(()).unwrap();
            })
        };
        // Still full: the producer cannot have passed. (As above: can miss a bug, never fails a
        // right one.)
        std::thread::sleep(Duration::from_millis(20));
        assert!(rx.try_recv().is_err(), "send_call must wait while the backlog is full");
        for _ in 0..BACKLOG_LIMIT {
            queue.recv();
        }
        assert!(rx.try_recv().is_err(), "taken calls leave the backlog only at the next take");
        queue.next_call_if(|_| false);
        rx.recv_timeout(Duration::from_secs(60)).expect("room made: the producer goes on");
        queue.close();
        rx.recv_timeout(Duration::from_secs(60)).expect("closed: the producer goes on");
        producer.join().unwrap();
        assert!(d.jobs.lock().jobs.is_empty(), "calls after teardown are dropped");
    }
}
