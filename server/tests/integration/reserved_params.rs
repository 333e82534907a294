//! Extra values may not use the names of the parameters Quiver sets itself
//! (client, grant, redirect, state, PKCE, assertions…): refused with 422
//! naming the key through the REST API, the page's server functions and
//! import; a row stored before the rule is sent without them, the
//! provider's extra values win over the token's, an authorization link
//! never repeats Quiver's parameters, and a Private Key JWT assertion is
//! always made for the provider's client, against the real authorization
//! server.

use axum::http::StatusCode;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use server::account::Role;
use server::db::entity::{provider, token};

use crate::support::world::{ENV, World};
use crate::support::{Auth, Reply, TestApp, json_request, request, server_fn_json};

async fn send(w: &World, method: &str, path: &str, who: &Auth, body: Value) -> Reply {
    w.app
        .send(json_request(method, path, Some(who.clone()), body))
        .await
}

/// Asserts a 422 naming `field`.
fn assert_refused(r: &Reply, field: &str) {
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{field}: {}",
        r.body
    );
    let error = &r.json()["error"];
    assert_eq!(error["code"], "validation_failed", "{}", r.body);
    assert_eq!(error["field"], field, "{}", r.body);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("Quiver sets itself"),
        "{}",
        r.body
    );
}

/// Stores `values` as a token's extra values directly, as a row written
/// before reserved names were refused would hold them.
async fn store_additional(w: &World, id: &str, values: Value) {
    token::Entity::update_many()
        .col_expr(
            token::Column::AdditionalValues,
            Expr::value(values.to_string()),
        )
        .filter(token::Column::Id.eq(id))
        .exec(&w.app.state.instance.db)
        .await
        .unwrap();
}

