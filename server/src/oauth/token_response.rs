//! Token endpoint answers as providers really send them: `expires_in`
//! missing, a number, a string, or in milliseconds; `token_type` in any
//! case; errors with or without a description; HTML or broken JSON; a
//! form-encoded body (GitHub without `Accept`); the token fields nested
//! under another member (Slack's `authed_user`); extra fields a provider's
//! API needs later (Salesforce's `instance_url`).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::secret::SecretString;

/// A successful token response.
#[derive(Debug, Clone)]
pub struct TokenSet {
    /// The access token.
    pub access_token: SecretString,
    /// `Bearer` (normalised), or the provider's type as sent.
    pub token_type: String,
    /// Lifetime, when the provider said.
    pub expires_in: Option<Duration>,
    /// A refresh token, when one was issued.
    pub refresh_token: Option<SecretString>,
    /// The granted scope, when the provider said.
    pub scope: Option<String>,
    /// An OpenID Connect id_token, when one was issued.
    pub id_token: Option<String>,
    /// The extra fields the provider's settings keep, as text.
    pub fields: BTreeMap<String, String>,
    /// What the answer says of the refresh token's lifetime, if anything.
    pub refresh_token_expiry: Option<RefreshTokenExpiry>,
}

/// A refresh token's lifetime as a provider states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshTokenExpiry {
    /// A lifetime from now: `refresh_token_expires_in` (LinkedIn, GitHub
    /// Apps), `refresh_expires_in` (Keycloak), `x_refresh_token_expires_in`
    /// (Intuit).
    After(Duration),
    /// An instant: the `exp` of a refresh token that is a JWT.
    At(DateTime<Utc>),
}

/// The answer members that state a refresh token's lifetime, in seconds.
const REFRESH_LIFETIME_MEMBERS: [&str; 3] = [
    "refresh_token_expires_in",
    "refresh_expires_in",
    "x_refresh_token_expires_in",
];

/// What the answer says of the refresh token's lifetime: a stated lifetime
/// first, else the `exp` of a JWT refresh token. A lifetime of 0 (what
/// Keycloak sends for offline tokens) states none.
fn refresh_token_expiry(
    value: &Value,
    refresh_token: Option<&str>,
    in_millis: bool,
) -> Option<RefreshTokenExpiry> {
    let stated = REFRESH_LIFETIME_MEMBERS.iter().find_map(|member| {
        lifetime_of(value, member, in_millis)
            .ok()
            .flatten()
            .filter(|d| *d > Duration::zero())
    });
    stated
        .map(RefreshTokenExpiry::After)
        .or_else(|| refresh_token.and_then(jwt_exp).map(RefreshTokenExpiry::At))
}

/// The `exp` claim of a JWT, read without checking its signature: it only
/// tells when the provider will stop taking the token.
fn jwt_exp(token: &str) -> Option<DateTime<Utc>> {
    use base64::Engine as _;
    let mut parts = token.split('.');
    let (_, claims, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else {
        return None;
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims
        .get("exp")?
        .as_f64()
        .filter(|e| e.is_finite() && *e > 0.0)?;
    DateTime::from_timestamp(exp as i64, 0)
}

/// How a provider shapes its token answers (its settings).
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseShape<'a> {
    /// `expires_in` is in milliseconds.
    pub expires_in_millis: bool,
    /// Dotted path of the object holding the token fields, if nested.
    pub path: Option<&'a str>,
    /// Extra fields to keep.
    pub keep: &'a [String],
}

/// Why a token request failed at the provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderFault {
    /// An OAuth error response (`{"error": ...}`).
    #[error("{error}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Refused {
        /// The `error` code, e.g. `invalid_client`.
        error: String,
        /// `error_description`.
        description: Option<String>,
        /// HTTP status.
        http_status: u16,
    },
    /// Not an OAuth answer at all (HTML, broken JSON, 5xx page).
    #[error("the provider answered HTTP {http_status} with {reason}")]
    Malformed {
        /// HTTP status.
        http_status: u16,
        /// What was wrong.
        reason: String,
    },
}

impl ProviderFault {
    /// The HTTP status the provider answered with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Refused { http_status, .. } | Self::Malformed { http_status, .. } => *http_status,
        }
    }

    /// The OAuth `error` code, or a synthetic one for malformed answers.
    pub fn code(&self) -> &str {
        match self {
            Self::Refused { error, .. } => error,
            Self::Malformed { http_status, .. } if *http_status >= 500 => "server_error",
            Self::Malformed { .. } => "invalid_response",
        }
    }
}

