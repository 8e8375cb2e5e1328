//! Retry policies for activity calls. The waits between attempts are durable timers.

use std::time::Duration;

use crate::durabletask::failure::FailureDetails;

/// How an activity call is retried after a failure.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included. At least 1.
    pub max_attempts: u32,
    /// The wait before the second attempt.
    pub first_interval: Duration,
    /// Each later wait is the previous one times this.
    pub backoff_coefficient: f64,
    /// No single wait is longer than this.
    pub max_interval: Option<Duration>,
    /// No retry starts once this much orchestration time has passed since the first attempt.
    pub timeout: Option<Duration>,
    /// Retries only failures for which this returns true; failures marked non-retriable are never
    /// retried.
    pub retry_if: Option<fn(&FailureDetails) -> bool>,
}

impl RetryPolicy {
    /// A policy of `max_attempts` attempts, waiting `first_interval` and doubling each time.
    pub fn new(max_attempts: u32, first_interval: Duration) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            first_interval,
            backoff_coefficient: 2.0,
            max_interval: None,
            timeout: None,
            retry_if: None,
        }
    }

    /// The wait before attempt `failed_attempt + 1`, or `None` when the policy gives up.
    pub fn delay_before_retry(
        &self,
        failed_attempt: u32,
        elapsed: Duration,
        failure: &FailureDetails,
    ) -> Option<Duration> {
        if failed_attempt >= self.max_attempts || failure.non_retriable {
            return None;
        }
        if let Some(retry_if) = self.retry_if
            && !retry_if(failure)
        {
            return None;
        }

        let factor = self
            .backoff_coefficient
            .max(1.0)
            .powi(failed_attempt.saturating_sub(1) as i32);
        let mut delay = self.first_interval.mul_f64(factor.min(1e9));
        if let Some(max) = self.max_interval {
            delay = delay.min(max);
        }
        if let Some(timeout) = self.timeout
            && elapsed + delay > timeout
        {
            return None;
        }
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure() -> FailureDetails {
        FailureDetails::new("Flaky", "try again")
    }

    #[test]
    fn delays_grow_and_are_capped() {
        let mut policy = RetryPolicy::new(5, Duration::from_secs(1));
        policy.max_interval = Some(Duration::from_secs(3));
        let delays: Vec<_> = (1..5)
            .map(|n| policy.delay_before_retry(n, Duration::ZERO, &failure()))
            .collect();
        assert_eq!(
            delays,
            [1, 2, 3, 3].map(|s| Some(Duration::from_secs(s))).to_vec()
        );
        assert_eq!(
            policy.delay_before_retry(5, Duration::ZERO, &failure()),
            None
        );
    }

    #[test]
    fn gives_up_on_non_retriable_or_timeout_or_filter() {
        let mut policy = RetryPolicy::new(5, Duration::from_secs(10));
        assert_eq!(
            policy.delay_before_retry(1, Duration::ZERO, &failure().non_retriable()),
            None
        );

        policy.timeout = Some(Duration::from_secs(15));
        assert_eq!(
            policy.delay_before_retry(1, Duration::from_secs(6), &failure()),
            None
        );

        policy.timeout = None;
        policy.retry_if = Some(|failure| failure.error_type == "Other");
        assert_eq!(
            policy.delay_before_retry(1, Duration::ZERO, &failure()),
            None
        );
    }
}
