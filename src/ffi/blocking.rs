//! Waiting on the calling thread: what the `_blocking` functions and `signalr_connection_free`
//! use to run a future of the library runtime to its end from a thread of the program.
//!
//! The calling thread polls the future itself and sleeps between its wakes, after a short spin
//! (see `spin`): a blocking call's answer from a nearby server often comes within tens of
//! microseconds.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use super::dispatcher::in_callback;
use super::result::{Failure, FfiResult};
use super::signalr_result;
use super::spin::{spin_until, Spin, SpinBackoff, SPIN};

/// Runs `future` on the library runtime from the calling thread, up to `timeout_ms` (0 = no
/// limit). Refused inside callbacks and on runtime threads, where waiting would deadlock.
pub(crate) fn block_on<T>(timeout_ms: u64, future: impl Future<Output = FfiResult<T>>) -> FfiResult<T> {
    may_block()?;
    let limit = (timeout_ms != 0).then(|| Duration::from_millis(timeout_ms));
    wait_on(limit, future).unwrap_or_else(|| {
        Err(Failure::new(signalr_result::Timeout, format!("the operation did not complete within {timeout_ms} ms")))
    })
}

/// Refuses to wait inside callbacks and on runtime threads, where waiting would deadlock. Checked
/// first by every `_blocking` function, so that the answer does not depend on the state.
pub(crate) fn may_block() -> FfiResult {
    if waiting_would_deadlock() {
        return Err(Failure::new(
            signalr_result::WouldDeadlock,
            "a _blocking function was called from inside a library callback; use the asynchronous variant",
        ));
    }
    Ok(())
}

/// True inside a library callback (its work finishes only when the callback returns) and on a
/// runtime thread (the runtime cannot run while its thread waits).
pub(crate) fn waiting_would_deadlock() -> bool {
    in_callback() || tokio::runtime::Handle::try_current().is_ok()
}

/// Polls `future` on the calling thread, inside the library runtime's context, waiting between
/// its wakes for up to `limit` (None = no limit); None when the limit passed first. The limit is
/// the park's timeout: a tokio timer registered from outside the runtime would wake a runtime
/// worker on every call (an eventfd write and an extra epoll round per blocking invoke).
/// The caller makes sure that waiting cannot deadlock (`may_block`).
pub(crate) fn wait_on<F: Future>(limit: Option<Duration>, future: F) -> Option<F::Output> {
    let _runtime = crate::runtime::global().enter();
    let deadline = limit.map(|limit| Instant::now() + limit);
    WAITER.with(|waiter| {
        let mut cx = Context::from_waker(&waiter.waker);
        let mut future = std::pin::pin!(future);
        let mut spin = waiter.spin_window(deadline);
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                if spin.is_some() {
                    waiter.record(true);
                }
                return Some(output);
            }
            if let Some(end) = spin {
                match spin_until(&waiter.woken, end) {
                    Spin::Raised => continue,
                    Spin::Over => waiter.record(false),
                    Spin::NoSlot => {}
                }
                spin = None;
            }
            match deadline.map(|deadline| deadline.saturating_duration_since(Instant::now())) {
                None => std::thread::park(),
                Some(Duration::ZERO) => return None,
                Some(left) => std::thread::park_timeout(left),
            }
        }
    })
}

/// One thread's means of waiting: its waker, the flag that waker raises, and its spin backoff.
struct Waiter {
    waker: Waker,
    woken: Arc<AtomicBool>,
    backoff: Cell<SpinBackoff>,
}

thread_local! {
    static WAITER: Waiter = {
        let woken = Arc::new(AtomicBool::new(false));
        let waker = Waker::from(Arc::new(ThreadWaker { thread: std::thread::current(), woken: woken.clone() }));
        Waiter { waker, woken, backoff: Cell::new(SpinBackoff::default()) }
    };
}

impl Waiter {
    /// When a wait that starts now stops spinning, or None when it does not spin at all.
    fn spin_window(&self, deadline: Option<Instant>) -> Option<Instant> {
        let mut backoff = self.backoff.get();
        let spin = backoff.should_spin();
        self.backoff.set(backoff);
        let end = Instant::now() + SPIN;
        spin.then(|| deadline.map_or(end, |deadline| deadline.min(end)))
    }

    /// Whether the wait was done within its spin window.
    fn record(&self, done_in_spin: bool) {
        let mut backoff = self.backoff.get();
        backoff.record(done_in_spin);
        self.backoff.set(backoff);
    }
}

/// Raises the waiting thread's flag and wakes it (a park may also end spuriously: `wait_on`
/// polls again).
struct ThreadWaker {
    thread: std::thread::Thread,
    woken: Arc<AtomicBool>,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        // Unparking a thread that is not asleep is an atomic store, no system call.
        self.thread.unpark();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_from_any_thread_raises_the_flag_the_spin_looks_at() {
        WAITER.with(|waiter| {
            waiter.woken.store(false, Ordering::Relaxed);
            waiter.waker.wake_by_ref();
            assert!(waiter.woken.swap(false, Ordering::Acquire), "woken by this thread");
        });
        let waker = WAITER.with(|waiter| waiter.waker.clone());
        std::thread::spawn(move || waker.wake()).join().unwrap();
        WAITER.with(|waiter| assert!(waiter.woken.swap(false, Ordering::Acquire), "woken by another thread"));
    }

    /// Wakes itself on its first poll, then waits for `answer`.
    struct EarlyWakeThenAnswer {
        first: bool,
        answer: tokio::sync::oneshot::Receiver<u32>,
    }

    impl Future for EarlyWakeThenAnswer {
        type Output = u32;
        fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
            if std::mem::take(&mut self.first) {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            std::pin::Pin::new(&mut self.answer).poll(cx).map(Result::unwrap)
        }
    }

    #[test]
    fn waits_count_as_misses_when_their_answers_come_after_the_spin_even_if_woken_before() {
        // Each wait is woken at once, then answered long after its spin. Two such waits in a row
        // are two misses. A spin slot may be busy (another test spinning): then a wait does not
        // spin and counts for nothing, so the pair is tried again.
        let two_misses = (0..20).any(|_| {
            WAITER.with(|waiter| waiter.backoff.set(SpinBackoff::default()));
            for _ in 0..2 {
                let (send, answer) = tokio::sync::oneshot::channel();
                let later = std::thread::spawn(move || {
                    std::thread::sleep(SPIN * 50);
                    send.send(7).unwrap();
                });
                let got = wait_on(Some(Duration::from_secs(30)), EarlyWakeThenAnswer { first: true, answer });
                later.join().unwrap();
                assert_eq!(got, Some(7));
            }
            WAITER.with(|waiter| waiter.backoff.get().misses()) == 2
        });
        let can_spin = std::thread::available_parallelism().map_or(1, usize::from) > 1;
        assert_eq!(two_misses, can_spin);
    }
}
