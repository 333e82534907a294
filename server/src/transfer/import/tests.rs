//! Unit tests of the import's names, policies and options.

use std::collections::HashSet;

use super::*;
use crate::oauth::client_auth::ClientAuthMethod;
use crate::providers::Wording;
use crate::tokens::Flow;
use crate::tokens::validation::{ProviderShape, flow_misfits};

#[test]
fn unique_names_count_up_and_fit_the_limit() {
    let taken: HashSet<String> = ["A", "A (2)"].into_iter().map(String::from).collect();
    assert_eq!(unique_name("A", |n| taken.contains(n)), "A (3)");
    assert_eq!(unique_name(" B ", |n| taken.contains(n)), "B (2)");
    let long = "x".repeat(100);
    let renamed = unique_name(&long, |_| false);
    assert_eq!(renamed.chars().count(), 100);
    assert!(renamed.ends_with(" (2)"));
}

#[test]
fn modes_and_policies_read_their_wire_names() {
    let m: Mode = serde_json::from_str("\"apply\"").unwrap();
    assert_eq!(m, Mode::Apply);
    let c: OnConflict = serde_json::from_str("\"rename\"").unwrap();
    assert_eq!(c, OnConflict::Rename);
    assert!(serde_json::from_str::<OnConflict>("\"merge\"").is_err());
}

#[test]
fn options_debug_hides_the_passphrase() {
    let options = ImportOptions {
        passphrase: Some(SecretString::new("hunter2-secret")),
        ..ImportOptions::default()
    };
    let text = format!("{options:?}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn an_existing_private_key_jwt_provider_refuses_other_flows() {
    let shape = ProviderShape {
        method: Some(ClientAuthMethod::PrivateKeyJwt),
        has_authorization_endpoint: true,
        has_jwks_uri: true,
        has_device_endpoint: true,
    };
    let misfits = |shape, flow| flow_misfits(flow, &shape, Wording::ExistingProvider);
    assert_eq!(
        misfits(shape, Flow::Password)[0].message,
        "the existing provider uses private_key_jwt, which works only with client_credentials"
    );
    assert!(misfits(shape, Flow::ClientCredentials).is_empty());
    let no_browser = ProviderShape {
        method: Some(ClientAuthMethod::ClientSecretBasic),
        has_authorization_endpoint: false,
        has_jwks_uri: false,
        has_device_endpoint: false,
    };
    assert!(!misfits(no_browser, Flow::AuthorizationCode).is_empty());
    assert_eq!(
        misfits(no_browser, Flow::DeviceCode)[0].message,
        "device_code needs the existing provider's device_authorization_endpoint"
    );
}
