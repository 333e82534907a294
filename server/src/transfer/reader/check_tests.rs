//! Unit tests of the semantic checks.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::tests::{has_problem, problems, read, read_value};
use super::*;
use crate::transfer::passphrase::tests::shared_key;
use crate::transfer::samples;

#[test]
fn duplicate_ids_point_at_the_second_occurrence() {
    let mut v = samples::value();
    v["providers"][1]["id"] = json!("p1");
    v["tokens"][2]["id"] = json!("t1");
    let found = problems(&v);
    assert!(
        has_problem(&found, "$.providers[1].id", "$.providers[0]"),
        "{found:?}"
    );
    assert!(
        has_problem(&found, "$.tokens[2].id", "$.tokens[0]"),
        "{found:?}"
    );
}

#[test]
fn duplicate_names_are_refused() {
    let mut v = samples::value();
    v["providers"][1]["name"] = json!(" Example AS ");
    v["tokens"][2]["name"] = json!("Machine token");
    let found = problems(&v);
    assert!(
        has_problem(&found, "$.providers[1].name", "duplicate provider name"),
        "{found:?}"
    );
    assert!(
        has_problem(&found, "$.tokens[2].name", "duplicate token name"),
        "{found:?}"
    );
    // The same token name under another owner is fine.
    let mut v = samples::value();
    v["tokens"][2]["name"] = json!("Machine token");
    v["tokens"][2]["owner_email"] = json!("bob@example.com");
    read_value(&v).unwrap();
}

#[test]
fn token_pointing_to_a_missing_provider_is_refused() {
    let mut v = samples::value();
    v["tokens"][1]["provider_id"] = json!("p9");
    let found = problems(&v);
    assert_eq!(
        found,
        vec![Problem::new(
            "$.tokens[1].provider_id",
            "no provider in this bundle has the id \"p9\""
        )]
    );
}

#[test]
fn invalid_names_of_flows_methods_and_algorithms() {
    let mut v = samples::value();
    v["tokens"][0]["flow"] = json!("implicit");
    v["providers"][0]["client_auth_method"] = json!("client_secret_jwt");
    v["providers"][1]["signing_alg"] = json!("HS256");
    let found = problems(&v);
    assert!(
        has_problem(&found, "$.tokens[0].flow", "\"implicit\""),
        "{found:?}"
    );
    assert!(
        has_problem(
            &found,
            "$.providers[0].client_auth_method",
            "\"client_secret_jwt\""
        ),
        "{found:?}"
    );
    assert!(
        has_problem(&found, "$.providers[1].signing_alg", "\"HS256\""),
        "{found:?}"
    );
}

#[test]
fn a_tokens_own_test_request_is_checked_like_the_providers() {
    let mut v = samples::value();
    v["tokens"][0]["test_request_url"] = json!("ftp://api.example/me");
    v["tokens"][1]["test_request_method"] = json!("DELETE");
    v["tokens"][2]["test_request_url"] = json!("https://api.example/me");
    v["tokens"][2]["test_request_method"] = json!("HEAD");
    let found = problems(&v);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].path, "$.tokens[0].test_request_url", "{found:?}");
    assert_eq!(
        found[1].path, "$.tokens[1].test_request_method",
        "{found:?}"
    );
}

#[test]
fn a_secret_expiry_without_its_secret_is_refused() {
    let mut v = samples::value();
    v["providers"][0]["client_secret_expires_at"] = json!("2030-01-01T00:00:00Z");
    v["tokens"][1]["next_client_secret_expires_at"] = json!("2030-01-01T00:00:00Z");
    let found = problems(&v);
    assert!(
        has_problem(
            &found,
            "$.providers[0].client_secret_expires_at",
            "the expiry of client_secret, which this entry does not carry"
        ),
        "{found:?}"
    );
    assert!(
        has_problem(
            &found,
            "$.tokens[1].next_client_secret_expires_at",
            "the expiry of next_client_secret"
        ),
        "{found:?}"
    );
    assert_eq!(found.len(), 2, "{found:?}");
    // With its secret, it reads.
    let (key, header) = shared_key();
    let mut sealed = samples::sealed_bundle(key, header);
    sealed.providers[0].client_secret_expires_at = Some(
        chrono::DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .to_utc(),
    );
    read(&serde_json::to_vec(&sealed).unwrap()).unwrap();
}

