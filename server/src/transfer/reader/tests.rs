//! Unit tests of reading: sizes, syntax, format and version, structure,
//! nesting, and arbitrary input that must never panic.

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::transfer::samples;

pub(super) fn read(bytes: &[u8]) -> Result<Bundle, BundleError> {
    read_bundle(bytes, &Limits::default())
}

pub(super) fn read_value(value: &Value) -> Result<Bundle, BundleError> {
    read(&serde_json::to_vec_pretty(value).unwrap())
}

/// The problems of a bundle that must be semantically invalid.
pub(super) fn problems(value: &Value) -> Vec<Problem> {
    match read_value(value) {
        Err(BundleError::Invalid(problems)) => problems,
        other => panic!("expected semantic problems, got {other:?}"),
    }
}

pub(super) fn has_problem(problems: &[Problem], path: &str, words: &str) -> bool {
    problems
        .iter()
        .any(|p| p.path == path && p.message.contains(words))
}

#[test]
fn valid_bundle_reads_back_unchanged() {
    assert_eq!(read(&samples::json()).unwrap(), samples::bundle());
    // Compact JSON and a byte-order mark are fine too.
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend(serde_json::to_vec(&samples::bundle()).unwrap());
    assert_eq!(read(&bom).unwrap(), samples::bundle());
}

#[test]
fn over_the_size_limit_says_size_and_limit() {
    let bytes = samples::json();
    let limits = Limits {
        max_bytes: 100,
        ..Limits::default()
    };
    let err = read_bundle(&bytes, &limits).unwrap_err();
    assert_eq!(
        err,
        BundleError::TooLarge {
            size: bytes.len(),
            limit: 100
        }
    );
    let text = err.to_string();
    assert!(text.contains(&format!("{} bytes", bytes.len())), "{text}");
    assert!(text.contains("limit of 100 bytes"), "{text}");
    let big = BundleError::TooLarge {
        size: 60 * 1024 * 1024,
        limit: DEFAULT_MAX_BYTES,
    };
    assert!(
        big.to_string().contains("over the limit of 50.0 MiB"),
        "{big}"
    );
}

#[test]
fn empty_input_is_named_empty() {
    assert_eq!(read(b"").unwrap_err(), BundleError::Empty);
    assert_eq!(read(b" \n\t ").unwrap_err(), BundleError::Empty);
}

