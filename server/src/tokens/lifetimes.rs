//! How long a token keeps working without a person: when its refresh token
//! expires (as the provider says, or as its settings assume), by when a
//! person must authorize it again, and what a grant's answer left out that
//! a later renewal may miss (a refresh token not replaced, a narrower
//! scope, no `expires_in`).

use app::tokens::RenewalNote;
use chrono::{DateTime, Duration, Utc};

use crate::db::entity::{provider, token};
use crate::oauth::token_response::{RefreshTokenExpiry, TokenSet};

/// How the provider's answer was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issued {
    /// A new grant: a code exchange, a device code, Client Credentials or
    /// Password.
    Granted,
    /// The refresh_token grant.
    Refreshed,
}

/// A provider's refresh-token lifetime, for answers that do not state one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshLifetime {
    /// The lifetime, when the provider's settings know it.
    pub lifetime: Option<Duration>,
    /// It restarts with each use; else it counts from the authorization.
    pub sliding: bool,
}

impl From<&provider::Model> for RefreshLifetime {
    fn from(p: &provider::Model) -> Self {
        Self {
            lifetime: p
                .refresh_token_lifetime_secs
                .filter(|s| *s > 0)
                .map(Duration::seconds),
            sliding: p.refresh_token_lifetime_sliding,
        }
    }
}

/// When the refresh token the token holds after `set` expires. `keeps` is
/// whether it holds one at all. A stated lifetime wins; else the
/// provider's setting: a sliding lifetime restarts at each answer, an
/// absolute one counts from the grant and survives renewals. A refresh
/// token kept from before keeps what was known of it.
pub fn refresh_token_expires_at(
    before: &token::Model,
    set: &TokenSet,
    keeps: bool,
    policy: RefreshLifetime,
    issued: Issued,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if !keeps {
        return None;
    }
    if let Some(stated) = set.refresh_token_expiry {
        return Some(match stated {
            RefreshTokenExpiry::After(d) => now + d,
            RefreshTokenExpiry::At(at) => at,
        });
    }
    match (policy.lifetime, issued) {
        (Some(l), Issued::Granted) => Some(now + l),
        (Some(l), Issued::Refreshed) if policy.sliding => Some(now + l),
        (Some(l), Issued::Refreshed) => before.refresh_token_expires_at.or(Some(now + l)),
        // The same refresh token as before: what was said of it holds.
        (None, Issued::Refreshed) if set.refresh_token.is_none() => before.refresh_token_expires_at,
        (None, _) => None,
    }
}

/// What `set` left out compared with the token before it. `dropped` is
/// whether a rotating provider answered a renewal without a new refresh
/// token; `assumed` the provider's default lifetime used for a missing
/// `expires_in`; `separator` the provider's scope separator.
pub fn renewal_notes(
    before: &token::Model,
    set: &TokenSet,
    issued: Issued,
    dropped: bool,
    assumed: Option<i64>,
    separator: &str,
) -> Vec<RenewalNote> {
    let mut notes = Vec::new();
    if issued == Issued::Refreshed && dropped {
        notes.push(RenewalNote::RefreshTokenDropped);
    }
    if issued == Issued::Refreshed
        && let (Some(was), Some(now)) = (before.granted_scope.as_deref(), set.scope.as_deref())
    {
        let granted = scopes(now, separator);
        let lost: Vec<String> = scopes(was, separator)
            .into_iter()
            .filter(|s| !granted.contains(s))
            .map(str::to_owned)
            .collect();
        if !lost.is_empty() {
            notes.push(RenewalNote::ScopeNarrowed { lost });
        }
    }
    if set.expires_in.is_none() {
        notes.push(RenewalNote::ExpiresInMissing {
            assumed_seconds: assumed,
        });
    }
    notes
}

/// The scopes of a granted scope string: split at the provider's
/// separator, spaces and commas (providers answer with either).
fn scopes<'a>(text: &'a str, separator: &str) -> Vec<&'a str> {
    let mut out: Vec<&str> = text
        .split(separator)
        .flat_map(|part| part.split(|c: char| c.is_whitespace() || c == ','))
        .filter(|s| !s.is_empty())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The notes stored on a token.
pub fn stored_notes(t: &token::Model) -> Vec<RenewalNote> {
    t.renewal_notes
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default()
}

/// The notes as stored: none is no column value.
pub fn notes_json(notes: &[RenewalNote]) -> Option<String> {
    (!notes.is_empty())
        .then(|| serde_json::to_string(notes).ok())
        .flatten()
}