#[test]
fn a_certificate_that_is_not_one_is_refused() {
    let mut v = samples::value();
    v["providers"][1]["certificate"] =
        json!("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    let found = problems(&v);
    assert!(
        has_problem(
            &found,
            "$.providers[1].certificate",
            "is not a PEM certificate"
        ),
        "{found:?}"
    );
}

#[test]
fn flow_that_the_provider_cannot_serve_is_refused() {
    let mut v = samples::value();
    // p2 uses private_key_jwt, which only client_credentials can use.
    v["tokens"][1]["flow"] = json!("password");
    v["tokens"][1]["username"] = json!("ada");
    let found = problems(&v);
    assert!(
        has_problem(&found, "$.tokens[1].flow", "private_key_jwt"),
        "{found:?}"
    );
}

#[test]
fn field_values_out_of_range_are_listed() {
    let mut v = samples::value();
    v["providers"][0]["timeout_ms"] = json!(5);
    v["providers"][0]["token_endpoint"] = json!("http://as.example/token");
    v["providers"][0]["jwks_uri"] = json!("https://169.254.169.254/jwks");
    v["tokens"][0]["refresh_margin_secs"] = json!(-1);
    v["tokens"][1]["refresh_lead_secs"] = json!(700_000);
    v["providers"][1]["refresh_concurrency"] = json!(0);
    v["tokens"][2]["username"] = json!(null);
    v["tokens"][0]["name"] = json!("  ");
    let found = problems(&v);
    for (path, words) in [
        ("$.providers[0].timeout_ms", "between 500"),
        ("$.providers[0].token_endpoint", "https"),
        ("$.providers[0].jwks_uri", "metadata"),
        ("$.tokens[0].refresh_margin_secs", "between 0"),
        ("$.tokens[1].refresh_lead_secs", "between 0"),
        ("$.providers[1].refresh_concurrency", "between 1"),
        ("$.tokens[2].username", "required"),
        ("$.tokens[0].name", "1 to 100"),
    ] {
        assert!(has_problem(&found, path, words), "{path}: {found:?}");
    }
}

#[test]
fn parameters_quiver_sets_itself_are_refused_at_their_key() {
    let mut v = samples::value();
    v["tokens"][0]["additional_values"]["client_id"] = json!("someone-else");
    v["providers"][1]["authorize_params"]["State"] = json!("x");
    v["providers"][0]["token_params"]["grant_type"] = json!("password");
    let found = problems(&v);
    for path in [
        "$.tokens[0].additional_values.client_id",
        "$.providers[1].authorize_params.State",
        "$.providers[0].token_params.grant_type",
    ] {
        assert!(
            has_problem(&found, path, "Quiver sets itself"),
            "{path}: {found:?}"
        );
    }
    // The sample's `audience` is a real extra value and stays.
    assert_eq!(found.len(), 3, "{found:?}");
}

#[test]
fn a_private_key_jwt_token_uses_the_providers_client() {
    let mut v = samples::value();
    // t2 uses p2, a private_key_jwt provider.
    v["tokens"][1]["use_default_keys"] = json!(false);
    v["tokens"][1]["client_id"] = json!("someone-else");
    let found = problems(&v);
    assert!(
        has_problem(&found, "$.tokens[1].use_default_keys", "private_key_jwt"),
        "{found:?}"
    );
}

#[test]
fn an_authentication_code_needs_secrets_and_the_right_shape() {
    let mut v = samples::value();
    v["mac"] = json!(STANDARD.encode([0u8; 32]));
    let found = problems(&v);
    assert!(has_problem(&found, "$.mac", "$.secrets"), "{found:?}");
    let (key, header) = shared_key();
    let mut v = serde_json::to_value(samples::sealed_bundle(key, header)).unwrap();
    v["mac"] = json!("not a code");
    let found = problems(&v);
    assert!(has_problem(&found, "$.mac", "32 bytes"), "{found:?}");
    v["mac"] = json!(STANDARD.encode([0u8; 32]));
    read_value(&v).unwrap();
}

#[test]
fn every_semantic_problem_is_reported_not_just_the_first() {
    let mut v = samples::value();
    v["providers"][1]["id"] = json!("p1");
    v["tokens"][0]["flow"] = json!("implicit");
    v["tokens"][1]["provider_id"] = json!("nope");
    let err = read_value(&v).unwrap_err();
    assert_eq!(err.problems().len(), 3, "{err:?}");
    let text = err.to_string();
    assert!(text.starts_with("the bundle has 3 problems: "), "{text}");
    assert!(text.contains("$.tokens[1].provider_id"), "{text}");
}

#[test]
fn problem_count_is_capped() {
    let mut v = samples::value();
    let token = v["tokens"][1].clone();
    v["tokens"] = Value::Array(
        (0..50)
            .map(|i| {
                let mut t = token.clone();
                t["id"] = json!(format!("t{i}"));
                t["name"] = json!(format!("n{i}"));
                t["provider_id"] = json!("missing");
                t
            })
            .collect(),
    );
    let limits = Limits {
        max_problems: 10,
        ..Limits::default()
    };
    let err = read_bundle(&serde_json::to_vec(&v).unwrap(), &limits).unwrap_err();
    let found = err.problems();
    assert_eq!(found.len(), 11);
    assert_eq!(found[10].message, "40 more problems are not listed");
}

#[test]
fn sealed_values_without_a_secrets_header_are_refused() {
    let (key, header) = shared_key();
    let mut sealed = samples::sealed_bundle(key, header);
    read(&serde_json::to_vec(&sealed).unwrap()).unwrap();
    sealed.secrets = None;
    let v = serde_json::to_value(&sealed).unwrap();
    let found = problems(&v);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].path, "$.secrets");
    assert!(
        found[0]
            .message
            .contains("$.providers[0].client_secret (and 20 more)"),
        "{found:?}"
    );
}

#[test]
fn malformed_secrets_header_and_values_are_listed() {
    let (key, header) = shared_key();
    let mut v = serde_json::to_value(samples::sealed_bundle(key, header)).unwrap();
    v["secrets"]["kdf"]["m_cost"] = json!(4_000_000);
    v["secrets"]["cipher"] = json!("rot13");
    v["tokens"][1]["access_token"]["sealed"] = json!("not*base64");
    let found = problems(&v);
    assert!(
        has_problem(&found, "$.secrets.kdf.m_cost", "4000000"),
        "{found:?}"
    );
    assert!(
        has_problem(&found, "$.secrets.cipher", "rot13"),
        "{found:?}"
    );
    assert!(
        has_problem(&found, "$.tokens[1].access_token.sealed", "base64"),
        "{found:?}"
    );
}
