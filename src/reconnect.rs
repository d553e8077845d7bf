//! Automatic reconnect policy: which delay before the next attempt, or stop.

use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;

/// What a policy is told before each reconnect attempt.
#[derive(Debug, Clone)]
pub struct RetryContext {
    /// Failed attempts so far: 0 before the first attempt.
    pub previous_retry_count: u64,
    /// Time since reconnecting began: zero before the first attempt.
    pub elapsed: Duration,
    /// Why the connection was lost (first call) or why the last attempt failed (later calls).
    pub retry_reason: Error,
}

/// Decides the delay before the next reconnect attempt; `None` stops reconnecting.
pub trait ReconnectPolicy: Send + Sync {
    fn next_retry_delay(&self, context: &RetryContext) -> Option<Duration>;

    /// What the reconnect loop awaits: by default the answer of
    /// [`next_retry_delay`](Self::next_retry_delay). A policy whose answer is computed elsewhere
    /// (the C API runs its callback on the connection's callback thread) overrides it.
    fn next_retry_delay_async<'a>(
        &'a self,
        context: &'a RetryContext,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Duration>> + Send + 'a>> {
        Box::pin(std::future::ready(self.next_retry_delay(context)))
    }
}

/// The official clients' default delays: 0, 2, 10 and 30 seconds, then stop.
pub const DEFAULT_RETRY_DELAYS_MS: [u64; 4] = [0, 2_000, 10_000, 30_000];

/// "These delays, in order, then stop."
#[derive(Debug, Clone)]
pub struct DelayListPolicy {
    delays: Vec<Duration>,
}

impl DelayListPolicy {
    pub fn new(delays: Vec<Duration>) -> Self {
        DelayListPolicy { delays }
    }

    pub fn default_delays() -> Self {
        Self::new(DEFAULT_RETRY_DELAYS_MS.iter().map(|&ms| Duration::from_millis(ms)).collect())
    }
}

impl ReconnectPolicy for DelayListPolicy {
    fn next_retry_delay(&self, context: &RetryContext) -> Option<Duration> {
        usize::try_from(context.previous_retry_count).ok().and_then(|i| self.delays.get(i).copied())
    }
}

/// A closure as a policy.
impl<F> ReconnectPolicy for F
where
    F: Fn(&RetryContext) -> Option<Duration> + Send + Sync,
{
    fn next_retry_delay(&self, context: &RetryContext) -> Option<Duration> {
        self(context)
    }
}

/// Shared handle to a policy, as the builder stores it.
pub type SharedReconnectPolicy = Arc<dyn ReconnectPolicy>;

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(n: u64) -> RetryContext {
        RetryContext {
            previous_retry_count: n,
            elapsed: Duration::ZERO,
            retry_reason: Error::Transport("x".into()),
        }
    }

    #[test]
    fn default_policy_gives_the_four_official_delays_then_stops() {
        let p = DelayListPolicy::default_delays();
        let got: Vec<_> = (0..5).map(|n| p.next_retry_delay(&ctx(n))).collect();
        assert_eq!(
            got,
            vec![
                Some(Duration::ZERO),
                Some(Duration::from_secs(2)),
                Some(Duration::from_secs(10)),
                Some(Duration::from_secs(30)),
                None
            ]
        );
    }

    #[test]
    fn empty_list_never_retries_and_closures_are_policies() {
        assert_eq!(DelayListPolicy::new(vec![]).next_retry_delay(&ctx(0)), None);
        let p = |c: &RetryContext| (c.previous_retry_count < 2).then_some(Duration::from_millis(5));
        assert_eq!(p.next_retry_delay(&ctx(1)), Some(Duration::from_millis(5)));
        assert_eq!(p.next_retry_delay(&ctx(2)), None);
    }
}
