//! The settings, read and refused as documented.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::load(None, env(pairs)).map(|(c, _)| c)
}

#[test]
fn defaults() {
    let c = load(&[]).unwrap();
    assert!(c.data_dir.is_absolute() && c.data_dir.ends_with("data"));
    assert_eq!(c.database_url.kind(), crate::db::DatabaseKind::Sqlite);
    assert_eq!(
        c.database_url.sqlite_path().unwrap(),
        c.data_dir.join("quiver.db")
    );
    assert_eq!(c.listen.to_string(), "127.0.0.1:3000");
    assert_eq!(c.redirect_uri(), "http://127.0.0.1:3000/oauth/callback");
    assert!(!c.is_https());
    assert!(
        matches!(c.master_key, MasterKeySource::DataDirDefault(ref p) if p.ends_with("master.key"))
    );
    assert_eq!(c.log_format, LogFormat::Text);
    assert!(c.scheduler);
    assert_eq!(c.scheduler_interval, chrono::Duration::seconds(5));
    assert_eq!(c.idle_refresh_interval, chrono::Duration::hours(24));
    assert_eq!(c.refresh_max_failures, 5);
    assert!(c.webhook_url.is_none());
    assert_eq!(c.import_max_bytes, 50 * 1024 * 1024);
}

#[test]
fn import_size_limit_takes_units_and_names_the_setting() {
    let c = load(&[("QUIVER_IMPORT_MAX_BYTES", "2MiB")]).unwrap();
    assert_eq!(c.import_max_bytes, 2 * 1024 * 1024);
    let c = load(&[("QUIVER_IMPORT_MAX_BYTES", "4096")]).unwrap();
    assert_eq!(c.import_max_bytes, 4096);
    for bad in ["lots", "10", "2TiB", "-5", "5 parsecs"] {
        let err = load(&[("QUIVER_IMPORT_MAX_BYTES", bad)]).unwrap_err();
        assert_eq!(err.setting, "QUIVER_IMPORT_MAX_BYTES", "{bad}");
        assert!(err.to_string().contains("1KiB to 1GiB"), "{err}");
    }
}

#[test]
fn bad_settings_name_the_setting() {
    for (pairs, setting, needle) in [
        (
            vec![("QUIVER_LISTEN", "nope")],
            "QUIVER_LISTEN",
            "address and port",
        ),
        (
            vec![("QUIVER_PUBLIC_URL", "ftp://x")],
            "QUIVER_PUBLIC_URL",
            "https://",
        ),
        (
            vec![("QUIVER_PUBLIC_URL", "https://x/?a=1")],
            "QUIVER_PUBLIC_URL",
            "query",
        ),
        (
            vec![("QUIVER_DATABASE_URL", "mysql://x")],
            "QUIVER_DATABASE_URL",
            "sqlite:",
        ),
        (
            vec![("QUIVER_MASTER_KEY", "AAAA")],
            "QUIVER_MASTER_KEY",
            "32 bytes",
        ),
        (
            vec![("QUIVER_MASTER_KEY", "%%%")],
            "QUIVER_MASTER_KEY",
            "base64",
        ),
        (
            vec![("QUIVER_LOG_FORMAT", "xml")],
            "QUIVER_LOG_FORMAT",
            "text or json",
        ),
        (vec![("QUIVER_DATA_DIR", " ")], "QUIVER_DATA_DIR", "empty"),
        (
            vec![
                (
                    "QUIVER_MASTER_KEY",
                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                ),
                ("QUIVER_MASTER_KEY_FILE", "/k"),
            ],
            "QUIVER_MASTER_KEY",
            "only one",
        ),
    ] {
        let err = load(&pairs).unwrap_err();
        assert_eq!(err.setting, setting, "{err}");
        assert!(err.to_string().contains(needle), "{err}");
    }
}