/// Every value of `name` among `pairs`, whatever its case.
fn values_of(pairs: &[(String, String)], name: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_names_are_refused_naming_the_key_in_the_api_and_the_ui() {
    let w = World::new().await;
    let key = w.key.clone().unwrap();
    let cc = w.provider_id("cc").await;
    for name in [
        "client_id",
        "grant_type",
        "redirect_uri",
        "client_assertion",
        "code_verifier",
        "State",
        "request_uri",
    ] {
        let r = send(
            &w,
            "POST",
            "/api/v1/tokens",
            &key,
            json!({"name": "t", "provider_id": cc, "flow": "client_credentials", "request": false,
                   "additional_values": {"audience": "api", name: "x"}}),
        )
        .await;
        assert_refused(&r, &format!("additional_values.{name}"));
    }
    // Names Quiver does not set stay allowed.
    let id = w
        .token(
            json!({"name": "t", "provider_id": cc, "flow": "client_credentials", "request": false,
                      "additional_values": {"audience": "api", "tenant": "blue"}}),
        )
        .await;
    let r = send(
        &w,
        "PATCH",
        &format!("/api/v1/tokens/{id}"),
        &key,
        json!({"additional_values": {"audience": "api", "client_secret": "x"}}),
    )
    .await;
    assert_refused(&r, "additional_values.client_secret");
    let stored = w
        .app
        .send(request(
            "GET",
            &format!("/api/v1/tokens/{id}"),
            Some(key.clone()),
        ))
        .await
        .json();
    assert_eq!(
        stored["additional_values"],
        json!({"audience": "api", "tenant": "blue"}),
        "a refused edit changes nothing"
    );

    // The token form's server functions answer the same, for the field.
    for (name, body) in [
        (
            "create_token",
            json!({"input": {"name": "ui", "provider_id": cc, "flow": "client_credentials", "request": false,
                             "additional_values": {"client_id": "someone-else"}}}),
        ),
        (
            "update_token",
            json!({"id": id, "input": {"additional_values": {"code_challenge": "x"}}}),
        ),
    ] {
        let r = w
            .app
            .send(server_fn_json(name, Some(w.admin.clone()), body))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: {}",
            r.body
        );
        let error: app::error::AppError = serde_json::from_str(&r.body).unwrap();
        let field = if name == "create_token" {
            "additional_values.client_id"
        } else {
            "additional_values.code_challenge"
        };
        assert!(
            error
                .message_for("additional_values")
                .is_some_and(|m| m.contains("Quiver sets itself")),
            "{name}: {error:?}"
        );
        assert!(error.message_for(field).is_some(), "{name}: {error:?}");
    }

    // A provider's extra parameters follow the same rule.
    for (field, name) in [
        ("token_params", "client_assertion"),
        ("token_params", "Grant_Type"),
        ("authorize_params", "redirect_uri"),
        ("authorize_params", "code_challenge_method"),
    ] {
        let r = send(
            &w,
            "PATCH",
            &format!("/api/v1/providers/{cc}"),
            &w.admin,
            json!({ field: {name: "x"} }),
        )
        .await;
        assert_refused(&r, &format!("{field}.{name}"));
    }
    let r = send(
        &w,
        "PATCH",
        &format!("/api/v1/providers/{cc}"),
        &w.admin,
        json!({"token_params": {"audience": "api"}, "authorize_params": {"prompt": "consent"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_with_a_reserved_name_is_refused_with_its_path() {
    let app = TestApp::with_env(ENV).await;
    let pw = app.user("admin@example.com", Role::Admin).await;
    let admin = Auth::Cookie(app.login("admin@example.com", &pw).await);
    let bundle = json!({
        "format": "quiver-export",
        "version": 1,
        "exported_at": "2025-01-02T03:04:05Z",
        "source": {"instance": null, "quiver_version": "0.1.0"},
        "secrets": null,
        "providers": [
            {"id": "p1", "name": "Plain", "token_endpoint": "https://as.example/token", "client_id": "c",
             "token_params": {"Client_Assertion": "forged"}},
            {"id": "p2", "name": "Signed", "token_endpoint": "https://as.example/token", "client_id": "signed",
             "client_auth_method": "private_key_jwt"}
        ],
        "tokens": [
            {"id": "t1", "name": "T", "provider_id": "p1", "flow": "client_credentials",
             "additional_values": {"audience": "api", "redirect_uri": "https://evil.example/cb"}},
            {"id": "t2", "name": "U", "provider_id": "p2", "flow": "client_credentials",
             "use_default_keys": false, "client_id": "someone-else"}
        ]
    });
    for mode in ["preview", "apply"] {
        let r = app
            .send(json_request(
                "POST",
                "/api/v1/import",
                Some(admin.clone()),
                json!({"bundle": bundle, "mode": mode}),
            ))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        let error = &r.json()["error"];
        assert_eq!(error["code"], "invalid_bundle");
        let paths: Vec<&str> = error["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            paths,
            [
                "$.providers[0].token_params.Client_Assertion",
                "$.tokens[0].additional_values.redirect_uri",
                "$.tokens[1].use_default_keys",
            ],
            "{}",
            r.body
        );
    }
    let db = &app.state.instance.db;
    assert_eq!(provider::Entity::find().count(db).await.unwrap(), 0);
    assert_eq!(token::Entity::find().count(db).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_reserved_value_is_never_sent_and_the_providers_values_win() {
    let w = World::new().await;
    let key = w.key.clone().unwrap();
    let cc = w.provider_id("cc").await;
    let r = send(
        &w,
        "PATCH",
        &format!("/api/v1/providers/{cc}"),
        &w.admin,
        json!({"token_params": {"audience": "provider-api"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let id = w
        .token(json!({"name": "machine", "provider_id": cc, "flow": "client_credentials", "scope": "api:read", "request": false}))
        .await;
    store_additional(
        &w,
        &id,
        json!({
            "client_id": "someone-else",
            "grant_type": "password",
            "redirect_uri": "https://evil.example/cb",
            "audience": "token-api",
            "tenant": "blue"
        }),
    )
    .await;
    let r = send(
        &w,
        "POST",
        &format!("/api/v1/tokens/{id}/request"),
        &key,
        json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["status"], "active", "{}", r.body);
    let sent = w.auth.last_token_request().await;
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(sent["rawBody"].as_str().unwrap().as_bytes())
            .into_owned()
            .collect();
    assert_eq!(
        values_of(&pairs, "grant_type"),
        ["client_credentials"],
        "{pairs:?}"
    );
    assert!(values_of(&pairs, "client_id").is_empty(), "{pairs:?}");
    assert_eq!(sent["basicAuth"]["clientId"], "cc-basic");
    assert!(values_of(&pairs, "redirect_uri").is_empty(), "{pairs:?}");
    assert_eq!(values_of(&pairs, "audience"), ["provider-api"], "{pairs:?}");
    assert_eq!(values_of(&pairs, "tenant"), ["blue"], "{pairs:?}");

    // An export carries what is sent, so that its bundle imports.
    let bundle = send(&w, "POST", "/api/v1/export", &w.admin, json!({})).await;
    assert_eq!(bundle.status, StatusCode::OK, "{}", bundle.body);
    let bundle = bundle.json();
    let exported = bundle["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "machine")
        .unwrap();
    assert_eq!(
        exported["additional_values"],
        json!({"audience": "token-api", "tenant": "blue"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorization_link_never_repeats_quivers_parameters() {
    let w = World::new().await;
    let key = w.key.clone().unwrap();
    let code = w.provider_id("code").await;
    let r = send(
        &w,
        "PATCH",
        &format!("/api/v1/providers/{code}"),
        &w.admin,
        json!({"authorize_params": {"prompt": "consent"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let id = w
        .token(json!({"name": "browser", "provider_id": code, "flow": "authorization_code", "scope": "openid"}))
        .await;
    store_additional(
        &w,
        &id,
        json!({
            "state": "attacker-state",
            "redirect_uri": "https://evil.example/cb",
            "code_challenge": "attacker-challenge",
            "Code_Challenge_Method": "plain",
            "client_id": "someone-else",
            "prompt": "none",
            "login_hint": "ada"
        }),
    )
    .await;
    let r = send(
        &w,
        "POST",
        &format!("/api/v1/tokens/{id}/auth-link"),
        &key,
        json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let url = url::Url::parse(r.json()["url"].as_str().unwrap()).unwrap();
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    for name in [
        "response_type",
        "client_id",
        "redirect_uri",
        "state",
        "code_challenge",
        "code_challenge_method",
        "prompt",
    ] {
        assert_eq!(values_of(&pairs, name).len(), 1, "{name}: {pairs:?}");
    }
    assert_ne!(values_of(&pairs, "state")[0], "attacker-state");
    assert_eq!(
        values_of(&pairs, "redirect_uri")[0],
        "http://127.0.0.1:3000/oauth/callback"
    );
    assert_ne!(values_of(&pairs, "code_challenge")[0], "attacker-challenge");
    assert_eq!(values_of(&pairs, "code_challenge_method")[0], "S256");
    assert_eq!(values_of(&pairs, "client_id")[0], "code-basic");
    assert_eq!(
        values_of(&pairs, "prompt")[0],
        "consent",
        "the provider's wins"
    );
    assert_eq!(values_of(&pairs, "login_hint"), ["ada"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_key_jwt_assertion_is_always_for_the_providers_client() {
    let w = World::new().await;
    let key = w.key.clone().unwrap();
    let mut body = w.auth.provider("pkjwt", "cc-pkjwt", "private_key_jwt");
    body["generate_key"] = json!(true);
    let r = send(&w, "POST", "/api/v1/providers", &w.admin, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let provider = r.json()["id"].as_str().unwrap().to_owned();
    let jwks = w
        .app
        .send(request("GET", &format!("/oauth/jwks/{provider}"), None))
        .await
        .json();
    w.auth
        .admin("PUT", "/clients/cc-pkjwt/jwks", Some(jwks))
        .await;

    // A token of its own client id would make Quiver sign for that client.
    let r = send(
        &w,
        "POST",
        "/api/v1/tokens",
        &key,
        json!({"name": "other", "provider_id": provider, "flow": "client_credentials",
               "use_default_keys": false, "client_id": "cc-basic", "client_secret": "x"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.json()["error"]["field"], "use_default_keys", "{}", r.body);

    // A row stored before that was refused: the provider's client signs.
    let id = w
        .token(json!({"name": "pk", "provider_id": provider, "flow": "client_credentials", "scope": "api:read", "request": false}))
        .await;
    token::Entity::update_many()
        .col_expr(token::Column::UseDefaultKeys, Expr::value(false))
        .col_expr(token::Column::ClientId, Expr::value("cc-basic"))
        .filter(token::Column::Id.eq(id.as_str()))
        .exec(&w.app.state.instance.db)
        .await
        .unwrap();
    let r = send(
        &w,
        "POST",
        &format!("/api/v1/tokens/{id}/request"),
        &key,
        json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["status"], "active", "{}", r.body);
    let sent = w.auth.last_token_request().await;
    let claims = &sent["clientAssertion"]["payload"];
    assert_eq!(claims["iss"], "cc-pkjwt", "{sent}");
    assert_eq!(claims["sub"], "cc-pkjwt", "{sent}");
    assert_eq!(sent["body"]["client_id"], "cc-pkjwt", "{sent}");
}
