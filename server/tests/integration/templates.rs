//! The provider catalogue and the quirk settings, end to end: every
//! template becomes a provider through the REST API, and a token of it goes
//! through authorization, the access-token endpoint and refreshes against
//! the quirks server answering in that provider's shape. Then each quirk
//! set by hand on a provider outside the catalogue.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::quirks::{QuirksWorld as World, hand_made};
use crate::support::{json_request, request};

/// A value for each input a template has no default for.
fn inputs(template: &Value) -> serde_json::Map<String, Value> {
    template["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["default"].is_null())
        .map(|i| {
            let value = i["example"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| match i["kind"].as_str().unwrap() {
                    "host" => "acme.example.com".into(),
                    "url" => "https://acme.example.com".into(),
                    _ => "acme".into(),
                });
            (i["name"].as_str().unwrap().to_owned(), Value::String(value))
        })
        .collect()
}

/// Kept fields that providers send on the authorization redirect rather
/// than in the token answer (Intuit's company id).
const ON_THE_REDIRECT: [&str; 1] = ["realmId"];

/// How the quirks server answers for a template: its documented habits.
fn shape_of(template: &Value) -> Value {
    let (redirect_fields, fields): (BTreeMap<String, String>, BTreeMap<String, String>) = template
        ["keep_response_fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let f = f.as_str().unwrap();
            (
                f.to_owned(),
                format!("{f}-of-{}", template["id"].as_str().unwrap()),
            )
        })
        .partition(|(f, _)| ON_THE_REDIRECT.contains(&f.as_str()));
    json!({
        "redirect_fields": redirect_fields,
        "path": template["token_response_path"],
        "format": template["response_format"],
        "expires_in": template["expires_in"],
        "scope_separator": template["scope_separator"],
        "fields": fields,
        "rotates": template["refresh_token_rotates"].as_bool().unwrap_or(false),
        "refresh_tokens": template["refresh_tokens"],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_template_round_trips_its_quirks() {
    let w = World::new().await;
    let catalogue = w.get("/api/v1/provider-templates").await;
    let templates = catalogue["items"].as_array().unwrap().clone();
    assert!(templates.len() >= 20, "{}", templates.len());
    assert_eq!(catalogue["total"], templates.len());
    let mut tried = 0;
    for template in &templates {
        let id = template["id"].as_str().unwrap();
        // One template alone, by id.
        assert_eq!(
            &w.get(&format!("/api/v1/provider-templates/{id}")).await,
            template
        );
        w.quirks.shape(id, shape_of(template)).await;
        let base = format!("{}/{id}", w.quirks.url);
        // The template's inputs as top-level fields; the endpoints moved to
        // the quirks server, as an admin may override any template field.
        let mut body = json!({
            "template": id,
            "client_id": format!("client-of-{id}"),
            "client_secret": "s3cret",
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "issuer": "",
            "jwks_uri": "",
            "revocation_endpoint": "",
        });
        let given_inputs = inputs(template);
        body.as_object_mut().unwrap().extend(given_inputs.clone());
        let r = w.post("/api/v1/providers", body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{id}: {}", r.body);
        let provider = r.json();
        assert_eq!(provider["template"], id);
        assert_eq!(provider["name"], template["name"]);
        assert_eq!(
            provider["keep_response_fields"], template["keep_response_fields"],
            "{id}"
        );
        assert_eq!(
            provider["token_response_path"],
            template["token_response_path"]
        );
        assert_eq!(
            provider["client_auth_method"], template["client_auth_method"],
            "{id}"
        );
        if !template["flows"]
            .as_array()
            .unwrap()
            .contains(&json!("authorization_code"))
        {
            continue;
        }
        tried += 1;
        let t = w
            .authorized_token(provider["id"].as_str().unwrap(), &format!("{id} token"))
            .await;
        assert_eq!(t["status"], "active", "{id}: {t}");
        let token_id = t["id"].as_str().unwrap();

        // The authorization request: the template's scope and parameters.
        let authorize = w.quirks.requests_of(id, "authorize").await;
        let q = &authorize.last().unwrap()["query"];
        let mut wanted_scope: Vec<String> = Vec::new();
        for s in template["default_scopes"]
            .as_array()
            .unwrap()
            .iter()
            .chain(template["required_scopes"].as_array().unwrap())
        {
            let s = s.as_str().unwrap().to_owned();
            if !wanted_scope.contains(&s) {
                wanted_scope.push(s);
            }
        }
        let default_scope = (!wanted_scope.is_empty()).then(|| wanted_scope.join(" "));
        assert_eq!(t["scope"], json!(default_scope), "{id}: the default scope");
        if !wanted_scope.is_empty() {
            let separator = template["scope_separator"].as_str().unwrap();
            assert_eq!(q["scope"], wanted_scope.join(separator), "{id}");
        }
        for (name, value) in template["authorize_params"].as_object().unwrap() {
            // Placeholders filled with the inputs given, else their defaults.
            let mut wanted = value.as_str().unwrap().to_owned();
            for input in template["inputs"].as_array().unwrap() {
                let input_name = input["name"].as_str().unwrap();
                let given = given_inputs
                    .get(input_name)
                    .or(input.get("default"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                wanted = wanted.replace(&format!("{{{input_name}}}"), given);
            }
            assert_eq!(q[name], wanted, "{id}: authorize parameter {name}");
        }
        if template["pkce"] == true {
            assert_eq!(q["code_challenge_method"], "S256", "{id}");
        }

        // The code exchange: client authentication as the template says.
        let exchange = w.quirks.requests_of(id, "token").await;
        let sent = exchange.last().unwrap();
        match template["client_auth_method"].as_str().unwrap() {
            "client_secret_basic" => {
                assert!(
                    sent["authorization"]
                        .as_str()
                        .unwrap()
                        .starts_with("Basic ")
                );
                assert!(sent["form"]["client_secret"].is_null(), "{id}");
            }
            "client_secret_post" => {
                assert_eq!(sent["form"]["client_secret"], "s3cret", "{id}");
                assert!(sent["authorization"].is_null(), "{id}");
            }
            other => panic!("{id}: a template with {other}"),
        }

        // The answer, read in its shape: the access token as issued, the
        // kept fields, the expiry when the provider states one.
        let served = w.access_token(token_id).await;
        let access = served["access_token"].as_str().unwrap().to_owned();
        assert!(access.starts_with("at-"), "{id}: {access}");
        assert!(access.ends_with("+/="), "{id}: the value as sent: {access}");
        let fields = &t["response_fields"];
        let kept = template["keep_response_fields"].as_array().unwrap();
        for f in kept {
            let f = f.as_str().unwrap();
            assert_eq!(fields[f], format!("{f}-of-{id}"), "{id}: kept {f}");
            // Programs get them with the access token (where to call, as
            // Salesforce's instance_url).
            assert_eq!(
                served["response_fields"][f],
                format!("{f}-of-{id}"),
                "{id}: {f} with the access token"
            );
        }
        if kept.is_empty() {
            assert!(served.get("response_fields").is_none(), "{id}: {served}");
        }
        let stated = template["expires_in"] != "absent";
        let assumed = !template["default_lifetime_seconds"].is_null();
        assert_eq!(
            t["expires_at"].is_string(),
            stated || assumed,
            "{id}: {}",
            t["expires_at"]
        );

        // Two refreshes: each refresh token sent once, rotated ones replaced.
        if template["refresh_tokens"] != false {
            assert_eq!(t["has_refresh_token"], true, "{id}");
            for round in 0..2 {
                let renewed = w.refresh(token_id).await;
                assert_eq!(renewed["status"], "active", "{id} round {round}: {renewed}");
                assert_eq!(renewed["has_refresh_token"], true, "{id} round {round}");
                let now = w.access_token(token_id).await;
                assert_ne!(now["access_token"], served["access_token"], "{id}");
                // Kept fields last: refreshed, or as first given when a
                // refresh answer does not repeat them.
                assert_eq!(now["response_fields"], served["response_fields"], "{id}");
            }
        }
    }
    assert!(tried >= 20, "{tried} templates went through a token");
    let stats = w.quirks.stats().await;
    assert_eq!(stats["invalidGrant"], 0, "{stats}");
    assert_eq!(stats["reuse"], 0, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_inputs_are_checked_and_named() {
    let w = World::new().await;
    for (body, field) in [
        (json!({"template": "no-such"}), "template"),
        (
            json!({"template": "microsoft-entra-id", "tenant": "evil.example/x?"}),
            "template_inputs.tenant",
        ),
        (
            json!({"template": "okta", "inputs": {"domain": "https://acme.okta.com/x"}}),
            "template_inputs.domain",
        ),
        (
            json!({"template": "keycloak", "template_inputs": {"realm": "x", "base_url": "ftp://x"}}),
            "template_inputs.base_url",
        ),
        (
            json!({"template": "google", "tennant": "x"}),
            "template_inputs",
        ),
        (
            json!({"name": "x", "token_endpoint": "https://as.example/token", "template_inputs": {"a": "b"}}),
            "template_inputs",
        ),
        (
            json!({"name": "x", "token_endpoint": "https://as.example/token", "token_response_path": "a..b"}),
            "token_response_path",
        ),
        (
            json!({"name": "x", "token_endpoint": "https://as.example/token", "keep_response_fields": ["refresh_token"]}),
            "keep_response_fields",
        ),
    ] {
        let r = w.post("/api/v1/providers", body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.body
        );
        assert_eq!(r.json()["error"]["field"], field, "{body}: {}", r.body);
    }
    // Nothing was made.
    assert_eq!(w.get("/api/v1/providers").await["total"], 0);

    // A template's defaults, an admin's fields over them.
    let r = w
        .post(
            "/api/v1/providers",
            json!({"template": "okta", "domain": "acme.okta.com", "name": "Okta (staff)", "default_scope": "openid"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let p = r.json();
    assert_eq!(p["name"], "Okta (staff)");
    assert_eq!(p["default_scope"], "openid");
    assert!(
        p["token_endpoint"]
            .as_str()
            .unwrap()
            .starts_with("https://acme.okta.com/oauth2/default/"),
        "{p}"
    );
    // A template only makes new providers.
    let r = w
        .app
        .send(json_request(
            "PATCH",
            &format!("/api/v1/providers/{}", p["id"].as_str().unwrap()),
            w.key.clone(),
            json!({"template": "google"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    // Signed-out callers see no catalogue.
    let r = w
        .app
        .send(request("GET", "/api/v1/provider-templates", None))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = w
        .app
        .send(request(
            "GET",
            "/api/v1/provider-templates/nope",
            w.key.clone(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quirks_set_by_hand_shape_requests_and_answers() {
    let w = World::new().await;

    // expires_in as a string, scopes joined by commas, the client id in
    // the body beside HTTP Basic, and the scope and code sent again on
    // refresh.
    w.quirks
        .shape(
            "legacy",
            json!({"expires_in": "string", "scope_separator": ",", "rotates": true}),
        )
        .await;
    let p = hand_made(
        &w,
        "legacy",
        json!({"scope_separator": ",", "send_client_id_in_body": true,
               "omit_scope_on_refresh": false, "omit_code_on_refresh": false,
               "refresh_token_rotates": true}),
    )
    .await;
    let t = w.authorized_token(&p, "legacy").await;
    assert_eq!(t["status"], "active", "{t}");
    assert!(t["expires_at"].is_string(), "a string expires_in is read");
    assert_eq!(t["granted_scope"], "read,write");
    let exchange = w.quirks.requests_of("legacy", "token").await;
    assert_eq!(exchange[0]["form"]["client_id"], "hand");
    assert!(
        exchange[0]["authorization"]
            .as_str()
            .unwrap()
            .starts_with("Basic ")
    );
    let code = exchange[0]["form"]["code"].clone();
    let id = t["id"].as_str().unwrap();
    assert_eq!(w.refresh(id).await["status"], "active");
    let sent = w.quirks.requests_of("legacy", "token").await[1].clone();
    assert_eq!(sent["form"]["grant_type"], "refresh_token");
    assert_eq!(sent["form"]["scope"], "read,write", "scope sent again");
    assert_eq!(sent["form"]["code"], code, "the code sent again");
    assert_eq!(sent["form"]["client_id"], "hand");

    // The default: neither scope nor code on refresh, nor the code kept.
    w.quirks.shape("plain", json!({"rotates": true})).await;
    let p = hand_made(&w, "plain", json!({})).await;
    let t = w.authorized_token(&p, "plain").await;
    w.refresh(t["id"].as_str().unwrap()).await;
    let sent = w.quirks.requests_of("plain", "token").await[1].clone();
    assert!(
        sent["form"]["scope"].is_null() && sent["form"]["code"].is_null(),
        "{sent}"
    );
    assert!(sent["form"]["client_id"].is_null(), "Basic alone: {sent}");

    // The refresh token URL-encoded once more, for a provider that decodes
    // it twice; expires_in in milliseconds.
    w.quirks
        .shape(
            "encoded",
            json!({"refresh_token_url_encoded": true, "rotates": true, "expires_in": "milliseconds"}),
        )
        .await;
    let p = hand_made(
        &w,
        "encoded",
        json!({"url_encode_refresh_token": true, "expires_in_unit": "milliseconds"}),
    )
    .await;
    let t = w.authorized_token(&p, "encoded").await;
    let id = t["id"].as_str().unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(t["expires_at"].as_str().unwrap()).unwrap();
    let left = expires.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(
        left.num_minutes() > 55 && left.num_minutes() <= 60,
        "{left}"
    );
    assert_eq!(w.refresh(id).await["status"], "active");
    let sent = w.quirks.requests_of("encoded", "token").await[1].clone();
    let value = sent["form"]["refresh_token"].as_str().unwrap();
    assert!(value.contains("%2B") && !value.contains('+'), "{value}");

    // Nested (Slack's user token) at the exchange, flat at the refresh,
    // kept fields from the top; a form-encoded answer (GitHub).
    w.quirks
        .shape(
            "nested",
            json!({"path": "authed_user", "fields": {"team": {"id": "T1"}}, "rotates": true}),
        )
        .await;
    let p = hand_made(
        &w,
        "nested",
        json!({"token_response_path": "authed_user", "keep_response_fields": ["team"]}),
    )
    .await;
    let t = w.authorized_token(&p, "nested").await;
    assert_eq!(t["response_fields"]["team"], r#"{"id":"T1"}"#);
    let id = t["id"].as_str().unwrap();
    let at = w.access_token(id).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        at.starts_with("at-"),
        "the user's token, not the bot's: {at}"
    );
    assert_eq!(w.refresh(id).await["status"], "active");
    w.quirks
        .shape("form", json!({"format": "form", "rotates": true}))
        .await;
    let p = hand_made(&w, "form", json!({})).await;
    let t = w.authorized_token(&p, "form").await;
    assert_eq!(t["status"], "active", "{t}");
    assert_eq!(t["has_refresh_token"], true);

    // A rotating provider that answers a refresh without a new refresh
    // token: the used one is dropped, never sent again.
    w.quirks
        .shape(
            "dropped",
            json!({"rotates": true, "refresh_without_new": true}),
        )
        .await;
    let p = hand_made(&w, "dropped", json!({"refresh_token_rotates": true})).await;
    let t = w.authorized_token(&p, "dropped").await;
    let id = t["id"].as_str().unwrap();
    let renewed = w.refresh(id).await;
    assert_eq!(renewed["status"], "active", "{renewed}");
    assert_eq!(renewed["has_refresh_token"], false, "{renewed}");
    let again = w.refresh(id).await;
    assert_ne!(again["status"], "active", "{again}");
    assert_eq!(
        w.quirks.requests_of("dropped", "token").await.len(),
        2,
        "no second use of the refresh token"
    );

    let stats = w.quirks.stats().await;
    assert_eq!(stats["reuse"], 0, "{stats}");
    assert_eq!(stats["invalidGrant"], 0, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_scopes_are_always_asked_for() {
    let w = World::new().await;
    w.quirks.shape("required", json!({"rotates": false})).await;
    let base = format!("{}/required", w.quirks.url);
    let r = w
        .post(
            "/api/v1/providers",
            json!({"template": "microsoft-entra-id", "tenant": "contoso.onmicrosoft.com",
                   "client_id": "c", "client_secret": "s",
                   "authorization_endpoint": format!("{base}/authorize"),
                   "token_endpoint": format!("{base}/token"),
                   "issuer": "", "jwks_uri": ""}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let provider = r.json();
    assert_eq!(provider["required_scope"], "offline_access");
    let provider_id = provider["id"].as_str().unwrap();

    // A token asking for its own scope still asks for offline_access: the
    // token's scope shows it, and the link sends it.
    let r = w
        .post(
            "/api/v1/tokens",
            json!({"name": "mail", "provider_id": provider_id, "flow": "authorization_code",
                   "scope": "Mail.Read"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let t = r.json();
    assert_eq!(t["scope"], "Mail.Read offline_access");
    let link = url::Url::parse(t["auth_url"].as_str().unwrap()).unwrap();
    let scope: String = link
        .query_pairs()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    assert_eq!(scope, "Mail.Read offline_access");
    let id = t["id"].as_str().unwrap();
    // Edited: added again; given already: kept as typed.
    let r = w
        .patch(
            &format!("/api/v1/tokens/{id}"),
            json!({"scope": "Calendars.Read"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["scope"], "Calendars.Read offline_access");
    let r = w
        .patch(
            &format!("/api/v1/tokens/{id}"),
            json!({"scope": "offline_access,Calendars.Read"}),
        )
        .await;
    assert_eq!(r.json()["scope"], "offline_access,Calendars.Read");

    // Cleared at the provider: a token's scope is its own again.
    let r = w
        .patch(
            &format!("/api/v1/providers/{provider_id}"),
            json!({"required_scope": ""}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.json()["required_scope"].is_null());
    let r = w
        .post(
            "/api/v1/tokens",
            json!({"name": "plain", "provider_id": provider_id, "flow": "authorization_code",
                   "scope": "Mail.Read"}),
        )
        .await;
    assert_eq!(r.json()["scope"], "Mail.Read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_goes_as_json_where_the_provider_wants_it() {
    let w = World::new().await;
    w.quirks
        .shape(
            "intuit",
            json!({"revocation": "json", "rotates": true,
                   "redirect_fields": {"realmId": "4620816365"}}),
        )
        .await;
    let base = format!("{}/intuit", w.quirks.url);
    let r = w
        .post(
            "/api/v1/providers",
            json!({"template": "intuit-quickbooks", "client_id": "qb", "client_secret": "qb-secret",
                   "authorization_endpoint": format!("{base}/authorize"),
                   "token_endpoint": format!("{base}/token"),
                   "revocation_endpoint": format!("{base}/revoke")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let provider = r.json();
    assert_eq!(provider["revocation_format"], "json");
    let provider_id = provider["id"].as_str().unwrap().to_owned();
    let t = w.authorized_token(&provider_id, "books").await;
    assert_eq!(t["status"], "active", "{t}");
    // The company id came on the redirect; programs get it with the token.
    assert_eq!(t["response_fields"]["realmId"], "4620816365");
    let id = t["id"].as_str().unwrap();
    assert_eq!(
        w.access_token(id).await["response_fields"]["realmId"],
        "4620816365"
    );

    // Deleting revokes at the provider: a JSON object with the token, the
    // client in HTTP Basic, nothing else.
    let r = w.delete(&format!("/api/v1/tokens/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["revocation"], "revoked", "{}", r.body);
    let sent = w.quirks.requests_of("intuit", "revoke").await;
    assert_eq!(sent.len(), 2, "the refresh token, then the access token");
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "qb:qb-secret")
    );
    for (request, prefix) in sent.iter().zip(["rt-", "at-"]) {
        assert_eq!(request["contentType"], "application/json", "{request}");
        let body = request["json"].as_object().unwrap();
        assert_eq!(body.len(), 1, "{request}");
        assert!(
            body["token"].as_str().unwrap().starts_with(prefix),
            "{request}"
        );
        assert_eq!(request["authorization"], basic);
    }

    // A format the provider setting does not know is named.
    let r = w
        .patch(
            &format!("/api/v1/providers/{provider_id}"),
            json!({"revocation_format": "xml"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(
        r.json()["error"]["field"],
        "revocation_format",
        "{}",
        r.body
    );
}
