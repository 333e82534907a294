//! Bundles edited after export. A bundle with secrets is authenticated as a
//! whole under its passphrase: an edit (a token endpoint moved to another
//! host, a token renamed, an entry removed) is refused before anything is
//! imported, through the REST API, the page's server function and the CLI.
//! A bundle without secrets cannot be authenticated: every preview lists
//! the hosts its endpoints name.

use axum::http::StatusCode;
use rand::Rng;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use server::account::Role;
use server::db::entity::{provider, token};

use crate::support::world::{ENV, World};
use crate::support::{Auth, Reply, TestApp, json_request};

const PASSPHRASE: &str = "correct horse battery staple";

/// A fresh instance with an admin, and the admin's cookie.
async fn fresh() -> (TestApp, Auth) {
    let app = TestApp::with_env(ENV).await;
    let pw = app.user("admin@example.com", Role::Admin).await;
    let admin = Auth::Cookie(app.login("admin@example.com", &pw).await);
    (app, admin)
}

async fn import(app: &TestApp, who: &Auth, body: Value) -> Reply {
    app.send(json_request(
        "POST",
        "/api/v1/import",
        Some(who.clone()),
        body,
    ))
    .await
}

async fn counts(app: &TestApp) -> (u64, u64) {
    let db = &app.state.instance.db;
    (
        provider::Entity::find().count(db).await.unwrap(),
        token::Entity::find().count(db).await.unwrap(),
    )
}

