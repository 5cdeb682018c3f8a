//! One token bucket: `burst` tokens, refilled at `per_second`. Time is passed in, so
//! the arithmetic is tested without sleeping.

use std::time::{Duration, Instant};

/// How fast a bucket refills and how much it holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// Most tokens held: the largest burst served at once after a quiet spell.
    pub burst: f64,
}

impl Rate {
    /// `per_second` with a burst of `burst_seconds` of it; `None` when `per_second` is 0
    /// (the limit is off).
    pub fn per_second(per_second: u32, burst_seconds: u32) -> Option<Rate> {
        (per_second > 0).then(|| Rate {
            per_second: f64::from(per_second),
            burst: f64::from(per_second) * f64::from(burst_seconds.max(1)),
        })
    }

    /// Time for an empty bucket to fill up: after that, a bucket equals a new one.
    pub fn fill_time(&self) -> Duration {
        Duration::from_secs_f64(self.burst / self.per_second)
    }
}

/// A bucket's state: tokens left at `updated`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    /// A full bucket.
    pub(crate) fn full(rate: &Rate, now: Instant) -> Self {
        Self {
            tokens: rate.burst,
            updated: now,
        }
    }

    fn refill(&mut self, rate: &Rate, now: Instant) {
        // An `Instant` earlier than the last update (callers race to the lock) adds nothing.
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(rate.burst);
        if now > self.updated {
            self.updated = now;
        }
    }

    /// Takes one token, or says how long until one is there.
    pub(crate) fn take(&mut self, rate: &Rate, now: Instant) -> Result<(), Duration> {
        self.peek(rate, now)?;
        self.tokens -= 1.0;
        Ok(())
    }

    /// Whether a token is there, without taking it.
    pub(crate) fn peek(&mut self, rate: &Rate, now: Instant) -> Result<(), Duration> {
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / rate.per_second,
            ))
        }
    }

    /// Takes one token after the fact (the request already ran): the bucket may run
    /// dry but never into debt, so a burst of concurrent failures costs its sender at
    /// most one fill time.
    pub(crate) fn charge(&mut self, rate: &Rate, now: Instant) {
        self.refill(rate, now);
        self.tokens = (self.tokens - 1.0).max(0.0);
    }

    /// Whether the bucket is full at `now`: it can then be forgotten, a new one would
    /// be the same.
    pub(crate) fn is_full(&self, rate: &Rate, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens + elapsed * rate.per_second >= rate.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_second: u32, burst_seconds: u32) -> Rate {
        Rate::per_second(per_second, burst_seconds).unwrap()
    }

    #[test]
    fn zero_turns_the_limit_off() {
        assert_eq!(Rate::per_second(0, 5), None);
    }

    #[test]
    fn a_full_bucket_serves_its_burst_then_refills_at_the_rate() {
        let r = rate(10, 5);
        let t0 = Instant::now();
        let mut b = Bucket::full(&r, t0);
        for _ in 0..50 {
            assert!(b.take(&r, t0).is_ok());
        }
        let wait = b.take(&r, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        // 0.1 s later exactly one more token.
        let t1 = t0 + Duration::from_millis(100);
        assert!(b.take(&r, t1).is_ok());
        assert!(b.take(&r, t1).is_err());
        // After the fill time it is full again, and no fuller.
        let t2 = t1 + r.fill_time();
        assert!(b.is_full(&r, t2));
        for _ in 0..50 {
            assert!(b.take(&r, t2).is_ok());
        }
        assert!(b.take(&r, t2).is_err());
    }

    #[test]
    fn peek_does_not_take_and_charge_never_goes_into_debt() {
        let r = rate(1, 2);
        let t0 = Instant::now();
        let mut b = Bucket::full(&r, t0);
        for _ in 0..10 {
            assert!(b.peek(&r, t0).is_ok());
        }
        for _ in 0..10 {
            b.charge(&r, t0);
        }
        assert!(b.peek(&r, t0).is_err());
        // Ten charges on two tokens: one second restores one token, not -8 + 1.
        assert!(b.peek(&r, t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn an_earlier_instant_adds_nothing() {
        let r = rate(1, 1);
        let t1 = Instant::now() + Duration::from_secs(10);
        let mut b = Bucket::full(&r, t1);
        assert!(b.take(&r, t1).is_ok());
        assert!(b.take(&r, t1 - Duration::from_secs(5)).is_err());
        assert!(b.take(&r, t1).is_err());
    }
}
