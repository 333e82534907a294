//! X.509 certificates for a provider's signing key. Some providers (Microsoft
//! Entra ID among them) register a client's key as a certificate and find
//! it by the certificate's thumbprint: client assertions then carry
//! `x5t#S256` (SHA-256 of the certificate's DER) and, for the providers that
//! want it, `x5t` (SHA-1). A certificate is public: it is stored as it came
//! and shown whole.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use ring::digest::{SHA1_FOR_LEGACY_USE_ONLY, SHA256, digest};

use super::signing_key::{SigningAlg, SigningKey, to_pem};

/// How long a certificate Quiver makes for its own key is valid.
pub const SELF_SIGNED_DAYS: i64 = 730;

/// A parsed certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The certificate as PEM: its `CERTIFICATE` block, followed by those
    /// of the intermediate certificates that came with it (sent with it in
    /// mutual TLS and listed in a JWK's `x5c`).
    pub pem: String,
    /// Its subject, as `CN=…, O=…`.
    pub subject: String,
    /// Its issuer.
    pub issuer: String,
    /// Start of validity.
    pub not_before: DateTime<Utc>,
    /// End of validity.
    pub not_after: DateTime<Utc>,
    der: Vec<u8>,
    public_key: Vec<u8>,
    /// The DER of each intermediate certificate after it, in order.
    chain: Vec<Vec<u8>>,
}

/// Most intermediate certificates kept after a certificate.
const MAX_CHAIN: usize = 8;

/// Why a certificate was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertificateError {
    /// Not a PEM certificate.
    #[error("is not a PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NotPem,
    /// A PEM block that does not hold an X.509 certificate.
    #[error("could not be read as an X.509 certificate: {0}")]
    Malformed(String),
    /// The certificate names another public key.
    #[error("is for another key than the provider's private key")]
    OtherKey,
    /// Making a certificate failed.
    #[error("could not be made: {0}")]
    Generate(String),
}

impl Certificate {
    /// Reads a PEM text: the certificate first, then any intermediate
    /// certificates of its chain (as a CA hands them out).
    pub fn from_pem(text: &str) -> Result<Self, CertificateError> {
        let mut rest = text.trim().as_bytes();
        let mut blocks = Vec::new();
        while !rest.is_empty() {
            let (after, block) =
                x509_parser::pem::parse_x509_pem(rest).map_err(|_| CertificateError::NotPem)?;
            if block.label != "CERTIFICATE" {
                return Err(CertificateError::NotPem);
            }
            blocks.push(block.contents);
            if blocks.len() > MAX_CHAIN + 1 {
                return Err(CertificateError::Malformed(format!(
                    "a chain of more than {MAX_CHAIN} intermediate certificates"
                )));
            }
            rest = after.trim_ascii();
        }
        let Some((leaf, chain)) = blocks.split_first() else {
            return Err(CertificateError::NotPem);
        };
        let mut certificate = Self::from_der(leaf)?;
        for der in chain {
            // Each must be a certificate too.
            Self::from_der(der)?;
            certificate.pem.push_str(&to_pem("CERTIFICATE", der));
            certificate.chain.push(der.clone());
        }
        Ok(certificate)
    }

