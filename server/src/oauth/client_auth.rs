//! Client authentication at the token, refresh and revocation endpoints:
//! `client_secret_basic`, `client_secret_post`, `private_key_jwt` (RFC 7523),
//! `none`, and mutual TLS (RFC 8705: `tls_client_auth`,
//! `self_signed_tls_client_auth`, whose certificate the HTTP client presents). Refresh and revocation authenticate exactly as token
//! requests do.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use serde_json::json;

use super::signing_key::SigningKey;
use crate::secret::SecretString;

pub use app::providers::ClientAuthMethod;

/// Everything needed to authenticate one request.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    /// The method.
    pub method: ClientAuthMethod,
    /// The client id.
    pub client_id: String,
    /// The secret, for the secret methods.
    pub client_secret: Option<SecretString>,
    /// The key, for `private_key_jwt`.
    pub key: Option<SigningKey>,
    /// The assertion's `aud`.
    pub audience: String,
    /// With HTTP Basic, `client_id` goes in the body too (providers that
    /// read it only from there).
    pub client_id_in_body: bool,
}

/// Why the request could not be authenticated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClientAuthError {
    /// No client id.
    #[error("no client id is set (the provider's default, or the token's own)")]
    NoClientId,
    /// A secret method without a secret.
    #[error("no client secret is set for {0}")]
    NoSecret(&'static str),
    /// `private_key_jwt` without a key.
    #[error("the provider has no private key for private_key_jwt")]
    NoKey,
    /// Signing failed.
    #[error("could not sign the client assertion: {0}")]
    Sign(String),
}

/// Lifetime of a client assertion: RFC 7523 asks for short ones.
pub const ASSERTION_LIFETIME_SECS: i64 = 120;

fn form_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

impl ClientAuth {
    /// Adds the authentication to a form (and returns the Authorization
    /// header value when one is needed).
    pub fn apply(
        &self,
        form: &mut Vec<(String, String)>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<SecretString>, ClientAuthError> {
        if self.client_id.is_empty() {
            return Err(ClientAuthError::NoClientId);
        }
        let secret = |name| {
            self.client_secret
                .as_ref()
                .filter(|s| !s.is_empty())
                .ok_or(ClientAuthError::NoSecret(name))
        };
        match self.method {
            ClientAuthMethod::ClientSecretBasic => {
                let secret = secret("client_secret_basic")?;
                // RFC 6749 §2.3.1: both parts form-encoded before Base64.
                let pair = format!(
                    "{}:{}",
                    form_encode(&self.client_id),
                    form_encode(secret.expose())
                );
                if self.client_id_in_body {
                    form.push(("client_id".into(), self.client_id.clone()));
                }
                Ok(Some(SecretString::new(format!(
                    "Basic {}",
                    STANDARD.encode(pair)
                ))))
            }
            ClientAuthMethod::ClientSecretPost => {
                let secret = secret("client_secret_post")?;
                form.push(("client_id".into(), self.client_id.clone()));
                form.push(("client_secret".into(), secret.expose().to_owned()));
                Ok(None)
            }
            // Mutual TLS proves the client in the handshake (the HTTP client
            // carries the certificate); the request names the client.
            ClientAuthMethod::None
            | ClientAuthMethod::TlsClientAuth
            | ClientAuthMethod::SelfSignedTlsClientAuth => {
                form.push(("client_id".into(), self.client_id.clone()));
                Ok(None)
            }
            ClientAuthMethod::PrivateKeyJwt => {
                let key = self.key.as_ref().ok_or(ClientAuthError::NoKey)?;
                let mut jti = [0u8; 16];
                rand::rngs::OsRng.fill_bytes(&mut jti);
                let claims = json!({
                    "iss": self.client_id,
                    "sub": self.client_id,
                    "aud": self.audience,
                    "jti": hex::encode(jti),
                    "iat": now.timestamp(),
                    "nbf": now.timestamp(),
                    "exp": now.timestamp() + ASSERTION_LIFETIME_SECS,
                });
                let assertion = key.sign(&claims).map_err(ClientAuthError::Sign)?;
                form.push(("client_id".into(), self.client_id.clone()));
                form.push((
                    "client_assertion_type".into(),
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push(("client_assertion".into(), assertion));
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(method: ClientAuthMethod) -> ClientAuth {
        ClientAuth {
            method,
            client_id: "my client".into(),
            client_secret: Some(SecretString::new("s3cr:t&")),
            key: Some(SigningKey::generate(Some("kid-1"))),
            audience: "https://issuer.example".into(),
            client_id_in_body: false,
        }
    }

    #[test]
    fn basic_encodes_both_parts() {
        let mut form = Vec::new();
        let header = auth(ClientAuthMethod::ClientSecretBasic)
            .apply(&mut form, chrono::Utc::now())
            .unwrap()
            .unwrap();
        let decoded = String::from_utf8(
            STANDARD
                .decode(header.expose().strip_prefix("Basic ").unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(decoded, "my+client:s3cr%3At%26");
        assert!(form.is_empty());
    }

    #[test]
    fn post_and_none_put_the_client_in_the_form() {
        let mut form = Vec::new();
        assert!(
            auth(ClientAuthMethod::ClientSecretPost)
                .apply(&mut form, chrono::Utc::now())
                .unwrap()
                .is_none()
        );
        assert_eq!(
            form,
            vec![
                ("client_id".into(), "my client".into()),
                ("client_secret".into(), "s3cr:t&".into())
            ]
        );
        let mut form = Vec::new();
        auth(ClientAuthMethod::None)
            .apply(&mut form, chrono::Utc::now())
            .unwrap();
        assert_eq!(form, vec![("client_id".into(), "my client".into())]);
    }

    #[test]
    fn private_key_jwt_assertion_has_the_rfc_7523_claims() {
        let now = chrono::Utc::now();
        let a = auth(ClientAuthMethod::PrivateKeyJwt);
        let mut form = Vec::new();
        a.apply(&mut form, now).unwrap();
        let assertion = &form
            .iter()
            .find(|(k, _)| k == "client_assertion")
            .unwrap()
            .1;
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(a.key.as_ref().unwrap().public_jwk.clone()).unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        v.set_audience(&["https://issuer.example"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            assertion,
            &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
            &v,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["iss"], "my client");
        assert_eq!(claims["sub"], "my client");
        let exp = claims["exp"].as_i64().unwrap();
        assert!(exp > now.timestamp() && exp <= now.timestamp() + 300);
        let mut again = Vec::new();
        a.apply(&mut again, now).unwrap();
        let jti = |f: &Vec<(String, String)>| {
            let jwt = &f.iter().find(|(k, _)| k == "client_assertion").unwrap().1;
            let payload = jwt.split('.').nth(1).unwrap();
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()["jti"].clone()
        };
        assert_ne!(jti(&form), jti(&again), "every assertion has its own jti");
    }

    #[test]
    fn missing_parts_are_named() {
        let mut a = auth(ClientAuthMethod::ClientSecretBasic);
        a.client_secret = None;
        assert_eq!(
            a.apply(&mut Vec::new(), chrono::Utc::now()).unwrap_err(),
            ClientAuthError::NoSecret("client_secret_basic")
        );
        a.client_id.clear();
        assert_eq!(
            a.apply(&mut Vec::new(), chrono::Utc::now()).unwrap_err(),
            ClientAuthError::NoClientId
        );
    }
}
