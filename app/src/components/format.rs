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

/// Now, in seconds since the Unix epoch. The countdowns of the tokens list
/// count in these rather than in `chrono`'s types, whose parsing and
/// arithmetic would then be part of the list's first load.
pub fn now_seconds() -> i64 {
    #[cfg(target_arch = "wasm32")]
    {
        (js_sys::Date::now() / 1000.0) as i64
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        Utc::now().timestamp()
    }
}

/// An RFC 3339 time from the server (`2026-01-01T00:00:00.123Z`,
/// `2026-01-01T01:00:00+01:00`) in whole seconds since the Unix epoch.
pub fn epoch_seconds(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        part.iter().try_fold(0i64, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    let sep = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // A fraction of a second, then the offset.
    let mut i = 19;
    if sep(i, b".") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && sep(i + 3, b":") => {
            let (h, m) = (digits(i + 1..i + 3)?, digits(i + 4..i + 6)?);
            let minutes = h * 60 + m;
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    // Days from 1970-01-01 to the date (proleptic Gregorian calendar).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
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

/// "in 4 min 10 s" or "expired 2 min ago", relative to `now` (seconds
/// since the Unix epoch).
pub fn expires_in(expires_at: Option<&str>, now: i64) -> String {
    match expires_at.and_then(epoch_seconds) {
        None => "no expiry given".into(),
        Some(at) => {
            let left = at - now;
            if left > 0 {
                format!("in {}", span(left))
            } else {
                format!("expired {} ago", span(left))
            }
        }
    }
}

/// "3 min ago", relative to `now` (seconds since the Unix epoch); "never"
/// without a time.
pub fn ago(at: Option<&str>, now: i64) -> String {
    match at.and_then(epoch_seconds) {
        None => "never".into(),
        Some(at) => {
            let secs = (now - at).max(0);
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
    now: i64,
) -> (&'static str, &'static str) {
    let left = expires_at.and_then(epoch_seconds).map(|at| at - now);
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
        let now = epoch_seconds("2026-01-01T00:00:00Z").unwrap();
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

    #[test]
    fn server_times_read_as_chrono_reads_them() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2026-01-01T00:00:00Z",
            "2026-12-07T15:49:21.742705Z",
            "2024-02-29T23:59:59+00:00",
            "2026-03-01T01:30:00+02:00",
            "2026-03-01T01:30:00-05:30",
            "1969-07-20T20:17:40Z",
            "2000-02-29T12:00:00.5+01:00",
            "2100-03-01T00:00:00Z",
        ] {
            assert_eq!(
                epoch_seconds(text),
                Some(parse_time(text).unwrap().timestamp()),
                "{text}"
            );
        }
        for bad in [
            "",
            "2026-01-01",
            "2026-01-01T00:00:00",
            "2026-13-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00+0100",
            "2026-01-01T00:00:00Zjunk",
            "2026/01/01T00:00:00Z",
            "２026-01-01T00:00:00Z",
        ] {
            assert_eq!(epoch_seconds(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn now_is_the_clock_in_seconds() {
        assert!((now_seconds() - Utc::now().timestamp()).abs() <= 1);
    }
}
