//! Checking an id_token: the signature against the provider's JWKS, then
//! `iss` (exactly the provider's issuer), `aud` (this client), `azp` (this
//! client, required when `aud` names several), `exp`/`iat` with a small
//! skew, `nonce` (the one sent, or none when none was sent), and the hashes
//! binding it to what came with it: `c_hash` to the code in the front
//! channel of OIDC Hybrid, `at_hash` to the access token when present.
//!
//! Only identities from id_tokens that passed here are stored and shown.

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
    /// Issued by someone else (a mix-up).
    #[error("the id_token was issued by {found:?}, not the provider's issuer {expected:?}")]
    Issuer {
        /// The token's `iss`.
        found: String,
        /// The provider's issuer.
        expected: String,
    },
    /// Not meant for this client.
    #[error("the id_token is for {found}, not this client ({expected:?})")]
    Audience {
        /// The token's `aud`, as JSON.
        found: String,
        /// This client's id.
        expected: String,
    },
    /// Several audiences and the authorized party is not this client.
    #[error(
        "the id_token names several audiences and its authorized party (azp) is {found}, not this client ({expected:?})"
    )]
    AuthorizedParty {
        /// The token's `azp`, as JSON (`null` when absent).
        found: String,
        /// This client's id.
        expected: String,
    },
    /// Another claim is wrong.
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

/// What an id_token must say to be accepted.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The provider's issuer, compared exactly.
    pub issuer: &'a str,
    /// This client's id: in `aud`, and `azp` when present.
    pub client_id: &'a str,
    /// The nonce sent in the authorization request; `None`: none was sent,
    /// and an id_token carrying one belongs to another request.
    pub nonce: Option<&'a str>,
    /// The code it came with in the front channel (`c_hash` required).
    pub code: Option<&'a str>,
    /// The access token it came with (`at_hash` checked when present).
    pub access_token: Option<&'a str>,
}

/// What a multi-tenant provider puts in its issuer where each user's own
/// tenant goes: Microsoft Entra ID's `common`, `organizations` and
/// `consumers` endpoints publish `https://login.microsoftonline.com/{tenantid}/v2.0`,
/// and each id_token's `iss` names the user's tenant, given again in its
/// `tid` claim.
pub const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// Whether `iss` is the issuer `expected` names: equal, or equal once the
/// tenant placeholder is replaced by the token's `tid` (a tenant id is a
/// GUID: letters, digits and dashes).
fn issuer_matches(expected: &str, iss: &str, tid: Option<&str>) -> bool {
    if !expected.contains(TENANT_PLACEHOLDER) {
        return iss == expected;
    }
    tid.filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .is_some_and(|tid| iss == expected.replace(TENANT_PLACEHOLDER, tid))
}

/// Whether a discovery document's `issuer` names the issuer it was
/// fetched for: equal (but for a trailing slash), or, with a tenant
/// placeholder, equal with one path segment in its place (the `common`
/// of the URL the admin typed).
pub fn names_issuer(stated: &str, requested: &str) -> bool {
    let stated = stated.trim_end_matches('/');
    let requested = requested.trim_end_matches('/');
    match stated.split_once(TENANT_PLACEHOLDER) {
        None => stated == requested,
        Some((before, after)) => requested
            .strip_prefix(before)
            .and_then(|rest| rest.strip_suffix(after))
            .is_some_and(|tenant| !tenant.is_empty() && !tenant.contains('/')),
    }
}

/// `c_hash`/`at_hash` for SHA-256 algorithms: the left half of the hash, base64url.
pub fn half_hash(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// Verifies `id_token` against the provider's keys and `expected`.
pub fn verify(
    id_token: &str,
    jwks: &JwkSet,
    expected: &Expected<'_>,
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
    // `iss` and `aud` are compared below, with messages that name them.
    validation.validate_aud = false;
    validation.leeway = SKEW_SECS;
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let mut last = String::from("no usable key");
    for jwk in candidates {
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        match jsonwebtoken::decode::<Value>(id_token, &key, &validation) {
            Ok(data) => return check_claims(&data.claims, expected),
            Err(e) => match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => last = "bad signature".into(),
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    return Err(IdTokenError::Claim("exp"));
                }
                jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(claim) => {
                    return Err(IdTokenError::Claim(match claim.as_str() {
                        "iss" => "iss",
                        "aud" => "aud",
                        "sub" => "sub",
                        "iat" => "iat",
                        _ => "exp",
                    }));
                }
                other => last = format!("{other:?}"),
            },
        }
    }
    Err(IdTokenError::Signature(last))
}

