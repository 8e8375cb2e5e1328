//! Full-jitter exponential backoff: a random delay in `[0, min(cap, base * 2^attempt))`.

use std::fmt;
use std::time::Duration;

/// Delays between reconnection attempts. Spreading them at random keeps many workers from
/// reconnecting in step after a backend restart.
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
    random: Box<dyn FnMut() -> f64 + Send>,
}

impl Backoff {
    /// Backoff from `base` doubling up to `cap`, with a thread-local random source.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self::with_random(base, cap, rand::random::<f64>)
    }

    /// The same with an injected source of numbers in `[0, 1)`, for deterministic tests.
    pub fn with_random(
        base: Duration,
        cap: Duration,
        random: impl FnMut() -> f64 + Send + 'static,
    ) -> Self {
        Self {
            base,
            cap,
            attempt: 0,
            random: Box::new(random),
        }
    }

    /// The delay before the next attempt; each call counts one more attempt.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        ceiling.mul_f64((self.random)().clamp(0.0, 1.0))
    }

    /// Starts again from `base`, after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// How many delays were handed out since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    fn ceiling(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.attempt.min(31));
        self.base.saturating_mul(factor).min(self.cap)
    }
}

impl fmt::Debug for Backoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backoff")
            .field("base", &self.base)
            .field("cap", &self.cap)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_secs(1);
    const CAP: Duration = Duration::from_secs(30);

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        let mut backoff = Backoff::with_random(BASE, CAP, || 1.0);
        let delays: Vec<u64> = (0..8).map(|_| backoff.next_delay().as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff.attempt(), 8);
    }

    #[test]
    fn jitter_scales_the_ceiling() {
        let mut values = [0.5, 0.25, 0.0].into_iter();
        let mut backoff = Backoff::with_random(BASE, CAP, move || values.next().unwrap());
        assert_eq!(backoff.next_delay(), Duration::from_millis(500));
        assert_eq!(backoff.next_delay(), Duration::from_millis(500));
        assert_eq!(backoff.next_delay(), Duration::ZERO);
    }

    #[test]
    fn reset_starts_from_the_base_again() {
        let mut backoff = Backoff::with_random(BASE, CAP, || 1.0);
        for _ in 0..5 {
            backoff.next_delay();
        }
        backoff.reset();
        assert_eq!(backoff.attempt(), 0);
        assert_eq!(backoff.next_delay(), BASE);
    }

    #[test]
    fn many_attempts_do_not_overflow() {
        let mut backoff = Backoff::with_random(BASE, CAP, || 1.0);
        for _ in 0..100 {
            assert!(backoff.next_delay() <= CAP);
        }
    }

    #[test]
    fn random_delays_stay_below_the_ceiling() {
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(80));
        for _ in 0..50 {
            assert!(backoff.next_delay() <= Duration::from_millis(80));
        }
    }
}