#[test]
fn session_durations() {
    let c = load(&[]).unwrap();
    assert_eq!(c.session_idle_timeout, chrono::Duration::hours(12));
    assert_eq!(c.session_max_age, chrono::Duration::days(7));
    let c = load(&[
        ("QUIVER_SESSION_IDLE_TIMEOUT", "30m"),
        ("QUIVER_SESSION_MAX_AGE", "1d"),
    ])
    .unwrap();
    assert_eq!(c.session_idle_timeout, chrono::Duration::minutes(30));
    let err = load(&[("QUIVER_SESSION_MAX_AGE", "forever")]).unwrap_err();
    assert_eq!(err.setting, "QUIVER_SESSION_MAX_AGE");
    let err = load(&[("QUIVER_SESSION_IDLE_TIMEOUT", "8d")]).unwrap_err();
    assert_eq!(err.setting, "QUIVER_SESSION_IDLE_TIMEOUT");
    assert!(parse_duration("0s").is_none());
    assert!(parse_duration("5 h").is_some());
    assert!(parse_duration("h").is_none());
}

#[test]
fn public_url_keeps_a_path_and_drops_the_trailing_slash() {
    let c = load(&[("QUIVER_PUBLIC_URL", "https://example.com/quiver/")]).unwrap();
    assert!(c.is_https());
    assert_eq!(
        c.redirect_uri(),
        "https://example.com/quiver/oauth/callback"
    );
}

#[test]
fn environment_overrides_the_file_and_file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quiver.toml");
    std::fs::write(&path, "listen = \"0.0.0.0:8080\"\nlog_format = \"json\"\n").unwrap();
    let (c, _) = Config::load(Some(&path), env(&[("QUIVER_LISTEN", "127.0.0.1:9")])).unwrap();
    assert_eq!(c.listen.port(), 9);
    assert_eq!(c.log_format, LogFormat::Json);

    std::fs::write(&path, "listen = \"bad\"\n").unwrap();
    let err = Config::load(Some(&path), env(&[])).unwrap_err();
    assert!(err.setting.starts_with("listen (in "), "{err}");

    std::fs::write(&path, "lisen = \"x\"\n").unwrap();
    let err = Config::load(Some(&path), env(&[])).unwrap_err();
    assert!(err.to_string().contains("lisen"), "{err}");
}

#[test]
fn unknown_variables_warn_and_test_variables_are_quiet() {
    let (_, warnings) = Config::load(
        None,
        env(&[
            ("QUIVER_LISTNE", "x"),
            ("QUIVER_TEST_POSTGRES_URL", "y"),
            ("QUIVER_EXPORT_PASSPHRASE", "z"),
        ]),
    )
    .unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("QUIVER_LISTNE"));
}