/// A source with two Client Credentials tokens (requested at the real
/// authorization server), exported with or without secrets.
async fn exported(secrets: bool) -> (World, Value) {
    let w = World::new().await;
    let cc = w.provider_id("cc").await;
    for name in ["machine", "second"] {
        w.token(json!({"name": name, "provider_id": cc, "flow": "client_credentials", "scope": "api:read"}))
            .await;
    }
    let body = if secrets {
        json!({"include_secrets": true, "passphrase": PASSPHRASE})
    } else {
        json!({})
    };
    let r = w
        .app
        .send(json_request(
            "POST",
            "/api/v1/export",
            Some(w.admin.clone()),
            body,
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let bundle = r.json();
    (w, bundle)
}

/// The index of the provider named `name` in a bundle.
fn provider_index(bundle: &Value, name: &str) -> usize {
    bundle["providers"]
        .as_array()
        .unwrap()
        .iter()
        .position(|p| p["name"] == name)
        .unwrap()
}

type Edit = (&'static str, fn(&mut Value));

/// What someone holding the file might change.
fn edits() -> Vec<Edit> {
    vec![
        ("token_endpoint moved to another host", |b| {
            let i = provider_index(b, "cc");
            b["providers"][i]["token_endpoint"] = json!("https://evil.example/token");
        }),
        ("a token renamed", |b| {
            b["tokens"][0]["name"] = json!("renamed");
        }),
        ("a token removed", |b| {
            b["tokens"].as_array_mut().unwrap().remove(1);
        }),
    ]
}

fn assert_altered(r: &Reply, what: &str) {
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{what}: {}",
        r.body
    );
    let error = &r.json()["error"];
    assert_eq!(error["code"], "bundle_altered", "{what}: {}", r.body);
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("altered after it was exported")
            && message.contains("nothing was imported"),
        "{what}: {message}"
    );
    assert_eq!(error["problems"][0]["path"], "$.mac", "{what}: {}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_bundle_with_secrets_is_refused_whole_and_the_unedited_one_imports() {
    let (_w, bundle) = exported(true).await;
    assert!(bundle["mac"].is_string(), "{bundle}");
    let (target, admin) = fresh().await;
    for (what, edit) in edits() {
        let mut edited = bundle.clone();
        edit(&mut edited);
        for mode in ["preview", "apply"] {
            let r = import(
                &target,
                &admin,
                json!({"bundle": edited, "passphrase": PASSPHRASE, "mode": mode}),
            )
            .await;
            assert_altered(&r, &format!("{what} ({mode})"));
        }
        assert_eq!(counts(&target).await, (0, 0), "{what}");
    }
    // The code removed: refused too, as a bundle that cannot be checked.
    let mut stripped = bundle.clone();
    stripped.as_object_mut().unwrap().remove("mac");
    let r = import(
        &target,
        &admin,
        json!({"bundle": stripped, "passphrase": PASSPHRASE, "mode": "apply"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "bundle_unauthenticated");
    assert_eq!(counts(&target).await, (0, 0));

    // The page's import (a server function) refuses it with the same words.
    let mut edited = bundle.clone();
    edits()[0].1(&mut edited);
    let edited_text = serde_json::to_string_pretty(&edited).unwrap();
    let r = target
        .send(crate::support::import_upload(
            Some(admin.clone()),
            &[
                ("passphrase", PASSPHRASE.as_bytes()),
                ("on_conflict", b"skip"),
                ("apply", b"true"),
                ("bundle", edited_text.as_bytes()),
            ],
        ))
        .await;
    let report = r.json();
    assert_eq!(report["applied"], false, "{}", r.body);
    assert_eq!(report["problems"][0]["path"], "$.mac", "{}", r.body);
    assert!(
        report["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("altered after it was exported"),
        "{}",
        r.body
    );
    assert_eq!(counts(&target).await, (0, 0));

    // Unedited, even re-serialised with its keys in another order (as a
    // client that parses the file and posts it inside a request does):
    // authenticated, and imported.
    let r = import(
        &target,
        &admin,
        json!({"bundle": bundle, "passphrase": PASSPHRASE, "mode": "preview"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["authenticated"], true, "{}", r.body);
    let r = import(
        &target,
        &admin,
        json!({"bundle": bundle, "passphrase": PASSPHRASE, "mode": "apply"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let report = r.json();
    assert_eq!(report["applied"], true);
    assert_eq!(report["authenticated"], true);
    assert_eq!(counts(&target).await, (3, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_with_secrets_but_no_authentication_code_is_refused() {
    // Written by a Quiver that did not authenticate bundles yet.
    let bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/bundles/valid_with_secrets.json"),
    )
    .unwrap();
    let bundle: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(bundle.get("mac").is_none());
    let (target, admin) = fresh().await;
    for mode in ["preview", "apply"] {
        let r = import(
            &target,
            &admin,
            json!({"bundle": bundle, "passphrase": PASSPHRASE, "mode": mode}),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        let error = &r.json()["error"];
        assert_eq!(error["code"], "bundle_unauthenticated", "{}", r.body);
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("Export it again"),
            "{}",
            r.body
        );
    }
    assert_eq!(counts(&target).await, (0, 0));
}

/// Every host of a report's `endpoint_hosts` with its paths.
fn hosts(report: &Value) -> Vec<(String, Vec<String>)> {
    report["endpoint_hosts"]
        .as_array()
        .unwrap_or_else(|| panic!("no endpoint_hosts: {report}"))
        .iter()
        .map(|h| {
            (
                h["host"].as_str().unwrap().to_owned(),
                h["paths"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_of_a_bundle_without_secrets_lists_every_host_it_would_write() {
    let (w, mut bundle) = exported(false).await;
    assert!(bundle["secrets"].is_null() && bundle.get("mac").is_none());
    let i = provider_index(&bundle, "cc");
    bundle["providers"][i]["token_endpoint"] = json!("https://evil.example/token");
    bundle["providers"][i]["jwks_uri"] = json!("https://keys.evil.example:8443/jwks");
    let authserver = url::Url::parse(&w.auth.issuer).unwrap();
    let authserver = format!(
        "{}:{}",
        authserver.host_str().unwrap(),
        authserver.port().unwrap()
    );
    let (target, admin) = fresh().await;

    let check = |report: &Value, how: &str| {
        assert_eq!(report["authenticated"], false, "{how}: {report}");
        let found = hosts(report);
        let names: Vec<&str> = found.iter().map(|(h, _)| h.as_str()).collect();
        assert_eq!(
            names,
            [
                authserver.as_str(),
                "evil.example",
                "keys.evil.example:8443"
            ],
            "{how}: sorted, each once"
        );
        let evil = &found[1].1;
        assert_eq!(evil, &[format!("$.providers[{i}].token_endpoint")], "{how}");
        assert_eq!(found[2].1, [format!("$.providers[{i}].jwks_uri")], "{how}");
        // The authorization server's host is named by every other field.
        assert!(
            found[0].1.contains(&format!("$.providers[{i}].issuer")),
            "{how}: {found:?}"
        );
        let warning = report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["path"] == "$")
            .unwrap_or_else(|| panic!("{how}: no warning at $: {report}"));
        let text = warning["message"].as_str().unwrap();
        assert!(
            text.contains("holds no secrets") && text.contains("evil.example"),
            "{how}: {text}"
        );
    };

    // REST: an envelope, and a bundle posted as it is.
    let r = import(
        &target,
        &admin,
        json!({"bundle": bundle, "mode": "preview"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    check(&r.json(), "REST envelope");
    let r = import(&target, &admin, bundle.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    check(&r.json(), "REST raw");
    // The page's preview.
    let text = bundle.to_string();
    let r = target
        .send(crate::support::import_upload(
            Some(admin.clone()),
            &[("bundle", text.as_bytes())],
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    check(&r.json(), "page");
    assert_eq!(counts(&target).await, (0, 0));
}

mod cli {
    //! `quiver import` through the real binary.

    use std::io::Write;
    use std::path::Path;
    use std::process::{Command, Stdio};

    use super::*;

    const BIN: &str = env!("CARGO_BIN_EXE_quiver");

    fn key() -> String {
        use base64::Engine;
        let bytes: [u8; 32] = rand::thread_rng().r#gen();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// Runs `quiver`; returns (code, stdout, stderr).
    fn quiver(
        data_dir: &Path,
        master_key: &str,
        args: &[&str],
        env: &[(&str, &str)],
        stdin: &str,
    ) -> (i32, String, String) {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("QUIVER_DATA_DIR", data_dir)
            .env("QUIVER_MASTER_KEY", master_key)
            .env("QUIVER_ALLOW_INSECURE_LOOPBACK", "true")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cli_refuses_an_edited_bundle_and_lists_the_hosts_of_one_without_secrets() {
        let (_w, bundle) = exported(true).await;
        let dir = tempfile::tempdir().unwrap();
        let master = key();
        let (code, _, err) = quiver(
            dir.path(),
            &master,
            &["user", "create", "--email", "boss@example.com", "--admin"],
            &[],
            "a long enough password\n",
        );
        assert_eq!(code, 0, "{err}");

        let mut edited = bundle.clone();
        edits()[0].1(&mut edited);
        let file = dir.path().join("edited.json");
        std::fs::write(&file, serde_json::to_vec_pretty(&edited).unwrap()).unwrap();
        for args in [vec!["import"], vec!["import", "--apply"]] {
            let mut args = args.clone();
            args.insert(1, file.to_str().unwrap());
            let (code, _, err) = quiver(
                dir.path(),
                &master,
                &args,
                &[("QUIVER_IMPORT_PASSPHRASE", PASSPHRASE)],
                "",
            );
            assert_ne!(code, 0, "{args:?}");
            assert!(err.contains("altered after it was exported"), "{err}");
        }

        // The unedited file, as exported: a preview says it is authenticated.
        let file = dir.path().join("bundle.json");
        std::fs::write(&file, serde_json::to_vec_pretty(&bundle).unwrap()).unwrap();
        let (code, out, err) = quiver(
            dir.path(),
            &master,
            &["import", file.to_str().unwrap()],
            &[("QUIVER_IMPORT_PASSPHRASE", PASSPHRASE)],
            "",
        );
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("authenticated: the bundle is as it was exported"),
            "{out}"
        );

        // Without secrets, the preview lists the hosts.
        let mut open = bundle.clone();
        open["secrets"] = Value::Null;
        open.as_object_mut().unwrap().remove("mac");
        for p in open["providers"].as_array_mut().unwrap() {
            for field in ["client_secret", "private_key"] {
                p.as_object_mut().unwrap().remove(field);
            }
        }
        for t in open["tokens"].as_array_mut().unwrap() {
            for field in ["client_secret", "password", "access_token", "refresh_token"] {
                t.as_object_mut().unwrap().remove(field);
            }
        }
        edits()[0].1(&mut open);
        let i = provider_index(&open, "cc");
        let file = dir.path().join("open.json");
        std::fs::write(&file, serde_json::to_vec_pretty(&open).unwrap()).unwrap();
        let (code, out, err) = quiver(
            dir.path(),
            &master,
            &["import", file.to_str().unwrap()],
            &[],
            "",
        );
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("NOT authenticated"), "{out}");
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with("evil.example")
                    && l.contains(&format!("$.providers[{i}].token_endpoint"))),
            "{out}"
        );
    }
}
