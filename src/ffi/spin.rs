//! Spinning before sleeping, for a program's thread waiting in a `_blocking` call (see
//! `blocking`). The connections' callback threads do not spin: there the spins mostly missed and
//! cost receive throughput.
//!
//! When what a thread waits for comes within tens of microseconds (an answer from a nearby
//! server), sleeping is the expensive part: the thread that brings
//! it must wake the sleeper through the kernel, and the sleeper's CPU must come out of idle
//! (on a virtual machine the larger cost). A thread that spins a short while first sees it at
//! once. Spinning is bounded three ways: by `SPIN` per wait, by a backoff per thread for waits
//! that outlast the spin, and by a process-wide cap of one spinning thread per CPU beyond the
//! first, so that spinners never take every CPU from the threads that do the work.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a waiting thread spins before it sleeps.
pub(crate) const SPIN: Duration = Duration::from_micros(100);
/// After waits that outlasted their spin, this many waits at most go straight to sleep.
const MAX_SPIN_SKIPS: u32 = 64;

/// How a spin ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spin {
    /// The flag was raised (and is lowered again).
    Raised,
    /// `end` came first.
    Over,
    /// Every spin slot was taken: nothing was done.
    NoSlot,
}

/// Spins until `flag` is raised or `end`, if one of the process's spin slots is free.
pub(crate) fn spin_until(flag: &AtomicBool, end: Instant) -> Spin {
    static SLOTS: OnceLock<SpinSlots> = OnceLock::new();
    // One per CPU beyond the first: with a single CPU the spinning thread would only hold off
    // the thread that brings what it waits for.
    let slots = SLOTS.get_or_init(|| SpinSlots::new(std::thread::available_parallelism().map_or(1, usize::from) - 1));
    slots.spin_until(flag, end)
}

/// A cap on the threads that spin at once.
struct SpinSlots {
    spinning: AtomicUsize,
    limit: usize,
}

impl SpinSlots {
    fn new(limit: usize) -> SpinSlots {
        SpinSlots { spinning: AtomicUsize::new(0), limit }
    }

    fn spin_until(&self, flag: &AtomicBool, end: Instant) -> Spin {
        if self.spinning.fetch_update(Ordering::Acquire, Ordering::Relaxed, |n| (n < self.limit).then_some(n + 1)).is_err() {
            return Spin::NoSlot;
        }
        let mut rounds = 0u32;
        let spin = loop {
            if flag.swap(false, Ordering::Acquire) {
                break Spin::Raised;
            }
            // Reading the clock only every so many rounds keeps the loop on the flag.
            rounds = rounds.wrapping_add(1);
            if rounds % 64 == 0 && Instant::now() >= end {
                break Spin::Over;
            }
            std::hint::spin_loop();
        };
        self.spinning.fetch_sub(1, Ordering::Release);
        spin
    }
}

/// Whether a thread's next wait spins before it sleeps. A wait counts as a miss when what it
/// waited for had not come by the end of its spin (a wait may be woken several times on the
/// way: only its end counts). One miss costs nothing (the tail of a fast peer); after the second
/// in a row the next wait skips the spin, after each further one twice as many plus one (up to
/// `MAX_SPIN_SKIPS`), and one wait done within its spin starts over. A thread whose waits always
/// take longer than the spin therefore spins on about one wait in 65.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SpinBackoff {
    /// Waits in a row that were not done within their spin.
    misses: u32,
    /// Waits still to skip.
    skip: u32,
}

impl SpinBackoff {
    pub fn should_spin(&mut self) -> bool {
        if self.skip == 0 {
            return true;
        }
        self.skip -= 1;
        false
    }

    pub fn record(&mut self, done_in_spin: bool) {
        self.misses = if done_in_spin { 0 } else { self.misses.saturating_add(1) };
        self.skip = match self.misses {
            0 | 1 => 0,
            misses => (1u32 << (misses - 1).min(31)).saturating_sub(1).min(MAX_SPIN_SKIPS),
        };
    }

    #[cfg(test)]
    pub fn misses(&self) -> u32 {
        self.misses
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
    fn one_wait_done_within_its_spin_after_misses_starts_over() {
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
    fn a_raised_flag_ends_the_spin_and_is_lowered() {
        let slots = SpinSlots::new(1);
        let flag = AtomicBool::new(false);
        // Raised by another thread before the spin starts: seen at once.
        std::thread::scope(|s| s.spawn(|| flag.store(true, Ordering::Release)).join().unwrap());
        assert_eq!(slots.spin_until(&flag, Instant::now() + Duration::from_secs(10)), Spin::Raised);
        assert!(!flag.load(Ordering::Acquire), "lowered");
        assert_eq!(slots.spin_until(&flag, Instant::now()), Spin::Over);
    }

    #[test]
    fn no_more_threads_spin_at_once_than_there_are_slots() {
        let slots = SpinSlots::new(1);
        let raised = AtomicBool::new(true);
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            // One thread spins until told to stop; meanwhile a second spin finds no slot.
            let spinner = s.spawn(|| slots.spin_until(&stop, Instant::now() + Duration::from_secs(60)));
            while slots.spinning.load(Ordering::Acquire) == 0 {
                std::hint::spin_loop();
            }
            assert_eq!(slots.spin_until(&raised, Instant::now() + Duration::from_secs(10)), Spin::NoSlot);
            assert!(raised.load(Ordering::Acquire), "a spin that did not start leaves the flag alone");
            stop.store(true, Ordering::Release);
            assert_eq!(spinner.join().unwrap(), Spin::Raised);
        });
        assert_eq!(slots.spin_until(&raised, Instant::now()), Spin::Raised, "the slot is free again");
        assert_eq!(SpinSlots::new(0).spin_until(&AtomicBool::new(true), Instant::now()), Spin::NoSlot);
    }
}
