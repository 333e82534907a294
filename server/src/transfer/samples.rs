//! Bundles for tests: small, valid, and touching every field kind.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};

use super::bundle::{
    Bundle, ProviderEntry, ProviderSecret, SecretsHeader, Source, TokenEntry, TokenSecret,
};
use super::passphrase::{BundleKey, SecretSlot};
use crate::secret::SecretString;

/// Two providers and three tokens, no secrets.
pub(crate) fn bundle() -> Bundle {
    let mut b = Bundle::new(
        Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap(),
        Source {
            instance: Some("https://quiver.example".into()),
            quiver_version: "0.1.0".into(),
        },
    );
    b.providers = vec![
        provider("p1", "Example AS", "client_secret_basic"),
        ProviderEntry {
            signing_alg: Some("ES256".into()),
            key_id: Some("k1".into()),
            ..provider("p2", "Machine AS", "private_key_jwt")
        },
    ];
    b.tokens = vec![
        TokenEntry {
            owner_email: Some("ada@example.com".into()),
            scope: Some("openid profile".into()),
            additional_values: BTreeMap::from([("audience".into(), "api".into())]),
            ..token("t1", "Browser token", "p1", "authorization_code")
        },
        token("t2", "Machine token", "p2", "client_credentials"),
        TokenEntry {
            username: Some("ada".into()),
            ..token("t3", "Password token", "p1", "password")
        },
    ];
    b
}

/// [`bundle`] with every secret field sealed under `key`; the plaintext of
/// each is `<entry id>/<field>`.
pub(crate) fn sealed_bundle(key: &BundleKey, header: &SecretsHeader) -> Bundle {
    let mut b = bundle();
    b.secrets = Some(header.clone());
    for p in &mut b.providers {
        let seal = |field: ProviderSecret| {
            let plain = SecretString::new(format!("{}/{}", p.id, field.as_str()));
            Some(key.seal(SecretSlot::provider(&p.id, field), &plain))
        };
        p.client_secret = seal(ProviderSecret::ClientSecret);
        p.private_key = seal(ProviderSecret::PrivateKey);
        p.next_client_secret = seal(ProviderSecret::NextClientSecret);
    }
    for t in &mut b.tokens {
        let seal = |field: TokenSecret| {
            let plain = SecretString::new(format!("{}/{}", t.id, field.as_str()));
            Some(key.seal(SecretSlot::token(&t.id, field), &plain))
        };
        t.client_secret = seal(TokenSecret::ClientSecret);
        t.password = seal(TokenSecret::Password);
        t.access_token = seal(TokenSecret::AccessToken);
        t.refresh_token = seal(TokenSecret::RefreshToken);
        t.next_client_secret = seal(TokenSecret::NextClientSecret);
    }
    b
}

/// [`bundle`] as pretty JSON.
pub(crate) fn json() -> Vec<u8> {
    serde_json::to_vec_pretty(&bundle()).unwrap()
}

/// [`bundle`] as a JSON value, for editing one field in a test.
pub(crate) fn value() -> serde_json::Value {
    serde_json::to_value(bundle()).unwrap()
}

fn provider(id: &str, name: &str, method: &str) -> ProviderEntry {
    ProviderEntry {
        id: id.into(),
        name: name.into(),
        issuer: Some("https://as.example".into()),
        authorization_endpoint: Some("https://as.example/authorize".into()),
        token_endpoint: "https://as.example/token".into(),
        refresh_endpoint: None,
        revocation_endpoint: Some("https://as.example/revoke".into()),
        jwks_uri: Some("https://as.example/jwks".into()),
        client_id: Some("client".into()),
        client_auth_method: method.into(),
        key_id: None,
        signing_alg: None,
        assertion_audience: None,
        pkce: true,
        scope_separator: " ".into(),
        default_lifetime_secs: Some(3600),
        expires_in_millis: false,
        authorize_params: BTreeMap::from([("prompt".into(), "consent".into())]),
        token_params: BTreeMap::new(),
        connect_timeout_ms: 5_000,
        timeout_ms: 30_000,
        iss_parameter_supported: true,
        refresh_concurrency: 4,
        refresh_rate_per_minute: 600,
        certificate: None,
        send_sha1_thumbprint: false,
        template: None,
        default_scope: None,
        required_scope: None,
        token_response_path: None,
        keep_response_fields: Vec::new(),
        refresh_token_rotates: false,
        omit_scope_on_refresh: true,
        omit_code_on_refresh: true,
        url_encode_refresh_token: false,
        send_client_id_in_body: false,
        pushed_authorization_request_endpoint: None,
        device_authorization_endpoint: None,
        refresh_token_lifetime_secs: None,
        refresh_token_lifetime_sliding: false,
        test_request_url: None,
        test_request_method: None,
        test_after_renewal: false,
        revocation_format: app::providers::RevocationFormat::Form,
        client_secret_expires_at: None,
        next_client_secret_expires_at: None,
        client_secret: None,
        private_key: None,
        next_client_secret: None,
    }
}

fn token(id: &str, name: &str, provider_id: &str, flow: &str) -> TokenEntry {
    TokenEntry {
        id: id.into(),
        name: name.into(),
        provider_id: provider_id.into(),
        owner_email: None,
        flow: flow.into(),
        use_default_keys: true,
        client_id: None,
        username: None,
        resource: None,
        scope: None,
        additional_values: BTreeMap::new(),
        refresh_margin_secs: 60,
        auto_refresh: true,
        refresh_lead_secs: 300,
        test_request_url: None,
        test_request_method: None,
        token_type: Some("Bearer".into()),
        expires_at: Some(Utc.with_ymd_and_hms(2025, 1, 2, 4, 4, 5).unwrap()),
        granted_scope: None,
        response_fields: None,
        refresh_token_expires_at: None,
        client_secret_expires_at: None,
        next_client_secret_expires_at: None,
        client_secret: None,
        password: None,
        access_token: None,
        refresh_token: None,
        next_client_secret: None,
    }
}
