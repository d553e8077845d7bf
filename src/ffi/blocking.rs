//! Waiting on the calling thread: what the `_blocking` functions and `signalr_connection_free`
//! use to run a future of the library runtime to its end from a thread of the program.
//!
//! The calling thread polls the future itself and sleeps between its wakes. Before it sleeps it
//! spins for a short while: an answer from a nearby server often comes within tens of
//! microseconds, and a thread that sleeps must then be woken through the kernel (a futex wake
//! from the runtime worker that read the answer, and the scheduler's wake-up latency), which
//! costs more than the answer's whole trip. Spinning is bounded, and it backs off on a thread
//! whose waits outlast the spin, so that slow answers do not cost CPU.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use super::dispatcher::in_callback;
use super::result::{Failure, FfiResult};
use super::signalr_result;

/// How long a waiting thread spins before it sleeps.
const SPIN: Duration = Duration::from_micros(100);
/// After waits that outlasted their spin, this many waits at most go straight to sleep.
const MAX_SPIN_SKIPS: u32 = 64;

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
                if waiter.spin_until(end) {
                    continue;
                }
                waiter.record(false);
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
        let spin = spinning_helps() && backoff.should_spin();
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

    /// Spins until the waker is called (true: poll again) or `end` (false: sleep). A wake that
    /// came before this call counts too; one left over from an earlier wait only costs a poll.
    fn spin_until(&self, end: Instant) -> bool {
        let mut rounds = 0u32;
        loop {
            if self.woken.swap(false, Ordering::Acquire) {
                return true;
            }
            // Reading the clock only every so many rounds keeps the loop on the flag.
            rounds = rounds.wrapping_add(1);
            if rounds % 64 == 0 && Instant::now() >= end {
                return false;
            }
            std::hint::spin_loop();
        }
    }
}

/// With a single CPU the spinning thread would only hold off the thread that brings the answer.
fn spinning_helps() -> bool {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from)) > 1
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

/// Whether a thread's next wait spins before it sleeps. A wait counts as a miss when its future
/// was not done by the end of the spin (wakes on the way do not count: one call may wake its
/// waiter several times). One miss costs nothing (an answer in the tail of a fast server's);
/// after the second in a row the next wait skips the spin, after each further one twice as many
/// plus one (up to `MAX_SPIN_SKIPS`), and one wait done within its spin starts over. A thread
/// whose answers always take longer than the spin therefore spins on about one wait in 65.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct SpinBackoff {
    /// Waits in a row that were not done within their spin.
    misses: u32,
    /// Waits still to skip.
    skip: u32,
}

impl SpinBackoff {
    fn should_spin(&mut self) -> bool {
        if self.skip == 0 {
            return true;
        }
        self.skip -= 1;
        false
    }

    fn record(&mut self, done_in_spin: bool) {
        self.misses = if done_in_spin { 0 } else { self.misses.saturating_add(1) };
        self.skip = match self.misses {
            0 | 1 => 0,
            misses => (1u32 << (misses - 1).min(31)).saturating_sub(1).min(MAX_SPIN_SKIPS),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spins(backoff: &mut SpinBackoff, waits: usize) -> Vec<bool> {
        (0..waits).map(|_| backoff.should_spin()).collect()
    }

    #[test]
    fn waits_done_within_the_spin_keep_spinning() {
        let mut backoff = SpinBackoff::default();
        for _ in 0..10 {
            assert!(backoff.should_spin());
            backoff.record(true);
        }
        assert_eq!(backoff, SpinBackoff::default());
    }

    #[test]
    fn misses_in_a_row_skip_twice_as_many_waits_each_time_up_to_the_limit() {
        let mut backoff = SpinBackoff::default();
        let mut skipped = Vec::new();
        for _ in 0..10 {
            assert!(backoff.should_spin());
            backoff.record(false);
            skipped.push(spins(&mut backoff, 200).iter().take_while(|spin| !**spin).count());
        }
        assert_eq!(skipped, [0, 1, 3, 7, 15, 31, 63, 64, 64, 64]);
    }

    #[test]
    fn one_wake_after_misses_starts_over() {
        let mut backoff = SpinBackoff::default();
        backoff.record(false);
        backoff.record(false);
        backoff.record(false);
        assert_eq!(spins(&mut backoff, 4), [false, false, false, true]);
        backoff.record(true);
        backoff.record(false);
        assert_eq!(spins(&mut backoff, 3), [true, true, true]);
    }

    #[test]
    fn a_wake_raises_the_flag_the_spin_looks_at() {
        let waiter_woken = WAITER.with(|waiter| {
            waiter.woken.store(false, Ordering::Relaxed);
            waiter.waker.wake_by_ref();
            waiter.woken.swap(false, Ordering::Acquire)
        });
        assert!(waiter_woken);
        // A wake from another thread ends this thread's spin at once.
        let waker = WAITER.with(|waiter| waiter.waker.clone());
        std::thread::spawn(move || waker.wake()).join().unwrap();
        WAITER.with(|waiter| {
            assert!(waiter.spin_until(Instant::now() + Duration::from_secs(10)));
            assert!(!waiter.spin_until(Instant::now()), "the wake was used up");
        });
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
        let backoff = WAITER.with(|waiter| waiter.backoff.get());
        let expected = if spinning_helps() { SpinBackoff { misses: 2, skip: 1 } } else { SpinBackoff::default() };
        assert_eq!(backoff, expected);
    }
}
