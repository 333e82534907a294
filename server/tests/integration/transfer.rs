//! Export and import through the REST API and the real binary:
//! a round trip with secrets into an instance with another master key
//! (the imported token answers and refreshes against the real
//! authorization server, on SQLite and on PostgreSQL); a round trip
//! without secrets (`needs_credentials`, then supplied); every bad input;
//! the conflict policies; a wrong passphrase; atomicity with a failure at
//! the last row; admins only; progress; and the CLI.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use rand::Rng;
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use server::account::Role;
use server::db::entity::{provider, token};

use crate::support::world::{ENV, World};
use crate::support::{Auth, Reply, TestApp, json_request, request, test_database};

const PASSPHRASE: &str = "correct horse battery staple";

/// A fresh instance (its own database and generated master key) with an
/// admin, and the admin's cookie.
async fn fresh(extra: &[(&str, &str)]) -> (TestApp, Auth) {
    let mut env = ENV.to_vec();
    env.extend_from_slice(extra);
    let app = TestApp::with_env(&env).await;
    let pw = app.user("admin@example.com", Role::Admin).await;
    let admin = Auth::Cookie(app.login("admin@example.com", &pw).await);
    (app, admin)
}

async fn export(app: &TestApp, who: &Auth, body: Value) -> Reply {
    app.send(json_request(
        "POST",
        "/api/v1/export",
        Some(who.clone()),
        body,
    ))
    .await
}

