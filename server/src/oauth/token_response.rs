//! Token endpoint answers as providers really send them: `expires_in`
//! missing, a number, a string, or in milliseconds; `token_type` in any
//! case; errors with or without a description; HTML or broken JSON.

use chrono::Duration;
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
    let raw = match value.get("expires_in") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    let raw = raw
        .filter(|n| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| "expires_in is not a number of seconds".to_owned())?;
    let millis = if in_millis { raw } else { raw * 1000.0 };
    // Ten years is plenty; beyond is a provider bug.
    let millis = millis.min(10.0 * 365.0 * 86_400_000.0) as i64;
    Ok(Some(Duration::milliseconds(millis)))
}

/// Parses a token endpoint answer. `expires_in_millis` is the provider
/// setting for providers that send milliseconds.
pub fn parse(status: u16, body: &[u8], expires_in_millis: bool) -> Result<TokenSet, ProviderFault> {
    let malformed = |reason: &str| ProviderFault::Malformed {
        http_status: status,
        reason: reason.to_owned(),
    };
    let value: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return Err(malformed("JSON that is not an object")),
        Err(_) if body.trim_ascii_start().starts_with(b"<") => {
            return Err(malformed("an HTML page"));
        }
        Err(_) if body.is_empty() => return Err(malformed("an empty body")),
        Err(_) => return Err(malformed("a body that is not JSON")),
    };
    if let Some(error) = text_field(&value, "error") {
        return Err(ProviderFault::Refused {
            error,
            description: text_field(&value, "error_description"),
            http_status: status,
        });
    }
    if !(200..300).contains(&status) {
        return Err(malformed("an error without an OAuth error code"));
    }
    let access_token =
        text_field(&value, "access_token").ok_or_else(|| malformed("no access_token"))?;
    let token_type = match text_field(&value, "token_type") {
        Some(t) if t.eq_ignore_ascii_case("bearer") => "Bearer".to_owned(),
        Some(t) => t,
        None => "Bearer".to_owned(),
    };
    let expires_in = lifetime(&value, expires_in_millis).map_err(|r| malformed(&r))?;
    Ok(TokenSet {
        access_token: SecretString::new(access_token),
        token_type,
        expires_in,
        refresh_token: text_field(&value, "refresh_token").map(SecretString::new),
        scope: text_field(&value, "scope"),
        id_token: text_field(&value, "id_token"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> TokenSet {
        parse(200, body.as_bytes(), false).unwrap()
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
        let ms = parse(200, br#"{"access_token":"a","expires_in":3600000}"#, true).unwrap();
        assert_eq!(ms.expires_in, Some(Duration::seconds(3600)));
        assert!(parse(200, br#"{"access_token":"a","expires_in":"soon"}"#, false).is_err());
        assert!(parse(200, br#"{"access_token":"a","expires_in":-5}"#, false).is_err());
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
            false,
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
            parse(200, br#"{"error":"invalid_grant"}"#, false)
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
            let e = parse(status, body.as_bytes(), false).unwrap_err();
            assert!(e.to_string().contains(needle), "{body}: {e}");
            assert_eq!(e.http_status(), status);
        }
        assert_eq!(
            parse(503, b"<html/>", false).unwrap_err().code(),
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
            let _ = parse(rng.gen_range(100..600), &input, rng.gen_bool(0.5));
        }
    }

    #[test]
    fn the_access_token_never_shows_in_debug() {
        let t =
            ok(r#"{"access_token":"super-secret-access","refresh_token":"super-secret-refresh"}"#);
        let shown = format!("{t:?}");
        assert!(!shown.contains("super-secret"), "{shown}");
    }
}
