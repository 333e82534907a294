//! Tests across the module: the round trip with sealed secrets, and the
//! regression corpus in `server/tests/fixtures/bundles/`.

use std::path::PathBuf;

use super::bundle::{ProviderSecret, TokenSecret};
use super::passphrase::tests::cheap_params;
use super::passphrase::{BundleKey, SecretSlot, TransferError};
use super::reader::{Limits, read_bundle};
use super::samples;
use crate::secret::SecretString;

#[test]
fn round_trip_with_sealed_secrets() {
    let passphrase = SecretString::new("a long export passphrase");
    let (key, header) = BundleKey::create(&passphrase, &cheap_params()).unwrap();
    let written = samples::sealed_bundle(&key, &header);
    let bytes = serde_json::to_vec_pretty(&written).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(!text.contains("t1/refresh_token"), "a secret is in clear");

    let read = read_bundle(&bytes, &Limits::default()).unwrap();
    assert_eq!(read, written);
    let key = BundleKey::unlock(&passphrase, read.secrets.as_ref().unwrap()).unwrap();
    for p in &read.providers {
        for field in ProviderSecret::ALL {
            let opened = key
                .open(SecretSlot::provider(&p.id, field), p.sealed(field).unwrap())
                .unwrap();
            assert_eq!(opened.expose(), format!("{}/{}", p.id, field.as_str()));
        }
    }
    for t in &read.tokens {
        for field in TokenSecret::ALL {
            let opened = key
                .open(SecretSlot::token(&t.id, field), t.sealed(field).unwrap())
                .unwrap();
            assert_eq!(opened.expose(), format!("{}/{}", t.id, field.as_str()));
        }
    }
}

#[test]
fn round_trip_with_the_wrong_passphrase_opens_nothing() {
    let (key, header) =
        BundleKey::create(&SecretString::new("right one"), &cheap_params()).unwrap();
    let bytes = serde_json::to_vec(&samples::sealed_bundle(&key, &header)).unwrap();
    let read = read_bundle(&bytes, &Limits::default()).unwrap();
    assert_eq!(
        BundleKey::unlock(
            &SecretString::new("wrong one"),
            read.secrets.as_ref().unwrap()
        )
        .unwrap_err(),
        TransferError::WrongPassphrase
    );
}

#[test]
fn sealed_value_copied_to_another_field_or_entry_fails_to_open() {
    let passphrase = SecretString::new("p");
    let (key, header) = BundleKey::create(&passphrase, &cheap_params()).unwrap();
    let mut bundle = samples::sealed_bundle(&key, &header);
    // Someone swaps t1's refresh token into its access token, and t2's
    // into t1: both still parse, neither opens.
    bundle.tokens[0].access_token = bundle.tokens[0].refresh_token.clone();
    bundle.tokens[0].password = bundle.tokens[1].password.clone();
    let bytes = serde_json::to_vec(&bundle).unwrap();
    let read = read_bundle(&bytes, &Limits::default()).unwrap();
    let key = BundleKey::unlock(&passphrase, read.secrets.as_ref().unwrap()).unwrap();
    let t1 = &read.tokens[0];
    for field in [TokenSecret::AccessToken, TokenSecret::Password] {
        let err = key
            .open(SecretSlot::token(&t1.id, field), t1.sealed(field).unwrap())
            .unwrap_err();
        assert!(matches!(err, TransferError::Tampered { .. }), "{err:?}");
        assert!(err.to_string().contains("tokens/t1/"), "{err}");
    }
    // The untouched field still opens.
    key.open(
        SecretSlot::token(&t1.id, TokenSecret::RefreshToken),
        t1.refresh_token.as_ref().unwrap(),
    )
    .unwrap();
}