fn check_claims(claims: &Value, expected: &Expected<'_>) -> Result<IdentityClaims, IdTokenError> {
    // OIDC Core 3.1.3.7: the issuer matches exactly (a tenant placeholder
    // stands for the token's own tenant).
    let iss = claims["iss"].as_str().unwrap_or_default();
    if !issuer_matches(expected.issuer, iss, claims["tid"].as_str()) {
        return Err(IdTokenError::Issuer {
            found: iss.to_owned(),
            expected: expected.issuer.to_owned(),
        });
    }
    // `aud` contains this client; with several audiences, `azp` must be
    // this client; an `azp` is always this client.
    let audiences: Vec<&str> = match &claims["aud"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&expected.client_id) {
        return Err(IdTokenError::Audience {
            found: claims["aud"].to_string(),
            expected: expected.client_id.to_owned(),
        });
    }
    let azp = claims.get("azp");
    let several = matches!(&claims["aud"], Value::Array(many) if many.len() > 1);
    if (several || azp.is_some()) && azp.and_then(Value::as_str) != Some(expected.client_id) {
        return Err(IdTokenError::AuthorizedParty {
            found: azp.map_or_else(|| "absent".to_owned(), Value::to_string),
            expected: expected.client_id.to_owned(),
        });
    }
    let sub = claims["sub"].as_str().filter(|s| !s.is_empty());
    let Some(sub) = sub else {
        return Err(IdTokenError::Claim("sub"));
    };
    let now = chrono::Utc::now().timestamp();
    if claims["iat"]
        .as_i64()
        .is_none_or(|iat| iat > now + SKEW_SECS as i64)
    {
        return Err(IdTokenError::Claim("iat"));
    }
    let nonce_ok = match expected.nonce {
        Some(sent) => claims["nonce"].as_str() == Some(sent),
        None => claims.get("nonce").is_none(),
    };
    if !nonce_ok {
        return Err(IdTokenError::Claim("nonce"));
    }
    if let Some(code) = expected.code
        && claims["c_hash"].as_str() != Some(half_hash(code).as_str())
    {
        return Err(IdTokenError::Claim("c_hash"));
    }
    if let (Some(at_hash), Some(access_token)) = (claims.get("at_hash"), expected.access_token)
        && at_hash.as_str() != Some(half_hash(access_token).as_str())
    {
        return Err(IdTokenError::Claim("at_hash"));
    }
    Ok(IdentityClaims {
        sub: sub.to_owned(),
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
            "at_hash": half_hash("the-access-token"), "email": "alice@example.com"
        });
        for (k, v) in overrides.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    }

    const FRONT: Expected<'static> = Expected {
        issuer: "https://idp.example",
        client_id: "client-1",
        nonce: Some("n-1"),
        code: Some("the-code"),
        access_token: None,
    };

    #[test]
    fn a_genuine_id_token_passes_and_each_wrong_claim_is_named() {
        let (key, jwks) = setup();
        let check = |c: serde_json::Value| verify(&key.sign(&c).unwrap(), &jwks, &FRONT);
        let ok = check(claims(json!({}))).unwrap();
        assert_eq!(ok.sub, "alice");
        assert_eq!(ok.email.as_deref(), Some("alice@example.com"));
        let now = chrono::Utc::now().timestamp();
        for (overrides, claim) in [
            (json!({"nonce": "replayed"}), "nonce"),
            (json!({"nonce": null}), "nonce"),
            (json!({"c_hash": half_hash("another-code")}), "c_hash"),
            (json!({"c_hash": null}), "c_hash"),
            (json!({"exp": now - 3600}), "exp"),
            (json!({"iat": now + 3600}), "iat"),
            (json!({"sub": ""}), "sub"),
            (json!({"sub": null}), "sub"),
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
    fn a_tenant_placeholder_in_the_issuer_takes_the_tokens_own_tenant() {
        let (key, jwks) = setup();
        let tenant = "9188040d-6c67-4c5b-b112-36a304b66dad";
        let expected = Expected {
            issuer: "https://login.microsoftonline.com/{tenantid}/v2.0",
            ..FRONT
        };
        let check = |c: serde_json::Value| verify(&key.sign(&c).unwrap(), &jwks, &expected);
        let own = format!("https://login.microsoftonline.com/{tenant}/v2.0");
        assert!(check(claims(json!({"iss": own, "tid": tenant}))).is_ok());
        for (iss, tid) in [
            // Another tenant's issuer than the token's own tenant.
            (own.clone(), json!("72f988bf-86f1-41af-91ab-2d7cd011db47")),
            (own.clone(), json!(null)),
            (own.clone(), json!("")),
            (own.clone(), json!("x/../y")),
            // The placeholder itself is no tenant.
            (
                "https://login.microsoftonline.com/{tenantid}/v2.0".to_owned(),
                json!("{tenantid}"),
            ),
            (format!("https://evil.example/{tenant}/v2.0"), json!(tenant)),
        ] {
            let err = check(claims(json!({"iss": iss, "tid": tid}))).unwrap_err();
            assert!(
                matches!(err, IdTokenError::Issuer { .. }),
                "{iss} {tid}: {err:?}"
            );
        }
    }

    #[test]
    fn a_discovery_document_names_its_issuer_or_a_tenant_pattern_for_it() {
        let pattern = "https://login.microsoftonline.com/{tenantid}/v2.0";
        assert!(names_issuer("https://idp.example/", "https://idp.example"));
        assert!(!names_issuer(
            "https://idp.example/a",
            "https://idp.example"
        ));
        assert!(names_issuer(
            pattern,
            "https://login.microsoftonline.com/common/v2.0"
        ));
        for requested in [
            "https://login.microsoftonline.com//v2.0",
            "https://login.microsoftonline.com/a/b/v2.0",
            "https://evil.example/common/v2.0",
            "https://login.microsoftonline.com/common/v1.0",
        ] {
            assert!(!names_issuer(pattern, requested), "{requested}");
        }
    }

    #[test]
    fn the_issuer_must_match_exactly_and_the_message_names_both() {
        let (key, jwks) = setup();
        let check = |c: serde_json::Value| verify(&key.sign(&c).unwrap(), &jwks, &FRONT);
        for iss in [
            "https://evil.example",
            "https://idp.example/",
            "HTTPS://idp.example",
        ] {
            let err = check(claims(json!({ "iss": iss }))).unwrap_err();
            assert_eq!(
                err,
                IdTokenError::Issuer {
                    found: iss.into(),
                    expected: "https://idp.example".into()
                }
            );
            let message = err.to_string();
            assert!(
                message.contains(iss) && message.contains("\"https://idp.example\""),
                "{message}"
            );
        }
    }

    #[test]
    fn several_audiences_need_this_client_as_authorized_party() {
        let (key, jwks) = setup();
        let check = |c: serde_json::Value| verify(&key.sign(&c).unwrap(), &jwks, &FRONT);
        let both = json!(["client-1", "client-2"]);
        // Several audiences without azp, or with another azp: refused.
        for overrides in [
            json!({ "aud": both }),
            json!({ "aud": both, "azp": "client-2" }),
        ] {
            let err = check(claims(overrides.clone())).unwrap_err();
            assert!(
                matches!(err, IdTokenError::AuthorizedParty { .. }),
                "{overrides}: {err}"
            );
            assert!(err.to_string().contains("azp"), "{err}");
        }
        // An azp naming another client, even with one audience: refused.
        assert!(matches!(
            check(claims(json!({"azp": "client-2"}))).unwrap_err(),
            IdTokenError::AuthorizedParty { .. }
        ));
        // Several audiences with this client as azp: accepted.
        assert!(check(claims(json!({ "aud": both, "azp": "client-1" }))).is_ok());
        // One audience in an array: accepted.
        assert!(check(claims(json!({ "aud": ["client-1"] }))).is_ok());
        // Not among the audiences: refused, naming them.
        let err = check(claims(
            json!({"aud": ["client-2", "client-3"], "azp": "client-1"}),
        ))
        .unwrap_err();
        assert!(matches!(err, IdTokenError::Audience { .. }), "{err}");
        assert!(err.to_string().contains("client-2"), "{err}");
    }

    #[test]
    fn a_token_endpoint_id_token_is_bound_to_the_access_token_and_the_sent_nonce() {
        let (key, jwks) = setup();
        let back = Expected {
            code: None,
            access_token: Some("the-access-token"),
            ..FRONT
        };
        let check =
            |c: serde_json::Value, e: &Expected<'_>| verify(&key.sign(&c).unwrap(), &jwks, e);
        // No c_hash needed at the token endpoint; at_hash checked when present.
        assert!(check(claims(json!({"c_hash": null})), &back).is_ok());
        assert!(check(claims(json!({"at_hash": null})), &back).is_ok());
        assert_eq!(
            check(claims(json!({"at_hash": half_hash("another")})), &back).unwrap_err(),
            IdTokenError::Claim("at_hash")
        );
        // Authorization Code without a nonce: an id_token with one is not ours.
        let code_flow = Expected {
            nonce: None,
            ..back
        };
        assert!(check(claims(json!({"nonce": null})), &code_flow).is_ok());
        assert_eq!(
            check(claims(json!({})), &code_flow).unwrap_err(),
            IdTokenError::Claim("nonce")
        );
    }

    #[test]
    fn a_token_signed_by_another_key_fails_the_signature() {
        let (_, jwks) = setup();
        let stranger = SigningKey::generate(Some("k1"));
        let forged = stranger.sign(&claims(json!({}))).unwrap();
        assert!(matches!(
            verify(&forged, &jwks, &FRONT),
            Err(IdTokenError::Signature(_))
        ));
    }

    #[test]
    fn malformed_tokens_and_unaccepted_algorithms_are_refused() {
        let jwks = JwkSet { keys: vec![] };
        assert!(matches!(
            verify("nope", &jwks, &FRONT),
            Err(IdTokenError::Malformed(_))
        ));
        // alg "none"
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"sub":"x"}"#)
        );
        assert!(verify(&none, &jwks, &FRONT).is_err());
        // HS256 (a key-confusion attempt)
        let hs = format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"sub":"x"}"#)
        );
        assert!(matches!(
            verify(&hs, &jwks, &FRONT),
            Err(IdTokenError::Malformed(_))
        ));
    }
}
