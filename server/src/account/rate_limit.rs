//! Login rate limiting, per account and per client address: after too many
//! failures in a window, further attempts are refused until it passes,
//! whether or not the password would be right.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use crate::clock::SharedClock;

/// Limits for one kind of key.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Failures allowed in the window.
    pub failures: u32,
    /// The window.
    pub window: Duration,
}

/// Failures per account and per address, in this process. Several replicas
/// each keep their own counts, so the effective limit is per replica.
pub struct LoginLimiter {
    clock: SharedClock,
    per_account: Limit,
    per_address: Limit,
    failures: Mutex<HashMap<String, Vec<DateTime<Utc>>>>,
}

impl LoginLimiter {
    /// Default limits: 5 failures per account and 20 per address in 15 minutes.
    pub fn new(clock: SharedClock) -> Self {
        Self::with_limits(
            clock,
            Limit {
                failures: 5,
                window: Duration::minutes(15),
            },
            Limit {
                failures: 20,
                window: Duration::minutes(15),
            },
        )
    }

    /// Custom limits.
    pub fn with_limits(clock: SharedClock, per_account: Limit, per_address: Limit) -> Self {
        Self {
            clock,
            per_account,
            per_address,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(account: &str, address: Option<&str>) -> [Option<String>; 2] {
        [
            Some(format!("account:{}", account.trim().to_lowercase())),
            address.map(|a| format!("address:{a}")),
        ]
    }

    fn limit_for(&self, key: &str) -> Limit {
        if key.starts_with("account:") {
            self.per_account
        } else {
            self.per_address
        }
    }

    /// `Some(seconds to wait)` when an attempt must be refused now.
    pub fn check(&self, account: &str, address: Option<&str>) -> Option<u64> {
        let now = self.clock.now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = None::<i64>;
        for key in Self::keys(account, address).into_iter().flatten() {
            let limit = self.limit_for(&key);
            if let Some(times) = failures.get_mut(&key) {
                times.retain(|t| now - *t < limit.window);
                if times.len() as u32 >= limit.failures {
                    let oldest = times[times.len() - limit.failures as usize];
                    let seconds = (oldest + limit.window - now).num_seconds().max(1);
                    wait = Some(wait.map_or(seconds, |w| w.max(seconds)));
                }
            }
        }
        wait.map(|w| w.unsigned_abs())
    }

    /// Records a failed attempt.
    pub fn failed(&self, account: &str, address: Option<&str>) {
        let now = self.clock.now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() > 100_000 {
            // Bounded memory under a flood of distinct keys: forget the oldest state.
            failures.clear();
        }
        for key in Self::keys(account, address).into_iter().flatten() {
            failures.entry(key).or_default().push(now);
        }
    }

    /// Clears the account's failures after a successful login.
    pub fn succeeded(&self, account: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(&format!("account:{}", account.trim().to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::FakeClock;

    #[test]
    fn blocks_after_the_limit_and_releases_after_the_window() {
        let clock = FakeClock::new(Utc::now());
        let limiter = LoginLimiter::new(Arc::new(clock.clone()));
        for _ in 0..5 {
            assert_eq!(limiter.check("a@x", Some("1.2.3.4")), None);
            limiter.failed("a@x", Some("1.2.3.4"));
        }
        let wait = limiter
            .check("A@X", Some("9.9.9.9"))
            .expect("account is blocked");
        assert!((1..=900).contains(&wait), "{wait}");
        // Another account from the same address is not blocked yet.
        assert_eq!(limiter.check("b@x", Some("1.2.3.4")), None);
        clock.advance(Duration::minutes(15));
        assert_eq!(limiter.check("a@x", Some("1.2.3.4")), None);
    }

    #[test]
    fn address_limit_spans_accounts() {
        let clock = FakeClock::new(Utc::now());
        let limiter = LoginLimiter::new(Arc::new(clock));
        for i in 0..20 {
            limiter.failed(&format!("user{i}@x"), Some("5.5.5.5"));
        }
        assert!(limiter.check("new@x", Some("5.5.5.5")).is_some());
        assert!(limiter.check("new@x", Some("6.6.6.6")).is_none());
    }

    #[test]
    fn success_clears_the_account() {
        let clock = FakeClock::new(Utc::now());
        let limiter = LoginLimiter::new(Arc::new(clock));
        for _ in 0..4 {
            limiter.failed("a@x", None);
        }
        limiter.succeeded("a@x");
        limiter.failed("a@x", None);
        assert!(limiter.check("a@x", None).is_none());
    }
}