#[test]
fn not_json_gives_line_and_column() {
    let err = read(b"{\n  \"format\": quiver-export\n}").unwrap_err();
    assert!(
        matches!(err, BundleError::NotJson { line: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("line 2"), "{err}");
    assert!(matches!(
        read(b"hello").unwrap_err(),
        BundleError::NotJson { line: 1, .. }
    ));
    assert!(matches!(
        read(&[0xff, 0xfe, 0x00]).unwrap_err(),
        BundleError::NotJson { .. }
    ));
}

#[test]
fn truncated_json_is_named_truncated() {
    let bytes = samples::json();
    let err = read(&bytes[..bytes.len() / 2]).unwrap_err();
    let BundleError::Truncated { line, .. } = err else {
        panic!("{err:?}");
    };
    assert!(line > 1);
    assert!(err.to_string().contains("truncated"));
}

#[test]
fn trailing_text_after_the_bundle_is_refused() {
    let mut bytes = samples::json();
    bytes.extend_from_slice(b"\n{}");
    let err = read(&bytes).unwrap_err();
    assert!(matches!(err, BundleError::NotJson { .. }), "{err:?}");
    assert!(err.to_string().contains("trailing"), "{err}");
}

#[test]
fn json_that_is_not_an_object_is_not_a_bundle() {
    for text in ["[]", "42", "\"quiver-export\"", "null"] {
        let err = read(text.as_bytes()).unwrap_err();
        assert!(matches!(err, BundleError::NotABundle(_)), "{text}: {err:?}");
    }
    let err = read(b"{\"providers\": []}").unwrap_err();
    assert!(err.to_string().contains("no \"format\" field"), "{err}");
}

#[test]
fn another_format_is_named() {
    let mut v = samples::value();
    v["format"] = json!("other-export");
    let err = read_value(&v).unwrap_err();
    assert!(matches!(err, BundleError::WrongFormat { .. }), "{err:?}");
    assert!(err.to_string().contains("\"other-export\""), "{err}");
    assert!(err.to_string().contains("$.format"), "{err}");
}

#[test]
fn another_version_says_which_versions_are_read() {
    let mut v = samples::value();
    v["version"] = json!(2);
    // A newer version's fields must not be reported as unknown fields.
    v["tokens"][0]["new_in_v2"] = json!(true);
    let err = read_value(&v).unwrap_err();
    assert_eq!(
        err,
        BundleError::UnsupportedVersion {
            found: "2".into(),
            supported: "1".into()
        }
    );
    assert!(err.to_string().contains("reads version 1"), "{err}");
    for bad in [json!("1"), json!(1.5), json!(-1), json!(null)] {
        v["version"] = bad.clone();
        assert!(
            matches!(
                read_value(&v).unwrap_err(),
                BundleError::UnsupportedVersion { .. }
            ),
            "{bad}"
        );
    }
    v.as_object_mut().unwrap().remove("version");
    assert!(read_value(&v).unwrap_err().to_string().contains("missing"));
}

#[test]
fn wrong_type_names_the_path_and_position() {
    let mut v = samples::value();
    v["tokens"][1]["refresh_margin_secs"] = json!("soon");
    let err = read_value(&v).unwrap_err();
    let BundleError::Structure {
        path,
        line,
        message,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(path, "$.tokens[1].refresh_margin_secs");
    assert!(*line > 1);
    assert!(message.contains("invalid type"), "{message}");
    assert_eq!(err.problems()[0].path, "$.tokens[1].refresh_margin_secs");
}

#[test]
fn missing_field_names_its_object() {
    let mut v = samples::value();
    v["providers"][1]
        .as_object_mut()
        .unwrap()
        .remove("token_endpoint");
    let err = read_value(&v).unwrap_err();
    assert!(
        matches!(&err, BundleError::Structure { path, message, .. }
            if path == "$.providers[1]" && message.contains("token_endpoint")),
        "{err:?}"
    );
}

#[test]
fn unknown_field_is_an_error_at_its_path() {
    let mut v = samples::value();
    v["tokens"][0]["scopes"] = json!("openid");
    let err = read_value(&v).unwrap_err();
    assert!(
        matches!(&err, BundleError::Structure { path, message, .. }
            if path == "$.tokens[0].scopes" && message.contains("unknown field `scopes`")),
        "{err:?}"
    );
    let mut v = samples::value();
    v["extra"] = json!(1);
    assert!(matches!(
        read_value(&v).unwrap_err(),
        BundleError::Structure { path, .. } if path == "$.extra"
    ));
}

#[test]
fn odd_keys_are_quoted_in_paths() {
    let mut v = samples::value();
    v["providers"][0]["authorize_params"]["a b"] = json!(7);
    let err = read_value(&v).unwrap_err();
    assert!(
        matches!(&err, BundleError::Structure { path, .. }
            if path == r#"$.providers[0].authorize_params["a b"]"#),
        "{err:?}"
    );
}

#[test]
fn plain_string_secret_is_refused_without_echo() {
    let mut v = samples::value();
    v["tokens"][2]["password"] = json!("hunter2-in-clear");
    let err = read_value(&v).unwrap_err();
    assert!(
        matches!(&err, BundleError::Structure { path, .. } if path == "$.tokens[2].password"),
        "{err:?}"
    );
    assert!(err.to_string().contains("must be sealed"), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn absurd_nesting_is_refused_without_recursion() {
    for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
        let mut text = String::from("{\"format\":\"quiver-export\",\"version\":1,\"x\":");
        text.push_str(&open.repeat(100_000));
        text.push_str(&close.repeat(100_000));
        text.push('}');
        let err = read(text.as_bytes()).unwrap_err();
        assert!(
            matches!(
                err,
                BundleError::TooDeep {
                    limit: 64,
                    line: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("deeper than 64 levels"), "{err}");
        // Unclosed, and with a configured limit above serde_json's own.
        let limits = Limits {
            max_depth: 1_000_000,
            ..Limits::default()
        };
        let err = read_bundle(open.repeat(100_000).as_bytes(), &limits).unwrap_err();
        assert!(
            matches!(
                err,
                BundleError::TooDeep {
                    limit: MAX_DEPTH_CEILING,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

#[test]
fn brackets_inside_strings_do_not_count_as_nesting() {
    let mut v = samples::value();
    v["tokens"][0]["scope"] = json!("[[[[\\\"{{{{".repeat(100));
    read_value(&v).unwrap();
}

#[test]
fn depth_just_within_the_limit_reaches_the_type_check() {
    let limits = Limits {
        max_depth: 6,
        ..Limits::default()
    };
    let mut v = samples::value();
    v["tokens"][0]["additional_values"]["x"] = json!([[[1]]]);
    let bytes = serde_json::to_vec(&v).unwrap();
    assert!(matches!(
        read_bundle(&bytes, &limits).unwrap_err(),
        BundleError::TooDeep { limit: 6, .. }
    ));
    assert!(matches!(
        read(&bytes).unwrap_err(),
        BundleError::Structure { path, .. } if path == "$.tokens[0].additional_values.x"
    ));
}

/// Every path of scalars and containers in a JSON value.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                pointers(v, format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pointers(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::from),
        Just(json!("p1")),
        Just(json!("t1")),
        Just(json!({"sealed": "AAAA"})),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A result is fine when it is a bundle that reads back the same, or an
/// error with a message.
fn assert_clean(result: Result<Bundle, BundleError>) -> Result<(), TestCaseError> {
    match result {
        Ok(bundle) => {
            let again = read(&serde_json::to_vec(&bundle).unwrap());
            prop_assert_eq!(again.as_ref().ok(), Some(&bundle));
        }
        Err(e) => {
            prop_assert!(!e.to_string().is_empty());
            prop_assert!(!e.problems().is_empty());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES raises this for a longer fuzzing run.
        cases: ProptestConfig::default().cases.max(512),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        assert_clean(read(&bytes))?;
    }

    #[test]
    fn json_like_text_never_panics(text in r#"[\[\]{}":,0-9a-z \\.-]{0,512}"#) {
        assert_clean(read(text.as_bytes()))?;
    }

    /// Byte edits of a valid bundle: flips, deletions, insertions,
    /// truncation and duplicated ranges.
    #[test]
    fn mutated_bundle_bytes_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..5, any::<u8>()), 1..8)
    ) {
        let mut bytes = samples::json();
        for (at, op, byte) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] ^= byte | 1,
                1 => { bytes.remove(i); }
                2 => bytes.insert(i, b"{}[]\",:0\\ a"[usize::from(byte) % 11]),
                3 => bytes.truncate(i),
                _ => {
                    let end = (i + usize::from(byte)).min(bytes.len());
                    let copy = bytes[i..end].to_vec();
                    bytes.splice(i..i, copy);
                }
            }
        }
        assert_clean(read(&bytes))?;
    }

    /// Structural edits of a valid bundle: any value, anywhere,
    /// replaced by any JSON.
    #[test]
    fn mutated_bundle_values_never_panic(
        target in any::<prop::sample::Index>(),
        replacement in any_json(),
    ) {
        let mut v = samples::value();
        let mut all = Vec::new();
        pointers(&v, String::new(), &mut all);
        let pointer = &all[target.index(all.len())];
        if pointer.is_empty() {
            v = replacement;
        } else if let Some(slot) = v.pointer_mut(pointer) {
            *slot = replacement;
        }
        assert_clean(read_value(&v))?;
    }
}