/// By when a person must authorize `t` again: for the flows a person
/// authorizes and that hold a token, when the refresh token expires, or
/// without a refresh token when the access token does. Tokens Quiver can
/// obtain again itself (Client Credentials, Password) never need it.
pub fn reauthorization_due_at(t: &token::Model) -> Option<DateTime<Utc>> {
    if !t.flow.needs_person() || t.access_token.is_none() {
        return None;
    }
    if t.refresh_token.is_some() {
        t.refresh_token_expires_at
    } else {
        t.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretString;
    use std::collections::BTreeMap;

    fn set(refresh: Option<&str>, expiry: Option<RefreshTokenExpiry>) -> TokenSet {
        TokenSet {
            access_token: SecretString::new("a"),
            token_type: "Bearer".into(),
            expires_in: Some(Duration::hours(1)),
            refresh_token: refresh.map(SecretString::new),
            scope: None,
            id_token: None,
            fields: BTreeMap::new(),
            refresh_token_expiry: expiry,
        }
    }

    fn before(expires: Option<DateTime<Utc>>) -> token::Model {
        let mut t = crate::tokens::renewal::tests::token(app::tokens::Flow::AuthorizationCode);
        t.refresh_token_expires_at = expires;
        t
    }

    fn at(days: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::days(days)
    }

    const NINETY_SLIDING: RefreshLifetime = RefreshLifetime {
        lifetime: Some(Duration::days(90)),
        sliding: true,
    };
    const NINETY_ABSOLUTE: RefreshLifetime = RefreshLifetime {
        lifetime: Some(Duration::days(90)),
        sliding: false,
    };
    const UNKNOWN: RefreshLifetime = RefreshLifetime {
        lifetime: None,
        sliding: false,
    };

    #[test]
    fn a_stated_lifetime_wins_over_the_setting() {
        let now = at(0);
        let s = set(
            Some("r"),
            Some(RefreshTokenExpiry::After(Duration::days(5))),
        );
        let got = refresh_token_expires_at(
            &before(None),
            &s,
            true,
            NINETY_SLIDING,
            Issued::Granted,
            now,
        );
        assert_eq!(got, Some(at(5)));
        let s = set(Some("r"), Some(RefreshTokenExpiry::At(at(7))));
        let got =
            refresh_token_expires_at(&before(None), &s, true, UNKNOWN, Issued::Refreshed, now);
        assert_eq!(got, Some(at(7)));
    }

    #[test]
    fn sliding_restarts_absolute_counts_from_the_grant() {
        let granted = refresh_token_expires_at(
            &before(None),
            &set(Some("r"), None),
            true,
            NINETY_ABSOLUTE,
            Issued::Granted,
            at(0),
        );
        assert_eq!(granted, Some(at(90)));
        // Thirty days later, a renewal: absolute keeps day 90, sliding moves to day 120.
        let absolute = refresh_token_expires_at(
            &before(granted),
            &set(Some("r2"), None),
            true,
            NINETY_ABSOLUTE,
            Issued::Refreshed,
            at(30),
        );
        assert_eq!(absolute, Some(at(90)));
        let sliding = refresh_token_expires_at(
            &before(granted),
            &set(Some("r2"), None),
            true,
            NINETY_SLIDING,
            Issued::Refreshed,
            at(30),
        );
        assert_eq!(sliding, Some(at(120)));
    }

    #[test]
    fn unknown_lifetimes_stay_unknown_and_a_kept_token_keeps_its_date() {
        let kept = refresh_token_expires_at(
            &before(Some(at(50))),
            &set(None, None),
            true,
            UNKNOWN,
            Issued::Refreshed,
            at(10),
        );
        assert_eq!(kept, Some(at(50)));
        let rotated = refresh_token_expires_at(
            &before(Some(at(50))),
            &set(Some("new"), None),
            true,
            UNKNOWN,
            Issued::Refreshed,
            at(10),
        );
        assert_eq!(rotated, None);
        let none = refresh_token_expires_at(
            &before(Some(at(50))),
            &set(None, None),
            false,
            NINETY_SLIDING,
            Issued::Refreshed,
            at(10),
        );
        assert_eq!(none, None);
    }

    #[test]
    fn notes_name_what_a_renewal_left_out() {
        let mut was = before(None);
        was.granted_scope = Some("openid email offline_access".into());
        let mut s = set(None, None);
        s.scope = Some("openid,offline_access".into());
        s.expires_in = None;
        let notes = renewal_notes(&was, &s, Issued::Refreshed, true, Some(3600), " ");
        assert_eq!(
            notes,
            vec![
                RenewalNote::RefreshTokenDropped,
                RenewalNote::ScopeNarrowed {
                    lost: vec!["email".into()]
                },
                RenewalNote::ExpiresInMissing {
                    assumed_seconds: Some(3600)
                },
            ]
        );
        // A whole answer has none; a new grant is never "narrowed".
        s.scope = Some("email openid offline_access".into());
        s.expires_in = Some(Duration::hours(1));
        assert!(renewal_notes(&was, &s, Issued::Refreshed, false, None, " ").is_empty());
        s.scope = Some("openid".into());
        assert!(renewal_notes(&was, &s, Issued::Granted, false, None, " ").is_empty());
    }

    #[test]
    fn reauthorization_is_due_for_people_only() {
        let mut t = before(Some(at(40)));
        t.flow = app::tokens::Flow::AuthorizationCode;
        t.access_token = Some("sealed".into());
        t.refresh_token = Some("sealed".into());
        t.expires_at = Some(at(1));
        assert_eq!(reauthorization_due_at(&t), Some(at(40)));
        t.refresh_token = None;
        assert_eq!(reauthorization_due_at(&t), Some(at(1)));
        t.flow = app::tokens::Flow::ClientCredentials;
        assert_eq!(reauthorization_due_at(&t), None);
    }
}
