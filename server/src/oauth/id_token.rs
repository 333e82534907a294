//! Checking an OIDC Hybrid id_token before its code is exchanged:
//! signature against the provider's JWKS, `iss`, `aud`, `exp`/`iat` with a
//! small skew, `nonce` and `c_hash`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Allowed clock skew.
pub const SKEW_SECS: u64 = 60;

/// Why an id_token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdTokenError {
    /// Not a JWT, or an algorithm Quiver does not accept.
    #[error("the id_token is malformed or uses an unaccepted algorithm ({0})")]
    Malformed(String),
    /// No key in the provider's JWKS verifies it.
    #[error("the id_token's signature does not verify against the provider's keys ({0})")]
    Signature(String),
    /// A claim is wrong.
    #[error("the id_token's {0} is wrong")]
    Claim(&'static str),
}

/// The identity in a verified id_token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityClaims {
    /// Subject.
    pub sub: String,
    /// Email, when given.
    pub email: Option<String>,
    /// Name, when given.
    pub name: Option<String>,
}

/// `c_hash`/`at_hash` for SHA-256 algorithms: the left half of the hash, base64url.
pub fn half_hash(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// Verifies `id_token` and its binding to `code` and `nonce`.
pub fn verify(
    id_token: &str,
    jwks: &JwkSet,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    code: &str,
) -> Result<IdentityClaims, IdTokenError> {
    let header = jsonwebtoken::decode_header(id_token)
        .map_err(|e| IdTokenError::Malformed(e.to_string()))?;
    if !matches!(
        header.alg,
        Algorithm::RS256 | Algorithm::PS256 | Algorithm::ES256
    ) {
        return Err(IdTokenError::Malformed(format!("{:?}", header.alg)));
    }
    let candidates: Vec<_> = jwks
        .keys
        .iter()
        .filter(|k| header.kid.is_none() || k.common.key_id == header.kid)
        .collect();
    if candidates.is_empty() {
        return Err(IdTokenError::Signature("no key with this kid".into()));
    }
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[client_id]);
    validation.set_issuer(&[issuer.trim_end_matches('/'), issuer]);
    validation.leeway = SKEW_SECS;
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let mut last = String::from("no usable key");
    for jwk in candidates {
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        match jsonwebtoken::decode::<Value>(id_token, &key, &validation) {
            Ok(data) => return check_claims(&data.claims, nonce, code),
            Err(e) => match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => last = "bad signature".into(),
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    return Err(IdTokenError::Claim("exp"));
                }
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => {
                    return Err(IdTokenError::Claim("iss"));
                }
                jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                    return Err(IdTokenError::Claim("aud"));
                }
                other => last = format!("{other:?}"),
            },
        }
    }
    Err(IdTokenError::Signature(last))
}

fn check_claims(claims: &Value, nonce: &str, code: &str) -> Result<IdentityClaims, IdTokenError> {
    let now = chrono::Utc::now().timestamp();
    if claims["iat"]
        .as_i64()
        .is_none_or(|iat| iat > now + SKEW_SECS as i64)
    {
        return Err(IdTokenError::Claim("iat"));
    }
    if claims["nonce"].as_str() != Some(nonce) {
        return Err(IdTokenError::Claim("nonce"));
    }
    if claims["c_hash"].as_str() != Some(half_hash(code).as_str()) {
        return Err(IdTokenError::Claim("c_hash"));
    }
    Ok(IdentityClaims {
        sub: claims["sub"].as_str().unwrap_or_default().to_owned(),
        email: claims["email"].as_str().map(str::to_owned),
        name: claims["name"].as_str().map(str::to_owned),
    })
}

/// The identity in an id_token received directly from the token endpoint
/// over TLS (OIDC Core 3.1.3.7 allows trusting it without the signature);
/// used for display only.
pub fn unverified_identity(id_token: &str) -> Option<IdentityClaims> {
    let payload = id_token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    Some(IdentityClaims {
        sub: claims["sub"].as_str()?.to_owned(),
        email: claims["email"].as_str().map(str::to_owned),
        name: claims["name"].as_str().map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_hash_is_the_left_half_of_sha256() {
        // From OpenID Connect Core's examples: code "Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk"
        assert_eq!(
            half_hash("Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk"),
            "LDktKdoQak3Pk0cnXxCltA"
        );
    }

    use crate::oauth::signing_key::SigningKey;
    use serde_json::json;

    fn setup() -> (SigningKey, JwkSet) {
        let key = SigningKey::generate(Some("k1"));
        let jwks: JwkSet =
            serde_json::from_value(json!({"keys": [key.public_jwk.clone()]})).unwrap();
        (key, jwks)
    }

    fn claims(overrides: serde_json::Value) -> serde_json::Value {
        let now = chrono::Utc::now().timestamp();
        let mut c = json!({
            "iss": "https://idp.example", "aud": "client-1", "sub": "alice",
            "exp": now + 300, "iat": now, "nonce": "n-1", "c_hash": half_hash("the-code"),
            "email": "alice@example.com"
        });
        for (k, v) in overrides.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    #[test]
    fn a_genuine_id_token_passes_and_each_wrong_claim_is_named() {
        let (key, jwks) = setup();
        let check = |c: serde_json::Value| {
            verify(
                &key.sign(&c).unwrap(),
                &jwks,
                "https://idp.example",
                "client-1",
                "n-1",
                "the-code",
            )
        };
        let ok = check(claims(json!({}))).unwrap();
        assert_eq!(ok.sub, "alice");
        assert_eq!(ok.email.as_deref(), Some("alice@example.com"));
        let now = chrono::Utc::now().timestamp();
        for (overrides, claim) in [
            (json!({"nonce": "replayed"}), "nonce"),
            (json!({"c_hash": half_hash("another-code")}), "c_hash"),
            (json!({"aud": "someone-else"}), "aud"),
            (json!({"iss": "https://evil.example"}), "iss"),
            (json!({"exp": now - 3600}), "exp"),
            (json!({"iat": now + 3600}), "iat"),
        ] {
            assert_eq!(
                check(claims(overrides.clone())).unwrap_err(),
                IdTokenError::Claim(claim),
                "{overrides}"
            );
        }
        // Inside the skew is fine.
        assert!(check(claims(json!({"exp": now - 30}))).is_ok());
    }

    #[test]
    fn a_token_signed_by_another_key_fails_the_signature() {
        let (_, jwks) = setup();
        let stranger = SigningKey::generate(Some("k1"));
        let forged = stranger.sign(&claims(json!({}))).unwrap();
        assert!(matches!(
            verify(
                &forged,
                &jwks,
                "https://idp.example",
                "client-1",
                "n-1",
                "the-code"
            ),
            Err(IdTokenError::Signature(_))
        ));
    }

    #[test]
    fn malformed_tokens_and_unaccepted_algorithms_are_refused() {
        let jwks = JwkSet { keys: vec![] };
        assert!(matches!(
            verify("nope", &jwks, "i", "c", "n", "code"),
            Err(IdTokenError::Malformed(_))
        ));
        // alg "none"
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"sub":"x"}"#)
        );
        assert!(verify(&none, &jwks, "i", "c", "n", "code").is_err());
        // HS256 (a key-confusion attempt)
        let hs = format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"sub":"x"}"#)
        );
        assert!(matches!(
            verify(&hs, &jwks, "i", "c", "n", "code"),
            Err(IdTokenError::Malformed(_))
        ));
    }
}
