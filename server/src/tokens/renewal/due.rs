//! When a token should next be renewed, and how long to wait after a
//! failure: pure functions, so the rules are tested without a clock.

use chrono::{DateTime, Duration, Utc};
use rand::Rng;

use crate::db::entity::token;
use crate::tokens::TokenStatus;

/// First wait after a failed background renewal.
pub const BACKOFF_BASE: Duration = Duration::seconds(30);
/// Longest wait between attempts, also the pace once a token is `failed`.
pub const BACKOFF_MAX: Duration = Duration::hours(1);

/// When the scheduler should renew `t` next, or `None` when there is
/// nothing it can do (auto-refresh off, waiting for a person, an
/// interactive token without a refresh token, a token that never expires
/// and holds no refresh token).
///
/// The lead time is at most half the token's lifetime, so a provider that
/// issues tokens shorter than the lead time is not asked again at once.
pub fn next_due(t: &token::Model, idle_interval: Duration) -> Option<DateTime<Utc>> {
    if !t.auto_refresh || t.status == TokenStatus::PendingAuthorization || t.access_token.is_none()
    {
        return None;
    }
    let interactive = t.flow.needs_person();
    let has_refresh = t.refresh_token.is_some();
    if interactive && !has_refresh {
        return None;
    }
    match t.expires_at {
        Some(expires) => {
            let mut lead = Duration::seconds(i64::from(t.refresh_lead_secs.max(0)));
            if let Some(renewed) = t.last_refreshed_at
                && expires > renewed
            {
                lead = lead.min((expires - renewed) / 2);
            }
            Some(expires - lead)
        }
        // Unused refresh tokens die silently at many providers: use them.
        None if has_refresh => Some(t.last_refreshed_at.unwrap_or(t.updated_at) + idle_interval),
        None => None,
    }
}

/// How long to wait after `failures` failed attempts in a row:
/// exponential from [`BACKOFF_BASE`] up to [`BACKOFF_MAX`], with jitter
/// (between half and all of it) so that many tokens of one provider do
/// not retry in lockstep; never less than the provider's `Retry-After`.
pub fn backoff(failures: u32, retry_after_secs: Option<u64>, rng: &mut impl Rng) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    let full = (BACKOFF_BASE * 2_i32.pow(exponent)).min(BACKOFF_MAX);
    let millis = full.num_milliseconds();
    let jittered = Duration::milliseconds(rng.gen_range(millis / 2..=millis));
    let asked =
        Duration::seconds(i64::try_from(retry_after_secs.unwrap_or(0)).unwrap_or(i64::MAX / 1000));
    jittered.max(asked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::Flow;
    use rand::SeedableRng;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn token(flow: Flow) -> token::Model {
        let now = at("2026-11-29T12:00:00Z");
        token::Model {
            id: "t".into(),
            name: "t".into(),
            owner_id: "u".into(),
            provider_id: "p".into(),
            flow,
            use_default_keys: true,
            client_id: None,
            client_secret: None,
            username: None,
            password: None,
            resource: None,
            scope: None,
            additional_values: "{}".into(),
            status: TokenStatus::Active,
            access_token: Some("sealed".into()),
            refresh_token: None,
            token_type: Some("Bearer".into()),
            expires_at: Some(now + Duration::hours(1)),
            granted_scope: None,
            identity: None,
            last_error: None,
            last_refreshed_at: Some(now),
            refresh_margin_secs: 60,
            lease_owner: None,
            lease_until: None,
            auto_refresh: true,
            refresh_lead_secs: 300,
            refresh_due_at: None,
            failure_count: 0,
            response_fields: None,
            authorization_code: None,
            device_code: None,
            user_code: None,
            verification_uri: None,
            verification_uri_complete: None,
            device_expires_at: None,
            device_interval_secs: None,
            device_next_poll_at: None,
            refresh_token_expires_at: None,
            reauthorization_announced_for: None,
            renewal_notes: None,
            test_request_url: None,
            test_request_method: None,
            last_test_at: None,
            last_test_status: None,
            last_test_result: None,
            last_used_at: None,
            last_used_by: None,
            next_client_secret: None,
            client_secret_expires_at: None,
            next_client_secret_expires_at: None,
            secret_in_use: None,
            secret_in_use_since: None,
            secret_expiry_announced_for: None,
            next_secret_expiry_announced_for: None,
            unused_announced_for: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn due_lead_time_before_expiry() {
        let t = token(Flow::ClientCredentials);
        assert_eq!(
            next_due(&t, Duration::hours(24)),
            Some(at("2026-11-29T12:55:00Z"))
        );
    }

    #[test]
    fn lead_time_is_at_most_half_the_lifetime() {
        let mut t = token(Flow::ClientCredentials);
        t.expires_at = Some(at("2026-11-29T12:02:00Z"));
        assert_eq!(
            next_due(&t, Duration::hours(24)),
            Some(at("2026-11-29T12:01:00Z"))
        );
    }

    #[test]
    fn nothing_to_do_when_off_pending_or_unrefreshable() {
        let mut off = token(Flow::ClientCredentials);
        off.auto_refresh = false;
        assert_eq!(next_due(&off, Duration::hours(24)), None);
        let mut pending = token(Flow::AuthorizationCode);
        pending.status = TokenStatus::PendingAuthorization;
        assert_eq!(next_due(&pending, Duration::hours(24)), None);
        // An interactive token without a refresh token needs a person.
        assert_eq!(
            next_due(&token(Flow::AuthorizationCode), Duration::hours(24)),
            None
        );
        let mut forever = token(Flow::ClientCredentials);
        forever.expires_at = None;
        assert_eq!(next_due(&forever, Duration::hours(24)), None);
    }

    #[test]
    fn refresh_tokens_without_expiry_are_used_every_idle_interval() {
        let mut t = token(Flow::AuthorizationCode);
        t.expires_at = None;
        t.refresh_token = Some("sealed".into());
        assert_eq!(
            next_due(&t, Duration::hours(24)),
            Some(at("2026-11-30T12:00:00Z"))
        );
        assert_eq!(
            next_due(&t, Duration::hours(6)),
            Some(at("2026-11-29T18:00:00Z"))
        );
    }

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for (failures, full) in [(1, 30), (2, 60), (3, 120), (8, 3600), (40, 3600)] {
            for _ in 0..50 {
                let d = backoff(failures, None, &mut rng).num_milliseconds();
                assert!(
                    (full * 500..=full * 1000).contains(&d),
                    "{failures} failures: {d} ms not within [{}, {}] ms",
                    full * 500,
                    full * 1000
                );
            }
        }
        // Retry-After longer than the backoff wins; shorter does not shorten it.
        assert_eq!(
            backoff(1, Some(600), &mut rng),
            Duration::seconds(600),
            "Retry-After: 600"
        );
        assert!(backoff(3, Some(1), &mut rng) >= Duration::seconds(60));
        // Jitter spreads retries: 100 tokens failing together do not retry at one instant.
        let spread: std::collections::BTreeSet<i64> = (0..100)
            .map(|_| backoff(2, None, &mut rng).num_seconds())
            .collect();
        assert!(spread.len() > 10, "{spread:?}");
    }
}