/// What each corpus file must give: `None` reads, `Some(words)` fails with
/// an error whose message contains `words`.
const CORPUS: &[(&str, Option<&str>)] = &[
    ("valid_small.json", None),
    ("valid_with_secrets.json", None),
    ("empty.json", Some("the bundle is empty")),
    ("not_json.json", Some("not valid JSON at line 1")),
    ("truncated.json", Some("ends early")),
    ("trailing_garbage.json", Some("trailing characters")),
    ("top_level_array.json", Some("not a Quiver export bundle")),
    ("missing_format.json", Some("no \"format\" field")),
    (
        "wrong_format.json",
        Some("unsupported format \"vault-export\""),
    ),
    (
        "wrong_version.json",
        Some("version 2 at $.version: this Quiver reads version 1"),
    ),
    (
        "version_as_string.json",
        Some("unsupported bundle version \"1\""),
    ),
    (
        "wrong_type.json",
        Some("$.tokens[0].refresh_margin_secs (line"),
    ),
    ("unknown_field.json", Some("$.tokens[0].scopes")),
    ("duplicate_key.json", Some("duplicate field `name`")),
    (
        "duplicate_provider_id.json",
        Some("$.providers[1].id: duplicate provider id"),
    ),
    (
        "duplicate_token_id.json",
        Some("$.tokens[1].id: duplicate token id"),
    ),
    (
        "duplicate_provider_name.json",
        Some("$.providers[1].name: duplicate provider name"),
    ),
    (
        "duplicate_token_name.json",
        Some("$.tokens[1].name: duplicate token name"),
    ),
    (
        "dangling_provider_id.json",
        Some("$.tokens[0].provider_id: no provider"),
    ),
    ("deep_nesting.json", Some("deeper than 64 levels")),
    ("invalid_flow.json", Some("$.tokens[0].flow: must be")),
    (
        "invalid_client_auth_method.json",
        Some("$.providers[0].client_auth_method"),
    ),
    ("plain_secret.json", Some("must be sealed")),
    ("secrets_without_header.json", Some("$.secrets: is missing")),
    ("hostile_kdf.json", Some("$.secrets.kdf.m_cost")),
    (
        "bad_sealed_value.json",
        Some("$.tokens[0].refresh_token.sealed"),
    ),
];

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bundles")
}

#[test]
fn regression_corpus_gives_the_expected_outcome() {
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(corpus_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let expected = CORPUS
            .iter()
            .find(|(file, _)| *file == name)
            .unwrap_or_else(|| panic!("{name} has no expected outcome in CORPUS"))
            .1;
        let bytes = std::fs::read(&path).unwrap();
        match (read_bundle(&bytes, &Limits::default()), expected) {
            (Ok(_), None) => {}
            (Err(e), Some(words)) => {
                let text = e.to_string();
                assert!(text.contains(words), "{name}: {text:?} lacks {words:?}");
            }
            (result, _) => panic!("{name}: unexpected {result:?}"),
        }
        seen.push(name);
    }
    for (file, _) in CORPUS {
        assert!(seen.iter().any(|s| s == file), "{file} is missing");
    }
}

#[test]
fn corpus_secrets_open_with_the_documented_passphrase() {
    // Pins the sealing scheme: a change to the key derivation or the
    // associated data would make older bundles unreadable.
    let bytes = std::fs::read(corpus_dir().join("valid_with_secrets.json")).unwrap();
    let bundle = read_bundle(&bytes, &Limits::default()).unwrap();
    let header = bundle.secrets.as_ref().unwrap();
    let key =
        BundleKey::unlock(&SecretString::new("correct horse battery staple"), header).unwrap();
    let t = &bundle.tokens[0];
    let opened = key
        .open(
            SecretSlot::token(&t.id, TokenSecret::RefreshToken),
            t.refresh_token.as_ref().unwrap(),
        )
        .unwrap();
    assert_eq!(opened.expose(), "t1/refresh_token");
    assert!(matches!(
        BundleKey::unlock(&SecretString::new("Correct horse battery staple"), header),
        Err(TransferError::WrongPassphrase)
    ));
}
