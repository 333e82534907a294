//! How times, statuses and flows read on screen.

use chrono::{DateTime, Utc};

use crate::providers::ClientAuthMethod;
use crate::tokens::{Flow, TokenStatus};

/// A token expiring within this many seconds is "Expiring soon" (the server
/// filters with the same window).
pub const EXPIRING_SOON_SECS: i64 = 600;

/// Parses an RFC 3339 time from the server.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `1 h 5 min`, `4 min 10 s`, `12 s`: a duration in its two largest units.
pub fn span(seconds: i64) -> String {
    let s = seconds.abs();
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    let two = |big: i64, big_unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big} {big_unit}")
        } else {
            format!("{big} {big_unit} {small} {small_unit}")
        }
    };
    if d > 0 {
        two(d, "d", h, "h")
    } else if h > 0 {
        two(h, "h", m, "min")
    } else if m > 0 {
        two(m, "min", sec, "s")
    } else {
        format!("{sec} s")
    }
}

/// "in 4 min 10 s" or "expired 2 min ago", relative to `now`.
pub fn expires_in(expires_at: Option<&str>, now: DateTime<Utc>) -> String {
    match expires_at.and_then(parse_time) {
        None => "no expiry given".into(),
        Some(at) => {
            let left = (at - now).num_seconds();
            if left > 0 {
                format!("in {}", span(left))
            } else {
                format!("expired {} ago", span(left))
            }
        }
    }
}

/// "3 min ago", relative to `now`; "never" without a time.
pub fn ago(at: Option<&str>, now: DateTime<Utc>) -> String {
    match at.and_then(parse_time) {
        None => "never".into(),
        Some(at) => {
            let secs = (now - at).num_seconds().max(0);
            if secs < 5 {
                "just now".into()
            } else {
                format!("{} ago", span(secs))
            }
        }
    }
}

/// An RFC 3339 time as a date input holds it (`YYYY-MM-DD`); empty without one.
pub fn date_input(at: Option<&str>) -> String {
    at.map(|a| a.chars().take(10).collect()).unwrap_or_default()
}

/// A time for people: `2026-11-29 07:41 UTC`.
pub fn when(at: &str) -> String {
    parse_time(at)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| at.to_owned())
}

/// The flow's name for people.
pub fn flow_label(flow: Flow) -> &'static str {
    match flow {
        Flow::AuthorizationCode => "Authorization Code",
        Flow::ClientCredentials => "Client Credentials",
        Flow::Password => "Password",
        Flow::OidcHybrid => "OIDC Hybrid",
        Flow::DeviceCode => "Device Code",
    }
}

/// The badge a token shows: the server's status, with "expiring soon" for an
/// active token close to its expiry, as `(css suffix, label)`.
pub fn status_badge(
    status: TokenStatus,
    expires_at: Option<&str>,
    now: DateTime<Utc>,
) -> (&'static str, &'static str) {
    let left = expires_at
        .and_then(parse_time)
        .map(|at| (at - now).num_seconds());
    match status {
        TokenStatus::Active | TokenStatus::Expired => match left {
            Some(l) if l <= 0 => ("expired", "Expired"),
            Some(l) if l <= EXPIRING_SOON_SECS => ("expiring_soon", "Expiring soon"),
            _ if status == TokenStatus::Expired => ("expired", "Expired"),
            _ => ("active", "Active"),
        },
        TokenStatus::PendingAuthorization => ("pending_authorization", "Waiting for authorization"),
        TokenStatus::NeedsCredentials => ("needs_credentials", "Needs credentials"),
        TokenStatus::Failed => ("failed", "Failed"),
    }
}

/// The client authentication method's name.
pub fn auth_method_label(method: ClientAuthMethod) -> &'static str {
    match method {
        ClientAuthMethod::ClientSecretBasic => "Client secret (HTTP Basic)",
        ClientAuthMethod::ClientSecretPost => "Client secret (form body)",
        ClientAuthMethod::PrivateKeyJwt => "Private Key JWT",
        ClientAuthMethod::None => "None (public client)",
        ClientAuthMethod::TlsClientAuth => "Mutual TLS (CA-issued certificate)",
        ClientAuthMethod::SelfSignedTlsClientAuth => "Mutual TLS (self-signed certificate)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_in_two_units() {
        assert_eq!(span(12), "12 s");
        assert_eq!(span(250), "4 min 10 s");
        assert_eq!(span(3900), "1 h 5 min");
        assert_eq!(span(90_000), "1 d 1 h");
        assert_eq!(span(7200), "2 h");
    }

    #[test]
    fn badges_follow_expiry() {
        let now = parse_time("2026-01-01T00:00:00Z").unwrap();
        let badge = |s, e| status_badge(s, e, now).1;
        assert_eq!(
            badge(TokenStatus::Active, Some("2026-01-01T01:00:00Z")),
            "Active"
        );
        assert_eq!(
            badge(TokenStatus::Active, Some("2026-01-01T00:05:00Z")),
            "Expiring soon"
        );
        assert_eq!(
            badge(TokenStatus::Active, Some("2025-12-31T23:59:00Z")),
            "Expired"
        );
        assert_eq!(badge(TokenStatus::Active, None), "Active");
        assert_eq!(badge(TokenStatus::Failed, None), "Failed");
        assert_eq!(
            badge(TokenStatus::PendingAuthorization, None),
            "Waiting for authorization"
        );
        assert_eq!(
            badge(TokenStatus::NeedsCredentials, None),
            "Needs credentials"
        );
        assert_eq!(expires_in(Some("2026-01-01T00:00:30Z"), now), "in 30 s");
        assert_eq!(
            expires_in(Some("2025-12-31T23:58:00Z"), now),
            "expired 2 min ago"
        );
    }
}