fn text_field(value: &Value, key: &str) -> Option<String> {
    match value.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn lifetime(value: &Value, in_millis: bool) -> Result<Option<Duration>, String> {
    lifetime_of(value, "expires_in", in_millis)
}

fn lifetime_of(value: &Value, member: &str, in_millis: bool) -> Result<Option<Duration>, String> {
    let raw = match value.get(member) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    let raw = raw
        .filter(|n| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| format!("{member} is not a number of seconds"))?;
    let millis = if in_millis { raw } else { raw * 1000.0 };
    // Ten years is plenty; beyond is a provider bug.
    let millis = millis.min(10.0 * 365.0 * 86_400_000.0) as i64;
    Ok(Some(Duration::milliseconds(millis)))
}

/// A form-encoded answer (`access_token=…&scope=…`) as a JSON object, when
/// the body is one: it must name `access_token` or `error`.
fn form_body(body: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(body).ok()?.trim();
    if text.is_empty() || text.contains(['<', '{', ' ', '\n']) {
        return None;
    }
    let mut map = serde_json::Map::new();
    for (k, v) in url::form_urlencoded::parse(text.as_bytes()) {
        map.insert(k.into_owned(), Value::String(v.into_owned()));
    }
    (map.contains_key("access_token") || map.contains_key("error")).then_some(Value::Object(map))
}

/// A kept field's value as text: strings as they are, anything else as JSON.
fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Longest kept field value, in bytes: a kept field is a fact to show, not
/// a payload to store.
pub(crate) const MAX_KEPT_VALUE_BYTES: usize = 4_096;

/// Parses a token endpoint answer shaped as the provider's settings say.
pub fn parse(
    status: u16,
    body: &[u8],
    shape: ResponseShape<'_>,
) -> Result<TokenSet, ProviderFault> {
    let malformed = |reason: &str| ProviderFault::Malformed {
        http_status: status,
        reason: reason.to_owned(),
    };
    let top: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return Err(malformed("JSON that is not an object")),
        Err(_) if body.trim_ascii_start().starts_with(b"<") => {
            return Err(malformed("an HTML page"));
        }
        Err(_) if body.is_empty() => return Err(malformed("an empty body")),
        Err(_) => match form_body(body) {
            Some(v) => v,
            None => return Err(malformed("a body that is not JSON")),
        },
    };
    // An error is reported wherever the provider puts it.
    let nested = match shape.path {
        Some(path) => path.split('.').try_fold(&top, |v, member| v.get(member)),
        None => Some(&top),
    };
    if let Some(error) =
        text_field(&top, "error").or_else(|| nested.and_then(|n| text_field(n, "error")))
    {
        let description = text_field(&top, "error_description")
            .or_else(|| nested.and_then(|n| text_field(n, "error_description")));
        return Err(ProviderFault::Refused {
            error,
            description,
            http_status: status,
        });
    }
    // A path names where a provider nests the token in some answers (Slack
    // nests a user token in the code exchange, not in the refresh): an
    // answer without that object is read at the top.
    let value = match nested {
        Some(v @ Value::Object(_)) => v,
        _ => &top,
    };
    if !(200..300).contains(&status) {
        return Err(malformed("an error without an OAuth error code"));
    }
    let access_token =
        text_field(value, "access_token").ok_or_else(|| malformed("no access_token"))?;
    let token_type = match text_field(value, "token_type") {
        Some(t) if t.eq_ignore_ascii_case("bearer") => "Bearer".to_owned(),
        Some(t) => t,
        None => "Bearer".to_owned(),
    };
    let expires_in = lifetime(value, shape.expires_in_millis).map_err(|r| malformed(&r))?;
    let fields = shape
        .keep
        .iter()
        .filter_map(|name| {
            let found = value.get(name).or_else(|| top.get(name))?;
            let text = as_text(found).filter(|t| t.len() <= MAX_KEPT_VALUE_BYTES)?;
            Some((name.clone(), text))
        })
        .collect();
    let refresh_token = text_field(value, "refresh_token");
    let refresh_token_expiry =
        refresh_token_expiry(value, refresh_token.as_deref(), shape.expires_in_millis);
    Ok(TokenSet {
        access_token: SecretString::new(access_token),
        token_type,
        expires_in,
        refresh_token: refresh_token.map(SecretString::new),
        refresh_token_expiry,
        scope: text_field(value, "scope"),
        id_token: text_field(value, "id_token"),
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECONDS: ResponseShape<'static> = ResponseShape {
        expires_in_millis: false,
        path: None,
        keep: &[],
    };
    const MILLIS: ResponseShape<'static> = ResponseShape {
        expires_in_millis: true,
        path: None,
        keep: &[],
    };
    const NESTED: ResponseShape<'static> = ResponseShape {
        expires_in_millis: false,
        path: Some("authed_user"),
        keep: &[],
    };

    fn ok(body: &str) -> TokenSet {
        parse(200, body.as_bytes(), SECONDS).unwrap()
    }

    #[test]
    fn standard_response() {
        let t = ok(
            r#"{"access_token":"a","token_type":"Bearer","expires_in":3600,"refresh_token":"r","scope":"x y"}"#,
        );
        assert_eq!(t.access_token.expose(), "a");
        assert_eq!(t.expires_in, Some(Duration::seconds(3600)));
        assert_eq!(t.refresh_token.unwrap().expose(), "r");
        assert_eq!(t.scope.as_deref(), Some("x y"));
    }

    #[test]
    fn refresh_token_lifetimes_as_providers_state_them() {
        for member in [
            "refresh_token_expires_in",
            "refresh_expires_in",
            "x_refresh_token_expires_in",
        ] {
            let t = ok(&format!(
                r#"{{"access_token":"a","refresh_token":"r","{member}":"8726400"}}"#
            ));
            assert_eq!(
                t.refresh_token_expiry,
                Some(RefreshTokenExpiry::After(Duration::days(101))),
                "{member}"
            );
        }
        // Keycloak's offline tokens: 0 states no lifetime.
        let t = ok(r#"{"access_token":"a","refresh_token":"r","refresh_expires_in":0}"#);
        assert_eq!(t.refresh_token_expiry, None);
        // A JWT refresh token tells by its exp; a stated lifetime wins.
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let jwt = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"HS256"}"#),
            b64(r#"{"exp":1900000000}"#)
        );
        let t = ok(&format!(
            r#"{{"access_token":"a","refresh_token":"{jwt}"}}"#
        ));
        assert_eq!(
            t.refresh_token_expiry,
            Some(RefreshTokenExpiry::At(
                DateTime::from_timestamp(1_900_000_000, 0).unwrap()
            ))
        );
        let t = ok(&format!(
            r#"{{"access_token":"a","refresh_token":"{jwt}","refresh_expires_in":60}}"#
        ));
        assert_eq!(
            t.refresh_token_expiry,
            Some(RefreshTokenExpiry::After(Duration::seconds(60)))
        );
        // An opaque token, or a JWT-looking one without exp, says nothing.
        let t = ok(r#"{"access_token":"a","refresh_token":"a.b.c"}"#);
        assert_eq!(t.refresh_token_expiry, None);
        let t = ok(r#"{"access_token":"a"}"#);
        assert_eq!(t.refresh_token_expiry, None);
    }

    #[test]
    fn expires_in_as_string_float_missing_or_milliseconds() {
        assert_eq!(
            ok(r#"{"access_token":"a","expires_in":"3600"}"#).expires_in,
            Some(Duration::seconds(3600))
        );
        assert_eq!(
            ok(r#"{"access_token":"a","expires_in":59.5}"#).expires_in,
            Some(Duration::milliseconds(59_500))
        );
        assert_eq!(ok(r#"{"access_token":"a"}"#).expires_in, None);
        assert_eq!(
            ok(r#"{"access_token":"a","expires_in":null}"#).expires_in,
            None
        );
        let ms = parse(200, br#"{"access_token":"a","expires_in":3600000}"#, MILLIS).unwrap();
        assert_eq!(ms.expires_in, Some(Duration::seconds(3600)));
        assert!(parse(200, br#"{"access_token":"a","expires_in":"soon"}"#, SECONDS).is_err());
        assert!(parse(200, br#"{"access_token":"a","expires_in":-5}"#, SECONDS).is_err());
    }

    #[test]
    fn token_type_in_any_case_and_missing() {
        assert_eq!(
            ok(r#"{"access_token":"a","token_type":"bearer"}"#).token_type,
            "Bearer"
        );
        assert_eq!(
            ok(r#"{"access_token":"a","token_type":"BEARER"}"#).token_type,
            "Bearer"
        );
        assert_eq!(ok(r#"{"access_token":"a"}"#).token_type, "Bearer");
        assert_eq!(
            ok(r#"{"access_token":"a","token_type":"DPoP"}"#).token_type,
            "DPoP"
        );
    }

    #[test]
    fn oauth_errors_keep_code_description_and_status() {
        let e = parse(
            401,
            br#"{"error":"invalid_client","error_description":"bad secret"}"#,
            SECONDS,
        )
        .unwrap_err();
        assert_eq!(
            e,
            ProviderFault::Refused {
                error: "invalid_client".into(),
                description: Some("bad secret".into()),
                http_status: 401
            }
        );
        assert_eq!(e.to_string(), "invalid_client: bad secret");
        // Some providers answer 200 with an error body.
        assert_eq!(
            parse(200, br#"{"error":"invalid_grant"}"#, SECONDS)
                .unwrap_err()
                .code(),
            "invalid_grant"
        );
    }

    #[test]
    fn garbage_is_reported_not_trusted() {
        for (status, body, needle) in [
            (200, "{not json", "not JSON"),
            (502, "<html>Bad gateway</html>", "HTML"),
            (200, "", "empty"),
            (200, "[1,2]", "not an object"),
            (200, r#"{"token_type":"Bearer"}"#, "no access_token"),
            (500, r#"{"message":"oops"}"#, "without an OAuth error"),
        ] {
            let e = parse(status, body.as_bytes(), SECONDS).unwrap_err();
            assert!(e.to_string().contains(needle), "{body}: {e}");
            assert_eq!(e.http_status(), status);
        }
        assert_eq!(
            parse(503, b"<html/>", SECONDS).unwrap_err().code(),
            "server_error"
        );
    }

    #[test]
    fn arbitrary_input_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let seeds: [&[u8]; 6] = [
            br#"{"access_token":"a","expires_in":3600,"token_type":"bearer","refresh_token":"r","scope":"x"}"#,
            br#"{"error":"invalid_grant","error_description":"x"}"#,
            br#"{"access_token":"a","expires_in":"1e400"}"#,
            br#"{"access_token":"a","expires_in":1.7976931348623157e308}"#,
            b"<html></html>",
            b"",
        ];
        for _ in 0..20_000 {
            let mut input = seeds[rng.gen_range(0..seeds.len())].to_vec();
            for _ in 0..rng.gen_range(0..8) {
                if input.is_empty() || rng.gen_bool(0.3) {
                    let at = rng.gen_range(0..=input.len());
                    input.insert(at, rng.r#gen());
                } else {
                    let at = rng.gen_range(0..input.len());
                    if rng.gen_bool(0.5) {
                        input[at] = rng.r#gen();
                    } else {
                        input.remove(at);
                    }
                }
            }
            let _ = parse(
                rng.gen_range(100..600),
                &input,
                if rng.gen_bool(0.5) { MILLIS } else { NESTED },
            );
        }
    }

    #[test]
    fn nested_form_encoded_and_kept_fields() {
        let keep = ["instance_url".to_owned(), "team".to_owned()];
        let shape = ResponseShape {
            expires_in_millis: false,
            path: Some("authed_user"),
            keep: &keep,
        };
        let t = parse(
            200,
            br#"{"ok":true,"access_token":"bot","team":{"id":"T1"},"authed_user":{"access_token":"user","refresh_token":"r","expires_in":"43200"}}"#,
            shape,
        )
        .unwrap();
        assert_eq!(t.access_token.expose(), "user");
        assert_eq!(t.expires_in, Some(Duration::seconds(43_200)));
        assert_eq!(t.fields["team"], r#"{"id":"T1"}"#);
        // The same provider's refresh answer is flat.
        let t = parse(200, br#"{"ok":true,"access_token":"user2"}"#, shape).unwrap();
        assert_eq!(t.access_token.expose(), "user2");
        // An error nested or at the top.
        let e = parse(200, br#"{"ok":false,"error":"invalid_code"}"#, shape).unwrap_err();
        assert_eq!(e.code(), "invalid_code");
        let e = parse(200, br#"{"authed_user":{"error":"invalid_grant"}}"#, shape).unwrap_err();
        assert_eq!(e.code(), "invalid_grant");
        // GitHub without Accept: JSON.
        let t = parse(
            200,
            b"access_token=gho_1&scope=repo%2Cuser&token_type=bearer&instance_url=https%3A%2F%2Fx",
            ResponseShape {
                keep: &keep,
                ..SECONDS
            },
        )
        .unwrap();
        assert_eq!(t.access_token.expose(), "gho_1");
        assert_eq!(t.scope.as_deref(), Some("repo,user"));
        assert_eq!(t.fields["instance_url"], "https://x");
        let e = parse(400, b"error=bad_verification_code", SECONDS).unwrap_err();
        assert_eq!(e.code(), "bad_verification_code");
        assert!(parse(200, b"hello=world", SECONDS).is_err());
    }

    #[test]
    fn the_access_token_never_shows_in_debug() {
        let t =
            ok(r#"{"access_token":"super-secret-access","refresh_token":"super-secret-refresh"}"#);
        let shown = format!("{t:?}");
        assert!(!shown.contains("super-secret"), "{shown}");
    }
}
