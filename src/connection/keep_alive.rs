//! A timer that fires after a period of inactivity: the server timeout (nothing received for the
//! interval, K-4). The keep-alive ping (nothing sent, K-2) works the same way inside `writer`,
//! where the last-write time is shared with the callers that write inline.
//!
//! Activity only stores an `Instant`; the timer is re-armed lazily when it fires early, so the hot
//! receive path never touches the timer wheel.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

pub(crate) struct IdleTimer {
    interval: Duration,
    last_activity: Instant,
    sleep: Pin<Box<Sleep>>,
}

impl IdleTimer {
    pub fn new(interval: Duration) -> IdleTimer {
        let now = Instant::now();
        IdleTimer { interval, last_activity: now, sleep: Box::pin(tokio::time::sleep_until(now + interval)) }
    }

    /// Records activity: the timer now fires `interval` after this moment.
    pub fn touch(&mut self) {
        self.last_activity = Instant::now();
    }

    /// Resolves once `interval` has passed without activity. Cancel-safe.
    pub async fn expired(&mut self) {
        loop {
            let deadline = self.last_activity + self.interval;
            if Instant::now() >= deadline {
                return;
            }
            if self.sleep.deadline() != deadline {
                self.sleep.as_mut().reset(deadline);
            }
            self.sleep.as_mut().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn fires_only_after_a_full_idle_interval() {
        let start = Instant::now();
        let mut t = IdleTimer::new(Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(6)).await;
        t.touch();
        t.expired().await;
        // Paused clock: time only moves as the timer needs, so this is exact.
        assert_eq!(Instant::now() - start, Duration::from_secs(16));
    }
}