    fn from_der(der: &[u8]) -> Result<Self, CertificateError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| CertificateError::Malformed(e.to_string()))?;
        let time = |t: x509_parser::time::ASN1Time| {
            DateTime::from_timestamp(t.timestamp(), 0)
                .ok_or_else(|| CertificateError::Malformed("a date out of range".into()))
        };
        Ok(Self {
            pem: to_pem("CERTIFICATE", der),
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            not_before: time(cert.validity().not_before)?,
            not_after: time(cert.validity().not_after)?,
            public_key: cert.public_key().subject_public_key.data.to_vec(),
            der: der.to_vec(),
            chain: Vec::new(),
        })
    }

    /// Checks that this certificate is for `key`.
    pub fn check_key(&self, key: &SigningKey) -> Result<(), CertificateError> {
        if self.public_key == key.public_key {
            Ok(())
        } else {
            Err(CertificateError::OtherKey)
        }
    }

    /// A self-signed certificate for `key`, named `common_name`, valid from
    /// `now` for [`SELF_SIGNED_DAYS`]: what an admin uploads at a provider
    /// that registers certificates.
    pub fn self_signed(
        key: &SigningKey,
        common_name: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, CertificateError> {
        let generate = |e: rcgen::Error| CertificateError::Generate(e.to_string());
        let pair = match key.alg {
            SigningAlg::Es256 => rcgen::KeyPair::from_pem(key.pem.expose()),
            SigningAlg::Rs256 | SigningAlg::Ps256 => {
                rcgen::KeyPair::from_pem_and_sign_algo(key.pem.expose(), &rcgen::PKCS_RSA_SHA256)
            }
        }
        .map_err(generate)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(generate)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let at = |t: DateTime<Utc>| {
            time::OffsetDateTime::from_unix_timestamp(t.timestamp())
                .map_err(|e| CertificateError::Generate(e.to_string()))
        };
        params.not_before = at(now - chrono::Duration::minutes(5))?;
        params.not_after = at(now + chrono::Duration::days(SELF_SIGNED_DAYS))?;
        let cert = params.self_signed(&pair).map_err(generate)?;
        let made = Self::from_der(cert.der())?;
        made.check_key(key)?;
        Ok(made)
    }

    /// `x5t#S256`: SHA-256 of the DER, base64url.
    pub fn x5t_s256(&self) -> String {
        URL_SAFE_NO_PAD.encode(digest(&SHA256, &self.der))
    }

    /// `x5t`: SHA-1 of the DER, base64url.
    pub fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(digest(&SHA1_FOR_LEGACY_USE_ONLY, &self.der))
    }

    /// The SHA-1 thumbprint in hexadecimal, as provider portals (Entra ID)
    /// list a certificate.
    pub fn sha1_hex(&self) -> String {
        hex::encode_upper(digest(&SHA1_FOR_LEGACY_USE_ONLY, &self.der))
    }

    /// A JWK's `x5c`: the certificate's DER and then its chain's, base64.
    pub fn x5c(&self) -> Vec<String> {
        std::iter::once(&self.der)
            .chain(&self.chain)
            .map(|der| STANDARD.encode(der))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openssl(args: &[&str], input: Option<&str>) -> String {
        use std::io::Write;
        let mut child = std::process::Command::new("openssl")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("openssl runs");
        if let Some(input) = input {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        } else {
            drop(child.stdin.take());
        }
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "openssl {args:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// The fingerprint openssl prints (`sha256 Fingerprint=AB:CD:…`) as bytes.
    fn fingerprint(cert: &str, algorithm: &str) -> Vec<u8> {
        let line = openssl(&["x509", "-noout", "-fingerprint", algorithm], Some(cert));
        let hex = line.trim().rsplit('=').next().unwrap().replace(':', "");
        hex::decode(hex).unwrap()
    }

    #[test]
    fn thumbprints_are_those_openssl_computes() {
        let key = SigningKey::generate(None);
        let cert = Certificate::self_signed(&key, "Quiver test", Utc::now()).unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(cert.x5t_s256()).unwrap(),
            fingerprint(&cert.pem, "-sha256")
        );
        assert_eq!(
            URL_SAFE_NO_PAD.decode(cert.x5t()).unwrap(),
            fingerprint(&cert.pem, "-sha1")
        );
        assert_eq!(
            cert.sha1_hex(),
            hex::encode_upper(fingerprint(&cert.pem, "-sha1"))
        );
        assert_eq!(cert.subject, "CN=Quiver test");
        assert_eq!(cert.issuer, "CN=Quiver test");
        let days = (cert.not_after - cert.not_before).num_days();
        assert!((SELF_SIGNED_DAYS..=SELF_SIGNED_DAYS + 1).contains(&days));
        // The PEM it gives reads back as the same certificate.
        assert_eq!(Certificate::from_pem(&cert.pem).unwrap(), cert);
    }

    #[test]
    fn a_certificate_made_elsewhere_is_read_and_matched_to_its_key() {
        let pem = openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
            None,
        );
        let key = SigningKey::from_pem(&pem, None, None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("key.pem");
        std::fs::write(&key_file, &pem).unwrap();
        let cert_pem = openssl(
            &[
                "req",
                "-new",
                "-x509",
                "-key",
                key_file.to_str().unwrap(),
                "-subj",
                "/CN=app.example/O=Example",
                "-days",
                "30",
            ],
            None,
        );
        let cert = Certificate::from_pem(&cert_pem).unwrap();
        assert_eq!(cert.subject, "CN=app.example, O=Example");
        cert.check_key(&key).unwrap();
        assert_eq!(
            cert.check_key(&SigningKey::generate(None)),
            Err(CertificateError::OtherKey)
        );
        // Quiver makes RSA certificates too.
        let made = Certificate::self_signed(&key, "rsa", Utc::now()).unwrap();
        made.check_key(&key).unwrap();
    }

    #[test]
    fn a_chain_after_the_certificate_is_kept_and_listed() {
        let key = SigningKey::generate(None);
        let leaf = Certificate::self_signed(&key, "leaf", Utc::now()).unwrap();
        let ca = Certificate::self_signed(&SigningKey::generate(None), "ca", Utc::now()).unwrap();
        let text = format!("{}\n{}", leaf.pem, ca.pem);
        let read = Certificate::from_pem(&text).unwrap();
        // The first certificate is the one described and matched.
        assert_eq!(read.subject, leaf.subject);
        assert_eq!(read.x5t_s256(), leaf.x5t_s256());
        read.check_key(&key).unwrap();
        assert_eq!(read.pem.matches("BEGIN CERTIFICATE").count(), 2);
        assert_eq!(read.x5c(), [leaf.x5c(), ca.x5c()].concat());
        // Read again from what is stored: the same.
        assert_eq!(Certificate::from_pem(&read.pem).unwrap(), read);
        // Anything but certificates after it is refused.
        let with_key = format!("{}{}", leaf.pem, key.pem.expose());
        assert_eq!(
            Certificate::from_pem(&with_key),
            Err(CertificateError::NotPem)
        );
    }

    #[test]
    fn what_is_not_a_certificate_is_refused_with_why() {
        assert_eq!(
            Certificate::from_pem("hello"),
            Err(CertificateError::NotPem)
        );
        let key = SigningKey::generate(None);
        assert_eq!(
            Certificate::from_pem(key.pem.expose()),
            Err(CertificateError::NotPem)
        );
        assert!(matches!(
            Certificate::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            Err(CertificateError::Malformed(_))
        ));
    }
}
