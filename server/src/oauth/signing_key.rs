//! Private keys for Private Key JWT client authentication: uploaded as a
//! PKCS#8 PEM (RSA for RS256/PS256, P-256 for ES256) or generated (ES256),
//! with the public JWK that is registered at the provider.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::rsa::PublicKeyComponents;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

use super::certificate::Certificate;
use crate::secret::SecretString;

/// The JWS algorithms Quiver signs client assertions with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// ECDSA P-256 with SHA-256.
    Es256,
}

impl SigningAlg {
    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::Es256 => "ES256",
        }
    }

    /// Parses a JOSE name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "RS256" => Some(Self::Rs256),
            "PS256" => Some(Self::Ps256),
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }

    /// The `jsonwebtoken` algorithm.
    pub fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Rs256 => jsonwebtoken::Algorithm::RS256,
            Self::Ps256 => jsonwebtoken::Algorithm::PS256,
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

/// A usable private key.
#[derive(Debug, Clone)]
pub struct SigningKey {
    /// PKCS#8 PEM (secret).
    pub pem: SecretString,
    /// The algorithm.
    pub alg: SigningAlg,
    /// The key id (`kid`).
    pub key_id: String,
    /// The public JWK (with `kid`, `alg`, `use`; and `x5c`, `x5t#S256` with
    /// a certificate).
    pub public_jwk: Value,
    /// The public key as a certificate carries it (RSA: the DER
    /// `RSAPublicKey`; P-256: the uncompressed point).
    pub public_key: Vec<u8>,
    /// The certificate the provider knows this key by, if any.
    pub certificate: Option<Certificate>,
    /// Whether assertions also carry the certificate's SHA-1 thumbprint
    /// (`x5t`), as Microsoft Entra ID wants.
    pub send_sha1_thumbprint: bool,
}

/// Why a key was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// Not a PKCS#8 PEM.
    #[error(
        "is not a PEM private key in PKCS#8 form (-----BEGIN PRIVATE KEY-----); convert one with `openssl pkcs8 -topk8 -nocrypt -in key.pem`"
    )]
    NotPkcs8,
    /// A key of another type or size.
    #[error("is neither an RSA key (2048 bits or more) nor a P-256 EC key")]
    Unsupported,
    /// The algorithm does not fit the key.
    #[error("{alg} cannot be used with this {kind} key")]
    AlgMismatch {
        /// Requested algorithm.
        alg: &'static str,
        /// Key type.
        kind: &'static str,
    },
}

fn pkcs8_der(pem: &str) -> Result<Vec<u8>, KeyError> {
    let pem = pem.trim();
    let body = pem
        .strip_prefix("-----BEGIN PRIVATE KEY-----")
        .and_then(|rest| rest.trim_end().strip_suffix("-----END PRIVATE KEY-----"))
        .ok_or(KeyError::NotPkcs8)?;
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(compact).map_err(|_| KeyError::NotPkcs8)
}