/// Exports and returns the bundle, checking the download's headers.
async fn export_ok(app: &TestApp, who: &Auth, body: Value) -> (Value, String) {
    let r = export(app, who, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.header("content-type"), "application/json");
    let disposition = r.header("content-disposition");
    assert!(
        disposition.starts_with("attachment; filename=\"quiver-export-")
            && disposition.ends_with(".json\""),
        "{disposition}"
    );
    (r.json(), r.body)
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

/// Posts raw bytes to `/import`.
async fn import_raw(app: &TestApp, who: &Auth, bytes: Vec<u8>) -> Reply {
    let Auth::Cookie(cookie) = who else {
        panic!("cookie expected")
    };
    app.send(
        Request::builder()
            .method("POST")
            .uri("/api/v1/import")
            .header("host", "127.0.0.1:3000")
            .header("cookie", cookie)
            .header("content-type", "application/json")
            .body(Body::from(bytes))
            .unwrap(),
    )
    .await
}

async fn counts(app: &TestApp) -> (u64, u64) {
    let db = &app.state.instance.db;
    (
        provider::Entity::find().count(db).await.unwrap(),
        token::Entity::find().count(db).await.unwrap(),
    )
}

/// The new id of the created token named `name` in an import report.
fn created_token(report: &Value, name: &str) -> String {
    report["created"]["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("{name} not created: {report}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn get(app: &TestApp, who: &Auth, path: &str) -> Reply {
    app.send(request("GET", path, Some(who.clone()))).await
}

async fn post(app: &TestApp, who: &Auth, path: &str, body: Value) -> Reply {
    app.send(json_request("POST", path, Some(who.clone()), body))
        .await
}

/// A source world with a Client Credentials token and a Password token,
/// both requested at the real authorization server.
async fn source() -> (World, String, String) {
    let w = World::new().await;
    let cc = w.provider_id("cc").await;
    let pw = w.provider_id("pw").await;
    let machine = w
        .token(json!({"name": "machine", "provider_id": cc, "flow": "client_credentials", "scope": "api:read"}))
        .await;
    let alice = w
        .token(json!({"name": "alice", "provider_id": pw, "flow": "password", "username": "alice", "password": "wonderland", "scope": "openid api:read"}))
        .await;
    for id in [&machine, &alice] {
        let t = get(&w.app, &w.admin, &format!("/api/v1/tokens/{id}"))
            .await
            .json();
        assert_eq!(t["status"], "active", "{t}");
    }
    (w, machine, alice)
}

/// Exports everything with secrets from `w`, imports it into `target` and
/// proves the imported Client Credentials token works there.
async fn round_trip_with_secrets(w: &World, machine: &str, target: &TestApp, admin: &Auth) {
    let source_key = w.app.state.instance.sealer.current_key_id();
    assert_ne!(source_key, target.state.instance.sealer.current_key_id());
    let access = w.app.token_secret(machine, "access_token").await.unwrap();
    let (bundle, text) = export_ok(
        &w.app,
        &w.admin,
        json!({"include_secrets": true, "passphrase": PASSPHRASE}),
    )
    .await;
    // Sealed, never in clear.
    assert!(!text.contains(&access), "an access token is in clear");
    assert!(
        !text.contains("cc-basic-secret"),
        "a client secret is in clear"
    );
    assert!(!text.contains("wonderland"), "a password is in clear");
    assert!(
        bundle["secrets"]["kdf"]["algorithm"] == "argon2id",
        "{bundle}"
    );
    assert_eq!(bundle["providers"].as_array().unwrap().len(), 3);
    assert_eq!(bundle["tokens"].as_array().unwrap().len(), 2);
    target.user("robot@example.com", Role::User).await;

    // Preview first: nothing is written.
    let r = import(
        target,
        admin,
        json!({"bundle": bundle, "passphrase": PASSPHRASE, "mode": "preview"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let preview = r.json();
    assert_eq!(preview["applied"], false);
    assert_eq!(preview["summary"]["providers"]["created"], 3);
    assert_eq!(preview["summary"]["tokens"]["created"], 2);
    assert_eq!(counts(target).await, (0, 0));

    let r = import(
        target,
        admin,
        json!({"bundle": bundle, "passphrase": PASSPHRASE, "mode": "apply", "on_conflict": "skip"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let report = r.json();
    assert_eq!(report["applied"], true);
    assert_eq!(report["secrets"], true);
    assert_eq!(report["summary"]["needs_credentials"], 0);
    assert_eq!(counts(target).await, (3, 2));
    let id = created_token(&report, "machine");
    assert_ne!(id, machine, "ids are remapped");
    let view = get(target, admin, &format!("/api/v1/tokens/{id}"))
        .await
        .json();
    assert_eq!(view["status"], "active", "{view}");
    assert_eq!(view["owner_email"], "robot@example.com");
    assert_eq!(view["has_client_secret"], false);
    // Not due at once: the first renewal is at least a minute away.
    let due =
        chrono::DateTime::parse_from_rfc3339(view["next_refresh_at"].as_str().unwrap()).unwrap();
    let now = server::clock::Clock::now(&target.clock);
    assert!(due.with_timezone(&chrono::Utc) > now + chrono::Duration::seconds(59));
    // Sealed again under the target's own key, and the same token.
    assert_eq!(
        target.token_secret(&id, "access_token").await.unwrap(),
        access
    );
    let r = get(target, admin, &format!("/api/v1/tokens/{id}/access-token")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["access_token"], access.as_str());
    // The provider secret came along: a refresh works at the real server.
    let r = post(
        target,
        admin,
        &format!("/api/v1/tokens/{id}/refresh"),
        json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["status"], "active", "{}", r.body);
    assert!(r.json()["error"].is_null(), "{}", r.body);
    let renewed = target.token_secret(&id, "access_token").await.unwrap();
    assert_ne!(renewed, access);
    assert!(w.auth.introspect(&renewed).await);
    // The password token's password came along too.
    let alice = created_token(&report, "alice");
    let r = post(
        target,
        admin,
        &format!("/api/v1/tokens/{alice}/request"),
        json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["status"], "active", "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_with_secrets_into_another_master_key_works_against_the_provider() {
    let (w, machine, _) = source().await;
    let (target, admin) = fresh(&[]).await;
    round_trip_with_secrets(&w, &machine, &target, &admin).await;
    // One audit entry per export and import, without secrets.
    let audit = get(&target, &admin, "/api/v1/audit?action=transfer.import")
        .await
        .json();
    assert_eq!(audit["total"], 1, "{audit}");
    let detail = audit["items"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("tokens 2 created"), "{detail}");
    let audit = get(&w.app, &w.admin, "/api/v1/audit?action=transfer.export")
        .await
        .json();
    assert_eq!(audit["total"], 1, "{audit}");
    assert!(!audit.to_string().contains(PASSPHRASE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_with_secrets_on_postgres() {
    let (w, machine, _) = source().await;
    let db = test_database("transfer").await;
    let (target, admin) = fresh(&[("QUIVER_DATABASE_URL", &db.url)]).await;
    assert_eq!(
        target.state.instance.config.database_url.kind(),
        server::db::DatabaseKind::Postgres
    );
    round_trip_with_secrets(&w, &machine, &target, &admin).await;
    // And back out of PostgreSQL: the export streams from there too.
    let (bundle, _) = export_ok(
        &target,
        &admin,
        json!({"include_secrets": true, "passphrase": PASSPHRASE}),
    )
    .await;
    assert_eq!(bundle["tokens"].as_array().unwrap().len(), 2);
    let (again, again_admin) = fresh(&[]).await;
    let r = import(
        &again,
        &again_admin,
        json!({"bundle": bundle, "passphrase": PASSPHRASE, "mode": "apply"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(counts(&again).await, (3, 2));
    drop(target);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_secrets_tokens_need_credentials_until_they_are_supplied() {
    let (w, _, _) = source().await;
    let (bundle, text) = export_ok(&w.app, &w.admin, json!({})).await;
    assert!(bundle["secrets"].is_null());
    assert!(!text.contains("sealed"), "{text}");
    // The access token's facts travel only with it.
    assert!(bundle["tokens"][0]["expires_at"].is_null(), "{text}");
    let (target, admin) = fresh(&[]).await;
    let r = import(&target, &admin, json!({"bundle": bundle, "mode": "apply"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let report = r.json();
    assert_eq!(report["summary"]["needs_credentials"], 2, "{report}");
    // robot@example.com has no account here: the tokens go to the admin.
    assert!(
        report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["path"] == "$.tokens[0].owner_email"),
        "{report}"
    );
    let id = created_token(&report, "machine");
    let view = get(&target, &admin, &format!("/api/v1/tokens/{id}"))
        .await
        .json();
    assert_eq!(view["status"], "needs_credentials", "{view}");
    assert!(view["next_refresh_at"].is_null(), "{view}");
    assert_eq!(view["has_access_token"], false);
    let listed = get(&target, &admin, "/api/v1/tokens?status=needs_credentials")
        .await
        .json();
    assert_eq!(listed["total"], 2, "{listed}");
    // Until the secret is supplied, the provider refuses.
    let provider_id = view["provider_id"].as_str().unwrap().to_owned();
    let p = get(&target, &admin, &format!("/api/v1/providers/{provider_id}"))
        .await
        .json();
    assert_eq!(p["has_client_secret"], false, "{p}");
    // Supply the provider's secret, then request the token.
    let r = target
        .send(json_request(
            "PATCH",
            &format!("/api/v1/providers/{provider_id}"),
            Some(admin.clone()),
            json!({"client_secret": "cc-basic-secret"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = post(
        &target,
        &admin,
        &format!("/api/v1/tokens/{id}/request"),
        json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["status"], "active", "{}", r.body);
    let r = get(
        &target,
        &admin,
        &format!("/api/v1/tokens/{id}/access-token"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The Password token needs its password as well as the provider secret.
    let alice = created_token(&report, "alice");
    let pw_provider = get(&target, &admin, &format!("/api/v1/tokens/{alice}"))
        .await
        .json()["provider_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = target
        .send(json_request(
            "PATCH",
            &format!("/api/v1/providers/{pw_provider}"),
            Some(admin.clone()),
            json!({"client_secret": w.auth.info["clientSecrets"]["password"]}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = target
        .send(json_request(
            "PATCH",
            &format!("/api/v1/tokens/{alice}"),
            Some(admin.clone()),
            json!({"password": "wonderland"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = post(
        &target,
        &admin,
        &format!("/api/v1/tokens/{alice}/request"),
        json!({}),
    )
    .await;
    assert_eq!(r.json()["status"], "active", "{}", r.body);
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/bundles")
            .join(name),
    )
    .unwrap()
}

fn paths(reply: &Reply) -> Vec<String> {
    reply.json()["error"]["problems"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|p| p["path"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_names_what_and_where_and_imports_nothing() {
    let (app, admin) = fresh(&[("QUIVER_IMPORT_MAX_BYTES", "64KiB")]).await;
    // Raw bundles (previewed) and the same inside an apply envelope.
    for (file, status, code, path) in [
        ("not_json.json", 400, "invalid_json", "$"),
        ("empty.json", 400, "invalid_json", "$"),
        ("truncated.json", 400, "invalid_json", "$"),
        ("trailing_garbage.json", 400, "invalid_json", "$"),
        ("deep_nesting.json", 400, "invalid_bundle", "$"),
        ("top_level_array.json", 422, "invalid_bundle", "$"),
        ("missing_format.json", 422, "invalid_bundle", "$"),
        ("wrong_format.json", 422, "invalid_bundle", "$.format"),
        ("wrong_version.json", 422, "invalid_bundle", "$.version"),
        ("version_as_string.json", 422, "invalid_bundle", "$.version"),
        (
            "wrong_type.json",
            422,
            "invalid_bundle",
            "$.tokens[0].refresh_margin_secs",
        ),
        (
            "unknown_field.json",
            422,
            "invalid_bundle",
            "$.tokens[0].scopes",
        ),
        (
            "duplicate_provider_id.json",
            422,
            "invalid_bundle",
            "$.providers[1].id",
        ),
        (
            "duplicate_token_id.json",
            422,
            "invalid_bundle",
            "$.tokens[1].id",
        ),
        (
            "duplicate_provider_name.json",
            422,
            "invalid_bundle",
            "$.providers[1].name",
        ),
        (
            "duplicate_token_name.json",
            422,
            "invalid_bundle",
            "$.tokens[1].name",
        ),
        (
            "dangling_provider_id.json",
            422,
            "invalid_bundle",
            "$.tokens[0].provider_id",
        ),
        (
            "invalid_flow.json",
            422,
            "invalid_bundle",
            "$.tokens[0].flow",
        ),
        (
            "plain_secret.json",
            422,
            "invalid_bundle",
            "$.tokens[0].refresh_token",
        ),
        (
            "hostile_kdf.json",
            422,
            "invalid_bundle",
            "$.secrets.kdf.m_cost",
        ),
        (
            "bad_sealed_value.json",
            422,
            "invalid_bundle",
            "$.tokens[0].refresh_token.sealed",
        ),
    ] {
        let bytes = fixture(file);
        let r = import_raw(&app, &admin, bytes.clone()).await;
        assert_eq!(r.status.as_u16(), status, "{file}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], code, "{file}: {}", r.body);
        assert!(
            paths(&r).iter().any(|p| p == path),
            "{file}: no problem at {path}: {}",
            r.body
        );
        // Inside the envelope, for the files that are JSON at all.
        if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
            let r = import(&app, &admin, json!({"bundle": value, "mode": "apply"})).await;
            assert_eq!(r.status.as_u16(), status, "{file} in envelope: {}", r.body);
            assert!(
                paths(&r).iter().any(|p| p == path),
                "{file} in envelope: {}",
                r.body
            );
        }
    }
    // Over the size limit: 413 naming the limit, as a raw bundle and enveloped.
    let mut big: Value = serde_json::from_slice(&fixture("valid_small.json")).unwrap();
    big["tokens"][0]["scope"] = json!("x".repeat(70 * 1024));
    let r = import_raw(&app, &admin, serde_json::to_vec(&big).unwrap()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "payload_too_large");
    assert_eq!(r.json()["error"]["limit_bytes"], 65536);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("65536"),
        "{}",
        r.body
    );
    let huge = vec![b' '; 200 * 1024];
    let r = import_raw(&app, &admin, huge).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    // The request around the bundle is checked too.
    let valid: Value = serde_json::from_slice(&fixture("valid_small.json")).unwrap();
    let r = import(&app, &admin, json!({"bundle": valid, "mode": "merge"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.json()["error"]["field"], "mode", "{}", r.body);
    let r = import(
        &app,
        &admin,
        json!({"bundle": valid, "on_conflicts": "rename"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.json()["error"]["field"], "on_conflicts", "{}", r.body);
    let r = import(&app, &admin, json!({"bundle": valid, "import_id": "a/b"})).await;
    assert_eq!(r.json()["error"]["field"], "import_id", "{}", r.body);
    let r = app
        .send(
            Request::builder()
                .method("POST")
                .uri("/api/v1/import")
                .header("host", "127.0.0.1:3000")
                .header(
                    "cookie",
                    match &admin {
                        Auth::Cookie(c) => c.clone(),
                        Auth::Bearer(_) => unreachable!(),
                    },
                )
                .header("content-type", "text/plain")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.body);
    // A valid raw bundle is a preview: 200, nothing written.
    let r = import_raw(&app, &admin, fixture("valid_small.json")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["mode"], "preview");
    assert_eq!(r.json()["applied"], false);
    assert_eq!(counts(&app).await, (0, 0));
    // A URL this instance refuses (plain http off loopback) is a problem
    // at its path, found before anything is written.
    let mut http: Value = valid.clone();
    http["providers"][0]["token_endpoint"] = json!("http://as.example/token");
    let r = import(&app, &admin, json!({"bundle": http, "mode": "apply"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        paths(&r)
            .iter()
            .any(|p| p == "$.providers[0].token_endpoint"),
        "{}",
        r.body
    );
    assert_eq!(counts(&app).await, (0, 0));
    // Export: unknown ids are named by their place in the request.
    let r = export(&app, &admin, json!({"token_ids": ["nope"]})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(paths(&r), vec!["$.token_ids[0]".to_owned()]);
    let r = export(&app, &admin, json!({"include_secrets": true})).await;
    assert_eq!(r.json()["error"]["field"], "passphrase", "{}", r.body);
    let r = export(
        &app,
        &admin,
        json!({"include_secrets": true, "passphrase": "short"}),
    )
    .await;
    assert_eq!(r.json()["error"]["field"], "passphrase", "{}", r.body);
    let r = export(&app, &admin, json!({"passphrase": PASSPHRASE})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_policies_skip_overwrite_and_keep_both() {
    let (w, machine, _) = source().await;
    let (bundle, _) = export_ok(&w.app, &w.admin, json!({})).await;
    let before = counts(&w.app).await;
    let cc = w.provider_id("cc").await;

    // Skip: everything is here already, nothing changes.
    for mode in ["preview", "apply"] {
        let r = import(
            &w.app,
            &w.admin,
            json!({"bundle": bundle, "mode": mode, "on_conflict": "skip"}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let s = &r.json()["summary"];
        assert_eq!(s["providers"]["skipped"], 3, "{s}");
        assert_eq!(s["tokens"]["skipped"], 2, "{s}");
        assert_eq!(s["tokens"]["created"], 0, "{s}");
    }
    assert_eq!(counts(&w.app).await, before);

    // Overwrite: settings changed here go back to the bundle's; the
    // token keeps its secrets and stays active.
    let r = w
        .app
        .send(json_request(
            "PATCH",
            &format!("/api/v1/providers/{cc}"),
            Some(w.admin.clone()),
            json!({"timeout_ms": 9000}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = w
        .app
        .send(json_request(
            "PATCH",
            &format!("/api/v1/tokens/{machine}"),
            Some(w.admin.clone()),
            json!({"scope": "api:write"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = import(
        &w.app,
        &w.admin,
        json!({"bundle": bundle, "mode": "apply", "on_conflict": "overwrite"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let s = &r.json()["summary"];
    assert_eq!(s["providers"]["updated"], 3, "{s}");
    assert_eq!(s["tokens"]["updated"], 2, "{s}");
    assert_eq!(counts(&w.app).await, before);
    let p = get(&w.app, &w.admin, &format!("/api/v1/providers/{cc}"))
        .await
        .json();
    assert_eq!(p["timeout_ms"], 30000, "{p}");
    assert_eq!(p["has_client_secret"], true, "{p}");
    let t = get(&w.app, &w.admin, &format!("/api/v1/tokens/{machine}"))
        .await
        .json();
    assert_eq!(t["scope"], "api:read", "{t}");
    assert_eq!(t["status"], "active", "{t}");
    let r = get(
        &w.app,
        &w.admin,
        &format!("/api/v1/tokens/{machine}/access-token"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Keep both: new names, new rows, tokens on the renamed providers.
    let r = import(
        &w.app,
        &w.admin,
        json!({"bundle": bundle, "mode": "apply", "on_conflict": "rename"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let report = r.json();
    assert_eq!(report["summary"]["providers"]["created"], 3, "{report}");
    assert_eq!(report["summary"]["tokens"]["created"], 2, "{report}");
    assert_eq!(counts(&w.app).await, (before.0 + 3, before.1 + 2));
    let copy = created_token(&report, "machine");
    let t = get(&w.app, &w.admin, &format!("/api/v1/tokens/{copy}"))
        .await
        .json();
    assert_eq!(t["name"], "machine (2)", "{t}");
    assert_eq!(t["provider_name"], "cc (2)", "{t}");
    assert_eq!(t["owner_email"], "robot@example.com", "{t}");
    assert_eq!(t["status"], "needs_credentials", "{t}");
    // Once more: "(3)".
    let r = import(
        &w.app,
        &w.admin,
        json!({"bundle": bundle, "mode": "apply", "on_conflict": "rename"}),
    )
    .await;
    let report = r.json();
    let third = created_token(&report, "machine");
    let t = get(&w.app, &w.admin, &format!("/api/v1/tokens/{third}"))
        .await
        .json();
    assert_eq!(t["name"], "machine (3)", "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_passphrase_imports_nothing() {
    let (w, _, _) = source().await;
    let (bundle, _) = export_ok(
        &w.app,
        &w.admin,
        json!({"include_secrets": true, "passphrase": PASSPHRASE}),
    )
    .await;
    let (target, admin) = fresh(&[]).await;
    for mode in ["preview", "apply"] {
        let r = import(
            &target,
            &admin,
            json!({"bundle": bundle, "passphrase": "Correct horse battery staple", "mode": mode}),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(r.json()["error"]["code"], "wrong_passphrase", "{}", r.body);
        assert_eq!(r.json()["error"]["field"], "passphrase");
        assert!(r.body.contains("nothing was imported"), "{}", r.body);
    }
    let r = import(&target, &admin, json!({"bundle": bundle, "mode": "apply"})).await;
    assert_eq!(
        r.json()["error"]["code"],
        "passphrase_required",
        "{}",
        r.body
    );
    assert_eq!(counts(&target).await, (0, 0));
    // A preview without it says what it will need.
    let r = import(&target, &admin, json!({"bundle": bundle})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["warnings"][0]["path"], "$.secrets", "{}", r.body);
    // A value swapped into another token: the bundle no longer matches its
    // authentication code (and the value would not open at its new place).
    let mut swapped = bundle.clone();
    swapped["tokens"][0]["access_token"] = bundle["tokens"][1]["access_token"].clone();
    let r = import(
        &target,
        &admin,
        json!({"bundle": swapped, "passphrase": PASSPHRASE, "mode": "apply"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "bundle_altered", "{}", r.body);
    assert!(paths(&r).iter().any(|p| p == "$.mac"), "{}", r.body);
    assert_eq!(counts(&target).await, (0, 0));
    let audit = get(&target, &admin, "/api/v1/audit?action=transfer.import")
        .await
        .json();
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["outcome"] == "failure"),
        "{audit}"
    );
}

/// A bundle of `providers` providers and `tokens` Client Credentials
/// tokens, spread over the providers; no secrets.
fn generated(providers: usize, tokens: usize, last_name: &str) -> Value {
    let providers_json: Vec<Value> = (0..providers)
        .map(|i| {
            json!({
                "id": format!("p{i}"),
                "name": format!("Provider {i:03}"),
                "token_endpoint": format!("https://as{i}.example/token"),
                "client_id": format!("client-{i}"),
            })
        })
        .collect();
    let tokens_json: Vec<Value> = (0..tokens)
        .map(|i| {
            let name = if i + 1 == tokens {
                last_name.to_owned()
            } else {
                format!("Token {i:05}")
            };
            json!({
                "id": format!("t{i}"),
                "name": name,
                "provider_id": format!("p{}", i % providers),
                "owner_email": "admin@example.com",
                "flow": "client_credentials",
                "scope": "api:read",
            })
        })
        .collect();
    json!({
        "format": "quiver-export",
        "version": 1,
        "exported_at": "2026-01-02T03:04:05Z",
        "source": {"instance": "https://old.example", "quiver_version": "0.1.0"},
        "secrets": null,
        "providers": providers_json,
        "tokens": tokens_json,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_at_the_last_row_leaves_the_database_unchanged() {
    let (app, admin) = fresh(&[]).await;
    // A real failure inside the database, at the very last row written
    // (the third insert batch): a trigger that refuses it.
    app.state
        .instance
        .db
        .execute_unprepared(
            "CREATE TRIGGER refuse_last_row BEFORE INSERT ON tokens \
             WHEN NEW.name = 'the last one' \
             BEGIN SELECT RAISE(ABORT, 'injected failure at the last row'); END",
        )
        .await
        .unwrap();
    let bundle = generated(3, 1200, "the last one");
    let r = import(&app, &admin, json!({"bundle": bundle, "mode": "apply"})).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.body);
    assert!(
        r.body.contains("rolled back; nothing was imported"),
        "{}",
        r.body
    );
    assert!(
        !r.body.contains("injected"),
        "database details stay in the log: {}",
        r.body
    );
    assert_eq!(counts(&app).await, (0, 0));
    let audit = get(&app, &admin, "/api/v1/audit?action=transfer.import")
        .await
        .json();
    assert_eq!(audit["items"][0]["outcome"], "failure", "{audit}");
    // Without the fault the same bundle imports whole.
    app.state
        .instance
        .db
        .execute_unprepared("DROP TRIGGER refuse_last_row")
        .await
        .unwrap();
    let r = import(&app, &admin, json!({"bundle": bundle, "mode": "apply"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(counts(&app).await, (3, 1200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_export_and_import() {
    let (app, admin) = fresh(&[]).await;
    let pw = app.user("user@example.com", Role::User).await;
    let cookie = app.login("user@example.com", &pw).await;
    let (key, _) = app.api_key(&cookie, "k").await;
    let bundle: Value = serde_json::from_slice(&fixture("valid_small.json")).unwrap();
    for who in [Some(Auth::Bearer(key)), Some(Auth::Cookie(cookie)), None] {
        let expected = if who.is_some() {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNAUTHORIZED
        };
        let r = app
            .send(json_request(
                "POST",
                "/api/v1/export",
                who.clone(),
                json!({}),
            ))
            .await;
        assert_eq!(r.status, expected, "{}", r.body);
        let r = app
            .send(json_request(
                "POST",
                "/api/v1/import",
                who.clone(),
                json!({"bundle": bundle, "mode": "apply"}),
            ))
            .await;
        assert_eq!(r.status, expected, "{}", r.body);
        let r = app
            .send(request("GET", "/api/v1/import/x/progress", who.clone()))
            .await;
        assert_eq!(r.status, expected, "{}", r.body);
    }
    assert_eq!(counts(&app).await, (0, 0));
    let audit = get(&app, &admin, "/api/v1/audit?object_kind=bundle")
        .await
        .json();
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["outcome"] == "denied"),
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_import_on_postgres_is_fast_too() {
    let db = test_database("transfer").await;
    let (app, admin) = fresh(&[("QUIVER_DATABASE_URL", &db.url)]).await;
    let bundle = generated(100, 10_000, "Token 09999");
    let started = Instant::now();
    let r = import(&app, &admin, json!({"bundle": bundle, "mode": "apply"})).await;
    let took = started.elapsed();
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        &r.body[..r.body.len().min(2000)]
    );
    eprintln!("PostgreSQL: import of 100 providers and 10,000 tokens: {took:?}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(counts(&app).await, (100, 10_000));
    let started = Instant::now();
    let (out, _) = export_ok(&app, &admin, json!({})).await;
    eprintln!(
        "PostgreSQL: export of 10,000 tokens: {:?}",
        started.elapsed()
    );
    assert_eq!(out["tokens"].as_array().unwrap().len(), 10_000);
    // Again with rename: every name is taken, every row is new.
    let r = import(
        &app,
        &admin,
        json!({"bundle": bundle, "mode": "apply", "on_conflict": "rename"}),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        &r.body[..r.body.len().min(2000)]
    );
    assert_eq!(counts(&app).await, (200, 20_000));
    drop(app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_import_is_fast_streams_back_out_and_reports_progress() {
    let (app, admin) = fresh(&[]).await;
    let bundle = generated(100, 10_000, "Token 09999");
    let body = json!({"bundle": bundle, "mode": "apply", "import_id": "big-1"});
    assert!(
        body.to_string().len() > 1024 * 1024,
        "over the API's usual 1 MiB"
    );
    let app = std::sync::Arc::new(app);
    let started = Instant::now();
    let task = {
        let (app, admin) = (app.clone(), admin.clone());
        tokio::spawn(async move { import(&app, &admin, body).await })
    };
    let mut seen = Vec::new();
    while !task.is_finished() {
        let r = get(&app, &admin, "/api/v1/import/big-1/progress").await;
        if r.status == StatusCode::OK {
            seen.push(r.json());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = task.await.unwrap();
    let took = started.elapsed();
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        &r.body[..r.body.len().min(2000)]
    );
    assert_eq!(r.json()["import_id"], "big-1");
    assert!(
        took < Duration::from_secs(10),
        "100 providers and 10,000 tokens took {took:?}"
    );
    eprintln!(
        "import of 100 providers and 10,000 tokens: {took:?}; {} progress polls",
        seen.len()
    );
    assert_eq!(counts(&app).await, (100, 10_000));
    // Polled while it ran: rows written so far, of all of them.
    assert!(
        seen.iter()
            .any(|s| s["phase"] == "writing" && s["total"] == 10_100),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .all(|s| s["done"].as_u64() <= s["total"].as_u64())
    );
    let last = get(&app, &admin, "/api/v1/import/big-1/progress")
        .await
        .json();
    assert_eq!(last["phase"], "done", "{last}");
    assert_eq!(last["finished"], true);
    assert_eq!(last["done"], 10_100);
    assert_eq!(last["total"], 10_100);
    let r = get(&app, &admin, "/api/v1/import/unknown/progress").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Imported without secrets, none is due: the scheduler leaves them be.
    let due = token::Entity::find()
        .all(&app.state.instance.db)
        .await
        .unwrap()
        .iter()
        .filter(|t| t.refresh_due_at.is_some())
        .count();
    assert_eq!(due, 0);
    // And back out, streamed: every token, in a bundle that reads.
    let started = Instant::now();
    let (out, text) = export_ok(&app, &admin, json!({})).await;
    eprintln!(
        "export of 10,000 tokens: {:?}, {} bytes",
        started.elapsed(),
        text.len()
    );
    assert_eq!(out["providers"].as_array().unwrap().len(), 100);
    assert_eq!(out["tokens"].as_array().unwrap().len(), 10_000);
    server::transfer::read_bundle(text.as_bytes(), &server::transfer::Limits::default()).unwrap();
    // Written a page at a time: many writes, none near the whole.
    let transfer = app.state.instance.transfer.clone();
    let who = transfer.authorize_cli().await.unwrap();
    let plan = transfer
        .plan_export(&who, server::transfer::ExportRequest::default())
        .await
        .unwrap();
    let mut sink = Recorder::default();
    let progress = std::sync::Mutex::new(Vec::new());
    let summary = transfer
        .write_export(&who, plan, &mut sink, &|done, total| {
            progress.lock().unwrap().push((done, total));
        })
        .await
        .unwrap();
    assert_eq!(summary.tokens, 10_000);
    assert_eq!(summary.bytes, sink.total as u64);
    assert!(sink.writes >= 20, "{} writes", sink.writes);
    assert!(
        sink.largest < 512 * 1024,
        "one write of {} bytes",
        sink.largest
    );
    let progress = progress.into_inner().unwrap();
    assert_eq!(progress.last(), Some(&(10_100, 10_100)));
    // Selected tokens bring their providers.
    let some: Vec<String> = token::Entity::find()
        .all(&app.state.instance.db)
        .await
        .unwrap()
        .into_iter()
        .take(3)
        .map(|t| t.id)
        .collect();
    let (part, _) = export_ok(&app, &admin, json!({"token_ids": some})).await;
    assert_eq!(part["tokens"].as_array().unwrap().len(), 3);
    let wanted: std::collections::HashSet<&str> = part["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["provider_id"].as_str().unwrap())
        .collect();
    let got: std::collections::HashSet<&str> = part["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(wanted, got);
}

/// An async writer that only counts: how many writes, how large.
#[derive(Default)]
struct Recorder {
    writes: usize,
    largest: usize,
    total: usize,
}

impl tokio::io::AsyncWrite for Recorder {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.writes += 1;
        self.largest = self.largest.max(buf.len());
        self.total += buf.len();
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

mod cli {
    //! `quiver export` and `quiver import` through the real binary.

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

    /// Runs `quiver` on a data dir and key; returns (code, stdout, stderr).
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
    async fn cli_round_trip_with_secrets_into_another_instance() {
        // The source: an in-process instance on a database the binary can open.
        let source_dir = tempfile::tempdir().unwrap();
        let source_key = key();
        let db_url = format!("sqlite://{}", source_dir.path().join("quiver.db").display());
        let w = World::with_env(&[
            ("QUIVER_DATABASE_URL", &db_url),
            ("QUIVER_MASTER_KEY", &source_key),
        ])
        .await;
        let cc = w.provider_id("cc").await;
        let machine = w
            .token(json!({"name": "machine", "provider_id": cc, "flow": "client_credentials", "scope": "api:read"}))
            .await;
        let access = w.app.token_secret(&machine, "access_token").await.unwrap();
        let work = tempfile::tempdir().unwrap();
        let file = work.path().join("bundle.json");
        let file_text = file.to_str().unwrap();

        // No passphrase: refused, and no file is left behind.
        let (code, _, err) = quiver(
            source_dir.path(),
            &source_key,
            &["export", "--out", file_text, "--include-secrets"],
            &[],
            "",
        );
        assert_ne!(code, 0);
        assert!(err.contains("passphrase"), "{err}");
        assert!(!file.exists());
        // Shorter than 12 characters: refused the same way.
        let (code, _, err) = quiver(
            source_dir.path(),
            &source_key,
            &["export", "--out", file_text, "--include-secrets"],
            &[("QUIVER_EXPORT_PASSPHRASE", "eleven char")],
            "",
        );
        assert_ne!(code, 0);
        assert!(
            err.contains("passphrase must be at least 12 characters"),
            "{err}"
        );
        assert!(!file.exists());
        // With it, from the environment (never from argv).
        let (code, out, err) = quiver(
            source_dir.path(),
            &source_key,
            &["export", "--out", file_text, "--include-secrets"],
            &[("QUIVER_EXPORT_PASSPHRASE", PASSPHRASE)],
            "",
        );
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("exported 3 providers and 1 tokens"), "{out}");
        assert!(!err.contains("unknown setting"), "{err}");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("\"sealed\""));
        assert!(!text.contains(&access));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "a bundle with secrets is private");
        }
        // Only some: --token brings its provider.
        let part = work.path().join("part.json");
        let (code, out, err) = quiver(
            source_dir.path(),
            &source_key,
            &[
                "export",
                "--out",
                part.to_str().unwrap(),
                "--token",
                &machine,
            ],
            &[],
            "",
        );
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("exported 1 providers and 1 tokens"), "{out}");
        let (code, _, err) = quiver(
            source_dir.path(),
            &source_key,
            &["export", "--out", part.to_str().unwrap(), "--token", "nope"],
            &[],
            "",
        );
        assert_ne!(code, 0);
        assert!(err.contains("--token[0]"), "{err}");

        // The target: a new instance with another key and an admin.
        let target_dir = tempfile::tempdir().unwrap();
        let target_key = key();
        let (code, _, err) = quiver(
            target_dir.path(),
            &target_key,
            &["user", "create", "--email", "boss@example.com", "--admin"],
            &[],
            "a long enough password\n",
        );
        assert_eq!(code, 0, "{err}");
        // Preview by default; the passphrase from standard input.
        let (code, out, err) = quiver(
            target_dir.path(),
            &target_key,
            &["import", file_text],
            &[],
            &format!("{PASSPHRASE}\n"),
        );
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("preview"), "{out}");
        assert!(out.contains("tokens: 1 created"), "{out}");
        // A wrong passphrase: non-zero, says so, imports nothing.
        let (code, _, err) = quiver(
            target_dir.path(),
            &target_key,
            &["import", file_text, "--apply"],
            &[("QUIVER_IMPORT_PASSPHRASE", "not the passphrase")],
            "",
        );
        assert_ne!(code, 0);
        assert!(err.contains("wrong passphrase"), "{err}");
        let (code, out, err) = quiver(
            target_dir.path(),
            &target_key,
            &[
                "import",
                file_text,
                "--apply",
                "--on-conflict",
                "rename",
                "--json",
            ],
            &[("QUIVER_IMPORT_PASSPHRASE", PASSPHRASE)],
            "",
        );
        assert_eq!(code, 0, "{err}");
        let report: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["applied"], true);
        assert_eq!(report["on_conflict"], "rename");
        let id = created_token(&report, "machine");
        // A bad file: non-zero, with the path of the problem.
        let bad = work.path().join("bad.json");
        std::fs::write(&bad, fixture("dangling_provider_id.json")).unwrap();
        let (code, _, err) = quiver(
            target_dir.path(),
            &target_key,
            &["import", bad.to_str().unwrap(), "--apply"],
            &[],
            "",
        );
        assert_ne!(code, 0);
        assert!(err.contains("$.tokens[0].provider_id"), "{err}");

        // The imported token works in the target, against the real server.
        let target_url = format!("sqlite://{}", target_dir.path().join("quiver.db").display());
        let target = TestApp::with_env(&[
            ("QUIVER_DATABASE_URL", &target_url),
            ("QUIVER_MASTER_KEY", &target_key),
            ("QUIVER_ALLOW_INSECURE_LOOPBACK", "true"),
        ])
        .await;
        target.user("admin2@example.com", Role::Admin).await;
        let pw = "pw-admin2@example.com-long-enough";
        let admin = Auth::Cookie(target.login("admin2@example.com", pw).await);
        let r = get(
            &target,
            &admin,
            &format!("/api/v1/tokens/{id}/access-token"),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.json()["access_token"], access.as_str());
        let r = post(
            &target,
            &admin,
            &format!("/api/v1/tokens/{id}/refresh"),
            json!({}),
        )
        .await;
        assert_eq!(r.json()["status"], "active", "{}", r.body);
        let audit = get(&target, &admin, "/api/v1/audit?action=transfer.import")
            .await
            .json();
        assert!(
            audit["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["actor"] == "cli" && e["outcome"] == "success"),
            "{audit}"
        );
    }
}

/// A server-function call with a JSON body and its `Content-Length`, as a
/// browser sends it.
fn rpc_json(path: &str, who: &Auth, body: String) -> axum::http::Request<axum::body::Body> {
    let mut r = json_request("POST", path, Some(who.clone()), Value::Null);
    r.headers_mut()
        .insert("content-length", body.len().to_string().parse().unwrap());
    *r.body_mut() = axum::body::Body::from(body);
    r
}

/// Server functions refuse bodies over 1 MiB (413 naming the limit, before
/// reading them), except for the Import/Export page's import, which takes a
/// bundle up to `QUIVER_IMPORT_MAX_BYTES` as a file upload. A body without
/// a length is cut off at the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_functions_refuse_big_bodies_but_the_page_imports_big_bundles() {
    let (app, admin) = fresh(&[]).await;
    let big = format!(r#"{{"id": "{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let r = app
        .send(rpc_json(
            &TestApp::server_fn_path("run_job"),
            &admin,
            big.clone(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    assert!(
        r.body.contains("larger than the 1048576 bytes"),
        "{}",
        r.body
    );

    // Without a length, the body is cut off at the limit instead.
    let mut unannounced = rpc_json(&TestApp::server_fn_path("run_job"), &admin, big);
    unannounced.headers_mut().remove("content-length");
    let r = app.send(unannounced).await;
    assert!(r.status.is_client_error(), "{} {}", r.status, r.body);

    // The page's import takes a 2 MiB bundle (a preview: nothing written).
    let bundle = generated(10, 9_000, "Last token").to_string();
    assert!(bundle.len() > 1024 * 1024, "{} bytes", bundle.len());
    let parts: [(&str, &[u8]); 2] = [("on_conflict", b"skip"), ("bundle", bundle.as_bytes())];
    let r = app
        .send(crate::support::import_upload(Some(admin.clone()), &parts))
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        &r.body[..r.body.len().min(2000)]
    );
    let report = r.json();
    assert_eq!(report["summary"]["tokens"]["created"], 9_000);
    assert_eq!(report["applied"], false);
    assert_eq!(counts(&app).await, (0, 0));

    // Over the instance's import limit: refused before it is read.
    let (small, admin) = fresh(&[("QUIVER_IMPORT_MAX_BYTES", "100000")]).await;
    let r = small
        .send(crate::support::import_upload(Some(admin.clone()), &parts))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    assert!(r.body.contains("QUIVER_IMPORT_MAX_BYTES"), "{}", r.body);
    // Without a length, it is counted as it is read and refused the same
    // way once the bundle is over the limit.
    let mut unannounced = crate::support::import_upload(Some(admin.clone()), &parts);
    unannounced.headers_mut().remove("content-length");
    let r = small.send(unannounced).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    assert!(r.body.contains("100000 bytes"), "{}", r.body);
    assert!(r.body.contains("QUIVER_IMPORT_MAX_BYTES"), "{}", r.body);
    assert_eq!(counts(&small).await, (0, 0));
}

/// The page's upload carries the same options as the REST import: preview
/// by default, apply with an id to follow, the conflict policy, and a
/// passphrase for sealed secrets; a bad option is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_upload_previews_applies_and_names_a_bad_option() {
    use crate::support::import_upload;
    let (source, source_admin) = fresh(&[]).await;
    let bundle = generated(1, 3, "Last token").to_string();
    let r = source
        .send(import_upload(
            Some(source_admin.clone()),
            &[("bundle", bundle.as_bytes())],
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["applied"], false, "{}", r.body);
    assert_eq!(counts(&source).await, (0, 0));
    let r = source
        .send(import_upload(
            Some(source_admin.clone()),
            &[
                ("on_conflict", b"skip"),
                ("apply", b"true"),
                ("import_id", b"page-import-1"),
                ("bundle", bundle.as_bytes()),
            ],
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["applied"], true, "{}", r.body);
    assert_eq!(counts(&source).await, (1, 3));
    let progress = get(
        &source,
        &source_admin,
        "/api/v1/import/page-import-1/progress",
    )
    .await;
    assert_eq!(progress.json()["phase"], "done", "{}", progress.body);

    // Keep both: everything again under new names.
    let r = source
        .send(import_upload(
            Some(source_admin.clone()),
            &[
                ("on_conflict", b"rename"),
                ("apply", b"true"),
                ("bundle", bundle.as_bytes()),
            ],
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["summary"]["tokens"]["created"], 3, "{}", r.body);
    assert_eq!(counts(&source).await, (2, 6));

    // Secrets: sealed under a passphrase, opened by it on the way in.
    let (sealed, _) = export_ok(
        &source,
        &source_admin,
        json!({"include_secrets": true, "passphrase": PASSPHRASE}),
    )
    .await;
    let sealed = sealed.to_string();
    let (target, target_admin) = fresh(&[]).await;
    let r = target
        .send(import_upload(
            Some(target_admin.clone()),
            &[("apply", b"true"), ("bundle", sealed.as_bytes())],
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("passphrase"), "{}", r.body);
    let r = target
        .send(import_upload(
            Some(target_admin.clone()),
            &[
                ("passphrase", PASSPHRASE.as_bytes()),
                ("apply", b"true"),
                ("bundle", sealed.as_bytes()),
            ],
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["secrets"], true, "{}", r.body);
    assert_eq!(counts(&target).await, (2, 6));

    // Bad options and shapes are named; nothing is written.
    for (parts, field) in [
        (
            vec![
                ("on_conflict", &b"merge"[..]),
                ("bundle", bundle.as_bytes()),
            ],
            "on_conflict",
        ),
        (
            vec![("apply", &b"yes"[..]), ("bundle", bundle.as_bytes())],
            "apply",
        ),
        (vec![("on_conflict", &b"skip"[..])], "bundle"),
        (
            vec![("bundle", bundle.as_bytes()), ("bundle", bundle.as_bytes())],
            "bundle",
        ),
    ] {
        let r = target
            .send(import_upload(Some(target_admin.clone()), &parts))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {}",
            r.body
        );
        assert!(r.body.contains(field), "{field}: {}", r.body);
    }
    let r = target
        .send(import_upload(
            Some(target_admin.clone()),
            &[("mode", b"apply"), ("bundle", bundle.as_bytes())],
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("\\\"mode\\\""), "{}", r.body);
    // A JSON body is not an upload.
    let r = target
        .send(rpc_json(
            app::transfer::IMPORT_ENDPOINT,
            &target_admin,
            json!({"input": {"bundle": bundle}}).to_string(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.body);
    assert_eq!(counts(&target).await, (2, 6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_key_and_its_certificate_travel_together() {
    let w = World::new().await;
    let mut body = w.auth.provider("entra", "cc-pkjwt", "private_key_jwt");
    body["generate_key"] = json!(true);
    body["generate_certificate"] = json!(true);
    body["send_sha1_thumbprint"] = json!(true);
    let r = post(&w.app, &w.admin, "/api/v1/providers", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let before = r.json();
    let (bundle, _) = export_ok(
        &w.app,
        &w.admin,
        json!({"include_secrets": true, "passphrase": PASSPHRASE}),
    )
    .await;
    let entry = bundle["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "entra")
        .unwrap()
        .clone();
    assert_eq!(entry["certificate"], before["certificate"]["pem"]);
    assert_eq!(entry["send_sha1_thumbprint"], true);

    let (target, admin) = fresh(&[]).await;
    let r = import(
        &target,
        &admin,
        json!({"bundle": bundle, "passphrase": PASSPHRASE, "mode": "apply"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let list = get(&target, &admin, "/api/v1/providers").await.json();
    let after = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "entra")
        .unwrap()
        .clone();
    assert_eq!(after["certificate"], before["certificate"]);
    assert_eq!(after["send_sha1_thumbprint"], true);
    assert_eq!(after["public_jwk"], before["public_jwk"]);

    // The certificate is part of what the passphrase authenticates: one
    // swapped for another key's is refused before anything is written.
    let mut other = bundle.clone();
    let mut body = w.auth.provider("other", "cc-pkjwt", "private_key_jwt");
    body["generate_key"] = json!(true);
    body["generate_certificate"] = json!(true);
    let foreign = post(&w.app, &w.admin, "/api/v1/providers", body)
        .await
        .json();
    let index = other["providers"]
        .as_array()
        .unwrap()
        .iter()
        .position(|p| p["name"] == "entra")
        .unwrap();
    other["providers"][index]["certificate"] = foreign["certificate"]["pem"].clone();
    let (target, admin) = fresh(&[]).await;
    let r = import(
        &target,
        &admin,
        json!({"bundle": other, "passphrase": PASSPHRASE, "mode": "apply"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "bundle_altered", "{}", r.body);
    assert_eq!(counts(&target).await, (0, 0));
}

/// How often the real authorization server answered `code` to `grant`.
async fn grant_errors(w: &World, grant: &str, code: &str) -> u64 {
    w.auth.stats().await["tokenErrors"][grant][code]
        .as_u64()
        .unwrap_or(0)
}

/// The id of the provider named `name` in `app`.
async fn provider_named(app: &TestApp, who: &Auth, name: &str) -> Value {
    let list = get(app, who, "/api/v1/providers").await.json();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no provider {name}: {list}"))
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_rotation_and_a_tokens_own_test_travel_in_the_bundle() {
    let w = World::new().await;
    let cc = w.provider_id("cc").await;
    let right = w.auth.client_secret("cc-basic");
    // The provider's current secret is already retired at the server; the
    // next one is the secret it accepts. Both with expiries.
    let r = w
        .app
        .send(json_request(
            "PATCH",
            &format!("/api/v1/providers/{cc}"),
            Some(w.admin.clone()),
            json!({"client_secret": "retired-default-secret", "next_client_secret": right,
                   "client_secret_expires_at": "2030-03-31",
                   "next_client_secret_expires_at": "2031-09-30"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // A token with its own client, rotating the same way, and its own
    // connection test.
    let own = w
        .token(
            json!({"name": "own", "provider_id": cc, "flow": "client_credentials",
                      "use_default_keys": false, "client_id": "cc-basic",
                      "client_secret": "retired-own-secret", "next_client_secret": right,
                      "client_secret_expires_at": "2030-01-31",
                      "next_client_secret_expires_at": "2031-01-31"}),
        )
        .await;
    let userinfo = format!("{}/me", w.auth.issuer);
    let r = w
        .app
        .send(json_request(
            "PATCH",
            &format!("/api/v1/tokens/{own}"),
            Some(w.admin.clone()),
            json!({"test_request_url": userinfo, "test_request_method": "POST"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let (bundle, text) = export_ok(
        &w.app,
        &w.admin,
        json!({"include_secrets": true, "passphrase": PASSPHRASE}),
    )
    .await;
    assert!(!text.contains(&right), "a next secret is in clear");
    let entry = |kind: &str, name: &str| -> Value {
        bundle[kind]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap()
            .clone()
    };
    let p = entry("providers", "cc");
    assert!(p["next_client_secret"]["sealed"].is_string(), "{p}");
    assert_eq!(p["client_secret_expires_at"], "2030-03-31T23:59:59Z", "{p}");
    assert_eq!(p["next_client_secret_expires_at"], "2031-09-30T23:59:59Z");
    let t = entry("tokens", "own");
    assert!(t["next_client_secret"]["sealed"].is_string(), "{t}");
    assert_eq!(t["client_secret_expires_at"], "2030-01-31T23:59:59Z", "{t}");
    assert_eq!(t["next_client_secret_expires_at"], "2031-01-31T23:59:59Z");
    assert_eq!(t["test_request_url"], userinfo.as_str());
    assert_eq!(t["test_request_method"], "POST");

    // Into an instance with another master key.
    let (target, admin) = fresh(&[]).await;
    target.user("robot@example.com", Role::User).await;
    let r = import(
        &target,
        &admin,
        json!({"bundle": bundle, "passphrase": PASSPHRASE, "mode": "apply"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let report = r.json();
    let here = provider_named(&target, &admin, "cc").await;
    assert_eq!(here["has_next_client_secret"], true, "{here}");
    assert_eq!(here["client_secret_expires_at"], "2030-03-31T23:59:59Z");
    assert_eq!(
        here["next_client_secret_expires_at"],
        "2031-09-30T23:59:59Z"
    );
    let id = created_token(&report, "own");
    let view = get(&target, &admin, &format!("/api/v1/tokens/{id}"))
        .await
        .json();
    assert_eq!(view["has_next_client_secret"], true, "{view}");
    assert_eq!(view["client_secret_expires_at"], "2030-01-31T23:59:59Z");
    assert_eq!(view["test_request_url"], userinfo.as_str());
    assert_eq!(view["test_request_method"], "POST");

    // The real server takes the next secrets that came along: the token's
    // own client after one `invalid_client` for its retired secret, and a
    // new token on the provider's default client likewise.
    let refused = grant_errors(&w, "client_credentials", "invalid_client").await;
    let r = post(
        &target,
        &admin,
        &format!("/api/v1/tokens/{id}/request"),
        json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["status"], "active", "{}", r.body);
    let view = get(&target, &admin, &format!("/api/v1/tokens/{id}"))
        .await
        .json();
    assert_eq!(view["secret_in_use"], "next", "{view}");
    let r = post(
        &target,
        &admin,
        "/api/v1/tokens",
        json!({"name": "default keys", "provider_id": here["id"], "flow": "client_credentials"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["status"], "active", "{}", r.body);
    assert_eq!(
        grant_errors(&w, "client_credentials", "invalid_client").await,
        refused + 2
    );
    // Its own test request is the one the test sends.
    let r = post(
        &target,
        &admin,
        &format!("/api/v1/tokens/{id}/test"),
        json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["url"], userinfo.as_str(), "{}", r.body);
    assert_eq!(r.json()["method"], "POST", "{}", r.body);

    // An overwrite without secrets keeps the secrets here, next ones and
    // expiries included, and what the provider last accepted.
    let (plain, plain_text) = export_ok(&w.app, &w.admin, json!({})).await;
    assert!(!plain_text.contains("2030-03-31"), "{plain_text}");
    let r = import(
        &target,
        &admin,
        json!({"bundle": plain, "mode": "apply", "on_conflict": "overwrite"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let after = provider_named(&target, &admin, "cc").await;
    assert_eq!(after["has_next_client_secret"], true, "{after}");
    assert_eq!(after["client_secret_expires_at"], "2030-03-31T23:59:59Z");
    assert_eq!(after["secret_in_use"], "next", "{after}");
    let view = get(&target, &admin, &format!("/api/v1/tokens/{id}"))
        .await
        .json();
    assert_eq!(view["has_next_client_secret"], true, "{view}");
    assert_eq!(
        view["next_client_secret_expires_at"],
        "2031-01-31T23:59:59Z"
    );
    assert_eq!(view["secret_in_use"], "next", "{view}");
    assert_eq!(view["status"], "active", "{view}");

    // An expiry without its secret is refused where it is, nothing written.
    let before = counts(&target).await;
    let mut edited = plain.clone();
    let i = edited["providers"]
        .as_array()
        .unwrap()
        .iter()
        .position(|p| p["name"] == "cc")
        .unwrap();
    edited["providers"][i]["next_client_secret_expires_at"] = json!("2031-09-30T23:59:59Z");
    let r = import(
        &target,
        &admin,
        json!({"bundle": edited, "mode": "apply", "on_conflict": "rename"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(
        paths(&r),
        [format!("$.providers[{i}].next_client_secret_expires_at")]
    );
    assert!(r.body.contains("travels with its secret"), "{}", r.body);
    assert_eq!(counts(&target).await, before);
}
