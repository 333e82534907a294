//! Login rate limiting, per account and per client address. An attempt is
//! counted before its password is checked, under the same lock as the
//! check, so that however many arrive at once, at most the limit of them
//! are ever verified in a window; the rest are refused until it passes,
//! whether or not the password would be right. A successful login takes
//! its own attempt back and clears the account's count.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use crate::clock::SharedClock;

/// Limits for one kind of key.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Attempts allowed in the window.
    pub failures: u32,
    /// The window.
    pub window: Duration,
}

/// Keys kept at most; beyond, the least recently attempted are forgotten
/// first (a flood of distinct addresses cannot make the limiter forget an
/// account under attack).
const CAPACITY: usize = 100_000;

/// Attempts per account and per address, in this process. Several replicas
/// each keep their own counts, so the effective limit is per replica.
pub struct LoginLimiter {
    clock: SharedClock,
    per_account: Limit,
    per_address: Limit,
    attempts: Mutex<HashMap<String, Tally>>,
    capacity: usize,
}

/// One key's counted attempts in the window, and when it was last tried
/// (refused tries included).
#[derive(Default)]
struct Tally {
    times: Vec<DateTime<Utc>>,
    seen: DateTime<Utc>,
}

/// An attempt counted against an account and an address; see
/// [`LoginLimiter::attempt`].
#[derive(Debug)]
pub struct Attempt {
    account: String,
    address: Option<String>,
    at: DateTime<Utc>,
}

impl LoginLimiter {
    /// Default limits: 5 attempts per account and 20 per address in 15 minutes.
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
            attempts: Mutex::new(HashMap::new()),
            capacity: CAPACITY,
        }
    }

    fn account_key(account: &str) -> String {
        format!("account:{}", account.trim().to_lowercase())
    }

    fn keys(account: &str, address: Option<&str>) -> [Option<String>; 2] {
        [
            Some(Self::account_key(account)),
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

    /// Counts an attempt for `account` from `address`, or answers
    /// `Err(seconds to wait)` when either has used its attempts of the
    /// window (then nothing is counted).
    pub fn attempt(&self, account: &str, address: Option<&str>) -> Result<Attempt, u64> {
        let now = self.clock.now();
        let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        let keys = Self::keys(account, address);
        let mut wait = None::<i64>;
        for key in keys.iter().flatten() {
            let limit = self.limit_for(key);
            if let Some(tally) = attempts.get_mut(key) {
                tally.seen = now;
                let times = &mut tally.times;
                times.retain(|t| now - *t < limit.window);
                if times.len() as u32 >= limit.failures {
                    let oldest = times[times.len() - limit.failures as usize];
                    let seconds = (oldest + limit.window - now).num_seconds().max(1);
                    wait = Some(wait.map_or(seconds, |w| w.max(seconds)));
                }
            }
        }
        if let Some(w) = wait {
            return Err(w.unsigned_abs());
        }
        if attempts.len() + 2 > self.capacity {
            Self::evict(&mut attempts, self.capacity / 10 + 2);
        }
        for key in keys.into_iter().flatten() {
            let tally = attempts.entry(key).or_default();
            tally.times.push(now);
            tally.seen = now;
        }
        Ok(Attempt {
            account: account.to_owned(),
            address: address.map(str::to_owned),
            at: now,
        })
    }

    /// Forgets the `n` keys attempted least recently.
    fn evict(attempts: &mut HashMap<String, Tally>, n: usize) {
        let mut last: Vec<(DateTime<Utc>, String)> = attempts
            .iter()
            .map(|(k, tally)| (tally.seen, k.clone()))
            .collect();
        let n = n.min(last.len());
        if n == 0 {
            return;
        }
        last.select_nth_unstable(n - 1);
        for (_, key) in last.into_iter().take(n) {
            attempts.remove(&key);
        }
    }

    /// The attempt succeeded: the account's count is cleared and the
    /// address's attempt taken back.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        attempts.remove(&Self::account_key(&attempt.account));
        if let Some(address) = &attempt.address {
            let key = format!("address:{address}");
            if let Some(tally) = attempts.get_mut(&key)
                && let Some(i) = tally.times.iter().rposition(|t| *t == attempt.at)
            {
                tally.times.remove(i);
            }
        }
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
            assert!(limiter.attempt("a@x", Some("1.2.3.4")).is_ok());
        }
        let wait = limiter
            .attempt("A@X", Some("9.9.9.9"))
            .expect_err("account is blocked");
        assert!((1..=900).contains(&wait), "{wait}");
        // Another account from the same address is not blocked yet.
        assert!(limiter.attempt("b@x", Some("1.2.3.4")).is_ok());
        clock.advance(Duration::minutes(15));
        assert!(limiter.attempt("a@x", Some("1.2.3.4")).is_ok());
    }

    #[test]
    fn attempts_in_flight_count_before_they_are_verified() {
        let clock = FakeClock::new(Utc::now());
        let limiter = Arc::new(LoginLimiter::new(Arc::new(clock)));
        let threads: Vec<_> = (0..30)
            .map(|_| {
                let limiter = limiter.clone();
                std::thread::spawn(move || limiter.attempt("a@x", None).is_ok())
            })
            .collect();
        let allowed = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(allowed, 5);
    }

    #[test]
    fn address_limit_spans_accounts() {
        let clock = FakeClock::new(Utc::now());
        let limiter = LoginLimiter::new(Arc::new(clock));
        for i in 0..20 {
            assert!(
                limiter
                    .attempt(&format!("user{i}@x"), Some("5.5.5.5"))
                    .is_ok()
            );
        }
        assert!(limiter.attempt("new@x", Some("5.5.5.5")).is_err());
        assert!(limiter.attempt("new@x", Some("6.6.6.6")).is_ok());
    }

    #[test]
    fn success_clears_the_account_and_takes_back_the_address_attempt() {
        let clock = FakeClock::new(Utc::now());
        let limiter = LoginLimiter::new(Arc::new(clock));
        for _ in 0..4 {
            limiter.attempt("a@x", Some("7.7.7.7")).unwrap();
        }
        let ok = limiter.attempt("a@x", Some("7.7.7.7")).unwrap();
        limiter.succeeded(ok);
        for _ in 0..5 {
            assert!(limiter.attempt("a@x", Some("7.7.7.7")).is_ok());
        }
        // 4 failures and 5 more attempts from the address; the success is not counted.
        for i in 0..11 {
            assert!(
                limiter.attempt(&format!("o{i}@x"), Some("7.7.7.7")).is_ok(),
                "{i}"
            );
        }
        assert!(limiter.attempt("p@x", Some("7.7.7.7")).is_err());
    }

    #[test]
    fn a_full_limiter_forgets_the_least_recent_keys_not_an_account_under_attack() {
        let clock = FakeClock::new(Utc::now());
        let mut limiter = LoginLimiter::new(Arc::new(clock.clone()));
        limiter.capacity = 1_000;
        for _ in 0..5 {
            limiter.attempt("victim@x", None).unwrap();
        }
        clock.advance(Duration::seconds(1));
        for i in 0..5_000 {
            clock.advance(Duration::milliseconds(1));
            let _ = limiter.attempt(
                &format!("noise{i}@x"),
                Some(&format!("10.0.{}.{}", i / 250, i % 250)),
            );
            if i % 100 == 0 {
                // The attacker keeps trying the victim too.
                assert!(limiter.attempt("victim@x", None).is_err(), "{i}");
            }
        }
        assert!(limiter.len() <= 1_000);
        assert!(limiter.attempt("victim@x", None).is_err());
    }
}