/// DER as a PEM block labelled `label` (`PRIVATE KEY`, `CERTIFICATE`).
pub(super) fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// The key's JWK thumbprint (RFC 7638): SHA-256 over the required members
/// in lexicographic order without whitespace, base64url. Used whole as the
/// default key id, since that is the id most providers and tools compute
/// for a key registered without one.
fn thumbprint(public: &Value) -> String {
    use sha2::{Digest, Sha256};
    let canonical = match public["kty"].as_str() {
        Some("RSA") => json!({"e": public["e"], "kty": "RSA", "n": public["n"]}).to_string(),
        _ => json!({"crv": public["crv"], "kty": "EC", "x": public["x"], "y": public["y"]})
            .to_string(),
    };
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

impl SigningKey {
    /// Loads a PEM; `alg` defaults to RS256 for RSA keys and ES256 for EC keys.
    pub fn from_pem(
        pem: &str,
        alg: Option<SigningAlg>,
        key_id: Option<&str>,
    ) -> Result<Self, KeyError> {
        let der = pkcs8_der(pem)?;
        let public_key;
        let (alg, mut jwk) = if let Ok(rsa) = RsaKeyPair::from_pkcs8(&der) {
            let alg = alg.unwrap_or(SigningAlg::Rs256);
            if alg == SigningAlg::Es256 {
                return Err(KeyError::AlgMismatch {
                    alg: "ES256",
                    kind: "RSA",
                });
            }
            public_key = rsa.public().as_ref().to_vec();
            let parts = PublicKeyComponents::<Vec<u8>>::from(rsa.public());
            let strip = |b: &[u8]| {
                let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
                URL_SAFE_NO_PAD.encode(&b[start..])
            };
            (
                alg,
                json!({"kty": "RSA", "n": strip(&parts.n), "e": strip(&parts.e)}),
            )
        } else if let Ok(ec) =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &SystemRandom::new())
        {
            let alg = alg.unwrap_or(SigningAlg::Es256);
            if alg != SigningAlg::Es256 {
                return Err(KeyError::AlgMismatch {
                    alg: alg.as_str(),
                    kind: "EC",
                });
            }
            let point = ec.public_key().as_ref();
            public_key = point.to_vec();
            (
                alg,
                json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])}),
            )
        } else {
            return Err(KeyError::Unsupported);
        };
        let key_id = key_id
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map_or_else(|| thumbprint(&jwk), str::to_owned);
        jwk["kid"] = json!(key_id);
        jwk["alg"] = json!(alg.as_str());
        jwk["use"] = json!("sig");
        Ok(Self {
            pem: SecretString::new(to_pem("PRIVATE KEY", &der)),
            alg,
            key_id,
            public_jwk: jwk,
            public_key,
            certificate: None,
            send_sha1_thumbprint: false,
        })
    }

    /// This key known by `certificate` (checked to be for this key); the
    /// public JWK then carries it too (`x5c`, `x5t#S256`).
    pub fn with_certificate(
        mut self,
        certificate: Certificate,
        send_sha1_thumbprint: bool,
    ) -> Result<Self, super::certificate::CertificateError> {
        certificate.check_key(&self)?;
        self.public_jwk["x5c"] = json!(certificate.x5c());
        self.public_jwk["x5t#S256"] = json!(certificate.x5t_s256());
        if send_sha1_thumbprint {
            self.public_jwk["x5t"] = json!(certificate.x5t());
        }
        self.certificate = Some(certificate);
        self.send_sha1_thumbprint = send_sha1_thumbprint;
        Ok(self)
    }

    /// Generates a new P-256 key for ES256.
    pub fn generate(key_id: Option<&str>) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("the system random generator works");
        Self::from_pem(
            &to_pem("PRIVATE KEY", pkcs8.as_ref()),
            Some(SigningAlg::Es256),
            key_id,
        )
        .expect("a freshly generated key loads")
    }

    /// Signs a client assertion (RFC 7523) with this key.
    pub fn sign(&self, claims: &Value) -> Result<String, String> {
        let key = match self.alg {
            SigningAlg::Es256 => {
                jsonwebtoken::EncodingKey::from_ec_pem(self.pem.expose().as_bytes())
            }
            _ => jsonwebtoken::EncodingKey::from_rsa_pem(self.pem.expose().as_bytes()),
        }
        .map_err(|e| e.to_string())?;
        let mut header = jsonwebtoken::Header::new(self.alg.jwt());
        header.kid = Some(self.key_id.clone());
        if let Some(certificate) = &self.certificate {
            header.x5t_s256 = Some(certificate.x5t_s256());
            if self.send_sha1_thumbprint {
                header.x5t = Some(certificate.x5t());
            }
        }
        jsonwebtoken::encode(&header, claims, &key).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_and_verify_with_their_public_jwk() {
        let key = SigningKey::generate(Some("k1"));
        assert_eq!(key.alg, SigningAlg::Es256);
        assert_eq!(key.public_jwk["kid"], "k1");
        assert!(
            key.public_jwk.get("d").is_none(),
            "the public JWK holds no private part"
        );
        let jwt = key
            .sign(&json!({"sub": "x", "exp": 4_000_000_000u64}))
            .unwrap();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.public_jwk.clone()).unwrap();
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<Value>(&jwt, &decoding, &validation).unwrap();
        assert_eq!(data.claims["sub"], "x");
        assert_eq!(data.header.kid.as_deref(), Some("k1"));
        // The PEM round-trips and takes its thumbprint as id when none is given.
        let again = SigningKey::from_pem(key.pem.expose(), None, None).unwrap();
        assert_eq!(again.public_jwk["x"], key.public_jwk["x"]);
        assert_eq!(again.key_id, thumbprint(&again.public_jwk));
        assert_eq!(again.key_id.len(), 43, "a whole SHA-256, base64url");
    }

    #[test]
    fn the_default_key_id_is_the_rfc_7638_thumbprint() {
        // The example of RFC 7638, section 3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(&jwk),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn bad_pems_are_explained() {
        assert_eq!(
            SigningKey::from_pem("hello", None, None).unwrap_err(),
            KeyError::NotPkcs8
        );
        assert_eq!(
            SigningKey::from_pem(
                "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
                None,
                None
            )
            .unwrap_err(),
            KeyError::NotPkcs8
        );
        assert_eq!(
            SigningKey::from_pem(
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
                None,
                None
            )
            .unwrap_err(),
            KeyError::Unsupported
        );
        let ec = SigningKey::generate(None);
        assert!(matches!(
            SigningKey::from_pem(ec.pem.expose(), Some(SigningAlg::Rs256), None).unwrap_err(),
            KeyError::AlgMismatch { .. }
        ));
    }
}