#[test]
fn outbound_proxy_is_a_proxy_url_whose_password_is_hidden() {
    assert!(load(&[]).unwrap().outbound_proxy.is_none());
    let c = load(&[(
        "QUIVER_OUTBOUND_PROXY",
        "http://quiver:s3cret@proxy.internal:3128",
    )])
    .unwrap();
    let proxy = c.outbound_proxy.unwrap();
    assert!(proxy.to_string().contains("proxy.internal:3128"));
    assert!(!format!("{proxy:?}").contains("s3cret"));
    assert!(!format!("{proxy}").contains("s3cret"));
    for bad in [
        "proxy.internal:3128",
        "ftp://proxy/",
        "http://proxy/path",
        "http://",
    ] {
        let err = load(&[("QUIVER_OUTBOUND_PROXY", bad)]).unwrap_err();
        assert_eq!(err.setting, "QUIVER_OUTBOUND_PROXY", "{bad}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quiver.toml");
    std::fs::write(&path, "outbound_proxy = \"http://127.0.0.1:3128\"\n").unwrap();
    let (c, warnings) = Config::load(Some(&path), env(&[])).unwrap();
    assert!(c.outbound_proxy.is_some());
    assert!(warnings.is_empty());
}

#[test]
fn a_webhook_secret_shorter_than_32_bytes_is_refused_naming_the_setting() {
    let short = "s".repeat(31);
    let err = load(&[
        ("QUIVER_WEBHOOK_URL", "https://hooks.example/quiver"),
        ("QUIVER_WEBHOOK_SECRET", &short),
    ])
    .unwrap_err();
    assert_eq!(err.setting, "QUIVER_WEBHOOK_SECRET", "{err}");
    assert!(err.to_string().contains("at least 32 bytes"), "{err}");
    assert!(!err.to_string().contains(&short), "{err}");
    // Without a URL too: the secret is refused wherever it is set.
    let err = load(&[("QUIVER_WEBHOOK_SECRET", "whsec-test")]).unwrap_err();
    assert_eq!(err.setting, "QUIVER_WEBHOOK_SECRET", "{err}");
    let long = "s".repeat(32);
    let c = load(&[
        ("QUIVER_WEBHOOK_URL", "https://hooks.example/quiver"),
        ("QUIVER_WEBHOOK_SECRET", &long),
    ])
    .unwrap();
    assert_eq!(c.webhook_secret.unwrap().expose(), long);
}

/// The README's settings table, between its two markers, is the one
/// [`markdown_table`] makes from [`SETTINGS`].
#[test]
fn the_readme_lists_every_setting_as_declared() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = "<!-- settings: generated from SETTINGS in server/src/config/settings.rs -->\n";
    let end = "<!-- end of settings -->";
    let from = readme.find(start).expect("the README has the start marker") + start.len();
    let to = from
        + readme[from..]
            .find(end)
            .expect("the README has the end marker");
    let expected = markdown_table();
    assert!(
        readme[from..to] == expected,
        "the README's settings table differs from SETTINGS; replace it with:\n{expected}"
    );
}

#[test]
fn every_setting_is_declared_once_and_every_default_value_is_valid() {
    let mut keys: Vec<_> = SETTINGS.iter().map(|s| s.key).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), SETTINGS.len(), "a key is declared twice");
    // Setting each default value explicitly changes nothing.
    let defaults: Vec<_> = SETTINGS
        .iter()
        .filter_map(|s| match s.default {
            Unset::Value(value) => Some((s.env_name(), value.to_owned())),
            Unset::Described(_) => None,
        })
        .collect();
    let (explicit, warnings) = Config::load(None, defaults).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let implicit = load(&[]).unwrap();
    assert_eq!(format!("{explicit:?}"), format!("{implicit:?}"));
}

#[test]
fn the_file_takes_numbers_and_flags_and_names_an_unknown_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quiver.toml");
    std::fs::write(&path, "scheduler = false\nrefresh_max_failures = 7\n").unwrap();
    let (c, _) = Config::load(Some(&path), env(&[])).unwrap();
    assert!(!c.scheduler);
    assert_eq!(c.refresh_max_failures, 7);

    std::fs::write(&path, "listen = [\"a\"]\n").unwrap();
    let err = Config::load(Some(&path), env(&[])).unwrap_err();
    assert!(err.setting.starts_with("listen (in "), "{err}");
    assert!(err.to_string().contains("array"), "{err}");

    std::fs::write(&path, "listen = 3000\n").unwrap();
    let err = Config::load(Some(&path), env(&[])).unwrap_err();
    assert!(err.setting.starts_with("listen (in "), "{err}");
    assert!(err.to_string().contains("address and port"), "{err}");
}

#[test]
fn outbound_ca_file_must_hold_certificates() {
    assert!(load(&[]).unwrap().outbound_ca_file.is_none());
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificate here\n").unwrap();
    let missing = dir.path().join("missing.pem");
    for bad in [&empty, &missing] {
        let err = load(&[("QUIVER_OUTBOUND_CA_FILE", bad.to_str().unwrap())]).unwrap_err();
        assert_eq!(err.setting, "QUIVER_OUTBOUND_CA_FILE", "{err}");
        assert!(err.to_string().contains(bad.to_str().unwrap()), "{err}");
    }
    let ca = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../end2end/authserver/tls/ca.pem"
    );
    let c = load(&[("QUIVER_OUTBOUND_CA_FILE", ca)]).unwrap();
    assert!(c.outbound_ca_file.is_some());
}
