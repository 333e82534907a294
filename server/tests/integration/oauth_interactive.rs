//! The interactive flows against the real authorization server:
//! Authorization Code (PKCE S256, RFC 9207 iss, state binding) and OIDC
//! Hybrid (form_post, id_token checks before the code exchange).

use crate::support::authserver::AuthServer;
use crate::support::id_token::{jwt_claims, sign_id_token};
use crate::support::{Auth, Reply, TestApp, json_request, request};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use server::account::Role;

const CALLBACK: &str = "http://127.0.0.1:3000/oauth/callback";

struct World {
    app: TestApp,
    auth: AuthServer,
    cookie: String,
    key: String,
}

impl World {
    async fn new() -> Self {
        let app = TestApp::with_env(&[("QUIVER_ALLOW_INSECURE_LOOPBACK", "true")]).await;
        let auth = AuthServer::start(CALLBACK);
        auth.admin("POST", "/config", Some(json!({"autoLogin": "alice"})))
            .await;
        let pw = app.user("admin@example.com", Role::Admin).await;
        let cookie = app.login("admin@example.com", &pw).await;
        let (key, _) = app.api_key(&cookie, "robot").await;
        Self {
            app,
            auth,
            cookie,
            key,
        }
    }

    fn as_key(&self) -> Option<Auth> {
        Some(Auth::Bearer(self.key.clone()))
    }

    async fn provider(&self, client: &str) -> String {
        // The RFC 9207 promise as discovery reads it from the provider's metadata.
        let discovered = self
            .app
            .send(json_request(
                "POST",
                "/api/v1/providers/discover",
                self.as_key(),
                json!({"issuer": self.auth.issuer}),
            ))
            .await;
        assert_eq!(discovered.status, StatusCode::OK, "{}", discovered.body);
        let promised = discovered.json()["authorization_response_iss_parameter_supported"].clone();
        assert_eq!(promised, json!(true), "oidc-provider advertises RFC 9207");
        let mut body = self.auth.provider(client, client, "client_secret_basic");
        body["iss_parameter_supported"] = promised;
        let r = self
            .app
            .send(json_request(
                "POST",
                "/api/v1/providers",
                self.as_key(),
                body,
            ))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.json()["id"].as_str().unwrap().to_owned()
    }

    async fn token(&self, auth: Option<Auth>, body: Value) -> Value {
        let r = self
            .app
            .send(json_request("POST", "/api/v1/tokens", auth, body))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.json()
    }

    async fn get(&self, id: &str) -> Value {
        self.app
            .send(request(
                "GET",
                &format!("/api/v1/tokens/{id}"),
                self.as_key(),
            ))
            .await
            .json()
    }
}

/// Opens an authorization URL as the (auto-logged-in) person's browser
/// would, and returns the redirect target or the form_post page.
async fn authorize(url: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap()
}

fn callback_path(location: &str) -> String {
    assert!(location.starts_with(CALLBACK), "{location}");
    location
        .trim_start_matches("http://127.0.0.1:3000")
        .to_owned()
}

fn html_input(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle)? + needle.len();
    Some(html[start..].split('"').next()?.to_owned())
}

async fn post_callback(app: &TestApp, fields: &[(&str, String)], cookie: Option<&str>) -> Reply {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    let mut r = Request::post("/oauth/callback")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("host", "127.0.0.1:3000");
    if let Some(c) = cookie {
        r = r
            .header("cookie", c)
            .header("sec-fetch-site", "same-origin");
    }
    app.send(r.body(Body::from(body)).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_code_with_pkce_and_iss() {
    let w = World::new().await;
    let provider = w.provider("code-basic").await;
    let t = w
        .token(w.as_key(), json!({"name": "code", "provider_id": provider, "flow": "authorization_code", "scope": "openid email api:read"}))
        .await;
    assert_eq!(t["status"], "pending_authorization", "{t}");
    let url = t["auth_url"].as_str().unwrap();
    let parsed = url::Url::parse(url).unwrap();
    let q: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["redirect_uri"], CALLBACK);
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["state"].len() >= 43, "state carries at least 256 bits");

    let back = authorize(url).await;
    assert_eq!(back.status().as_u16(), 303);
    let location = back.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.contains("iss="),
        "RFC 9207 iss is sent: {location}"
    );
    let path = callback_path(&location);
    let page = w.app.send(request("GET", &path, None)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Authorization complete"));
    let csp = page.header("content-security-policy");
    assert!(csp.contains("script-src 'nonce-"), "{csp}");

    let id = t["id"].as_str().unwrap();
    let after = w.get(id).await;
    assert_eq!(after["status"], "active", "{after}");
    assert_eq!(after["has_refresh_token"], true);
    assert_eq!(after["identity"]["sub"], "alice");
    let sent = w.auth.last_token_request().await;
    assert_eq!(sent["grantType"], "authorization_code");
    assert!(
        sent["body"]["code_verifier"].as_str().unwrap().len() >= 43,
        "PKCE verifier sent"
    );
    assert_eq!(sent["body"]["redirect_uri"], CALLBACK);

    // The same answer again: the state was single use.
    let replay = w.app.send(request("GET", &path, None)).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert!(replay.body.contains("already used"));
    // A forged state.
    let forged = w
        .app
        .send(request("GET", "/oauth/callback?state=forged&code=x", None))
        .await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST);

    // Refresh works and rotates; re-authorization makes a new link.
    let r = w
        .app
        .send(request(
            "POST",
            &format!("/api/v1/tokens/{id}/refresh"),
            w.as_key(),
        ))
        .await;
    assert_eq!(r.json()["status"], "active");
    let link = w
        .app
        .send(request(
            "POST",
            &format!("/api/v1/tokens/{id}/auth-link"),
            w.as_key(),
        ))
        .await;
    assert_eq!(link.status, StatusCode::OK);
    assert!(link.json()["url"].as_str().unwrap().contains("state="));
    assert_eq!(
        w.get(id).await["status"],
        "active",
        "re-authorizing keeps the current token usable"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_iss_and_provider_errors_are_refused() {
    let w = World::new().await;
    let provider = w.provider("code-basic").await;
    let t = w.token(w.as_key(), json!({"name": "c", "provider_id": provider, "flow": "authorization_code", "scope": "openid"})).await;
    let id = t["id"].as_str().unwrap().to_owned();
    let location = authorize(t["auth_url"].as_str().unwrap()).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let mix_up = callback_path(&location).replace("iss=", "iss=https%3A%2F%2Fevil.example&x=");
    let page = w.app.send(request("GET", &mix_up, None)).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(w.get(&id).await["error"]["error"], "invalid_request");

    let link = w
        .app
        .send(request(
            "POST",
            &format!("/api/v1/tokens/{id}/auth-link"),
            w.as_key(),
        ))
        .await
        .json();
    let location = authorize(link["url"].as_str().unwrap()).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let without_iss: String = {
        let u = url::Url::parse(&location).unwrap();
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .into_owned()
            .filter(|(k, _)| k != "iss")
            .collect();
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        format!("/oauth/callback?{q}")
    };
    let page = w.app.send(request("GET", &without_iss, None)).await;
    assert_eq!(
        page.status,
        StatusCode::BAD_REQUEST,
        "the provider promised iss"
    );

    let link = w
        .app
        .send(request(
            "POST",
            &format!("/api/v1/tokens/{id}/auth-link"),
            w.as_key(),
        ))
        .await
        .json();
    let state = url::Url::parse(link["url"].as_str().unwrap())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let page = w
        .app
        .send(request("GET", &format!("/oauth/callback?state={state}&error=access_denied&error_description=The+user+said+no"), None))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("The user said no"));
    let after = w.get(&id).await;
    assert_eq!(after["error"]["error"], "access_denied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_made_in_a_browser_session_only_finish_in_that_session_and_expire() {
    let w = World::new().await;
    let provider = w.provider("code-basic").await;
    let session = Some(Auth::Cookie(w.cookie.clone()));
    let t = w.token(session.clone(), json!({"name": "c", "provider_id": provider, "flow": "authorization_code", "scope": "openid"})).await;
    let path = callback_path(
        authorize(t["auth_url"].as_str().unwrap()).await.headers()["location"]
            .to_str()
            .unwrap(),
    );
    let other = w.app.send(request("GET", &path, None)).await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST);
    assert!(
        other.body.contains("another browser session"),
        "{}",
        other.body
    );

    let link = w
        .app
        .send(request(
            "POST",
            &format!("/api/v1/tokens/{}/auth-link", t["id"].as_str().unwrap()),
            session.clone(),
        ))
        .await
        .json();
    let path = callback_path(
        authorize(link["url"].as_str().unwrap()).await.headers()["location"]
            .to_str()
            .unwrap(),
    );
    let mine = w.app.send(request("GET", &path, session.clone())).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);

    let link = w
        .app
        .send(request(
            "POST",
            &format!("/api/v1/tokens/{}/auth-link", t["id"].as_str().unwrap()),
            session.clone(),
        ))
        .await
        .json();
    let path = callback_path(
        authorize(link["url"].as_str().unwrap()).await.headers()["location"]
            .to_str()
            .unwrap(),
    );
    w.app.clock.advance(chrono::Duration::minutes(11));
    let late = w.app.send(request("GET", &path, session)).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
    assert!(late.body.contains("expired"));
}

async fn hybrid_answer(w: &World, token_id: &str) -> (String, String, String) {
    let link = w
        .app
        .send(request(
            "POST",
            &format!("/api/v1/tokens/{token_id}/auth-link"),
            w.as_key(),
        ))
        .await
        .json();
    let url = link["url"].as_str().unwrap();
    assert!(
        url.contains("response_type=code+id_token")
            && url.contains("response_mode=form_post")
            && url.contains("nonce="),
        "{url}"
    );
    let page = authorize(url).await;
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    (
        html_input(&html, "code").unwrap(),
        html_input(&html, "id_token").unwrap(),
        html_input(&html, "state").unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_hybrid_checks_the_id_token_before_exchanging_the_code() {
    let w = World::new().await;
    let provider = w.provider("hybrid").await;
    let t = w
        .token(w.as_key(), json!({"name": "hy", "provider_id": provider, "flow": "oidc_hybrid", "scope": "openid email profile", "request": false}))
        .await;
    let id = t["id"].as_str().unwrap().to_owned();

    // A forged id_token (signature altered) is refused and no code is exchanged.
    w.auth.admin("POST", "/stats/reset", None).await;
    let (code, id_token, state) = hybrid_answer(&w, &id).await;
    let mut parts: Vec<String> = id_token.split('.').map(str::to_owned).collect();
    parts[2] = format!("{}AAAA", &parts[2][..parts[2].len() - 4]);
    let forged = parts.join(".");
    let r = post_callback(
        &w.app,
        &[
            ("code", code.clone()),
            ("id_token", forged),
            ("state", state),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("signature"), "{}", r.body);
    assert!(
        w.auth.stats().await["tokenGrantTypes"]["authorization_code"].is_null(),
        "no exchange happened"
    );

    // A replayed id_token (from an earlier answer: another nonce) is refused.
    let (_, old_id_token, _) = hybrid_answer(&w, &id).await;
    let (code2, _, state2) = hybrid_answer(&w, &id).await;
    let r = post_callback(
        &w.app,
        &[
            ("code", code2),
            ("id_token", old_id_token.clone()),
            ("state", state2),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("nonce"), "{}", r.body);

    // The right id_token with another code: c_hash does not match.
    let (code3, id_token3, _) = hybrid_answer(&w, &id).await;
    let (code4, _, state4) = hybrid_answer(&w, &id).await;
    let _ = code3;
    let r = post_callback(
        &w.app,
        &[("code", code4), ("id_token", id_token3), ("state", state4)],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body.contains("nonce") || r.body.contains("c_hash"),
        "{}",
        r.body
    );

    // The genuine answer goes through and keeps the identity.
    let (code, id_token, state) = hybrid_answer(&w, &id).await;
    let r = post_callback(
        &w.app,
        &[("code", code), ("id_token", id_token), ("state", state)],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let after = w.get(&id).await;
    assert_eq!(after["status"], "active", "{after}");
    assert_eq!(after["identity"]["sub"], "alice");
    assert_eq!(after["identity"]["email"], "alice@example.com");
    assert_eq!(after["has_refresh_token"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_form_post_is_reposted_from_this_origin() {
    let w = World::new().await;
    let r = w
        .app
        .send(
            Request::post("/oauth/callback")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("sec-fetch-site", "cross-site")
                .body(Body::from("state=abc&code=def"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains(r#"name="_quiver_resubmitted""#) && r.body.contains(r#"value="def""#));
    let nonce = r
        .header("content-security-policy")
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap()
        .to_owned();
    assert!(r.body.contains(&format!("nonce=\"{nonce}\"")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_client_authenticates_with_its_id_only_and_pkce() {
    let w = World::new().await;
    let body = w.auth.provider("public", "code-public", "none");
    let r = w
        .app
        .send(json_request("POST", "/api/v1/providers", w.as_key(), body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let provider = r.json()["id"].as_str().unwrap().to_owned();
    let t = w
        .token(w.as_key(), json!({"name": "pub", "provider_id": provider, "flow": "authorization_code", "scope": "openid"}))
        .await;
    let back = authorize(t["auth_url"].as_str().unwrap()).await;
    let path = callback_path(back.headers()["location"].to_str().unwrap());
    assert_eq!(
        w.app.send(request("GET", &path, None)).await.status,
        StatusCode::OK
    );
    assert_eq!(w.get(t["id"].as_str().unwrap()).await["status"], "active");
    let sent = w.auth.last_token_request().await;
    assert_eq!(sent["body"]["client_id"], "code-public");
    assert!(sent["basicAuth"].is_null() && sent["body"].get("client_secret").is_none());
    assert!(sent["body"]["code_verifier"].is_string());
}

/// A fresh authorization link for the token, opened: the provider's answer.
async fn answer_location(w: &World, id: &str) -> String {
    let link = w
        .app
        .send(request(
            "POST",
            &format!("/api/v1/tokens/{id}/auth-link"),
            w.as_key(),
        ))
        .await
        .json();
    let back = authorize(link["url"].as_str().unwrap()).await;
    assert_eq!(back.status().as_u16(), 303);
    back.headers()["location"].to_str().unwrap().to_owned()
}

/// The callback path of an answer with parameters replaced, added or
/// (`None`) removed.
fn callback_with(location: &str, changes: &[(&str, Option<&str>)]) -> String {
    let u = url::Url::parse(location).unwrap();
    let mut pairs: Vec<(String, String)> = u
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| !changes.iter().any(|(name, _)| name == k))
        .collect();
    for (name, value) in changes {
        if let Some(v) = value {
            pairs.push(((*name).to_owned(), (*v).to_owned()));
        }
    }
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("/oauth/callback?{q}")
}

/// The `token.authorize` audit entries of a token, newest first.
async fn authorize_audit(w: &World, id: &str) -> Vec<Value> {
    let r = w
        .app
        .send(request(
            "GET",
            "/api/v1/audit?action=token.authorize&limit=100",
            Some(Auth::Cookie(w.cookie.clone())),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["object_id"] == id)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iss_that_is_not_exactly_the_providers_is_refused_and_the_token_kept() {
    let w = World::new().await;
    let provider = w.provider("code-basic").await;
    let t = w.token(w.as_key(), json!({"name": "c", "provider_id": provider, "flow": "authorization_code", "scope": "openid email"})).await;
    let id = t["id"].as_str().unwrap().to_owned();
    let genuine = answer_location(&w, &id).await;
    let page = w
        .app
        .send(request("GET", &callback_path(&genuine), None))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let good = w.app.token_secret(&id, "access_token").await.unwrap();
    let good_refresh = w.app.token_secret(&id, "refresh_token").await.unwrap();

    // Another issuer, and one that differs only by a trailing slash.
    for iss in [
        "https://evil.example".to_owned(),
        format!("{}/", w.auth.issuer),
    ] {
        let location = answer_location(&w, &id).await;
        let page = w
            .app
            .send(request(
                "GET",
                &callback_with(&location, &[("iss", Some(&iss))]),
                None,
            ))
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{iss}: {}", page.body);
        assert!(page.body.contains("came from issuer"), "{}", page.body);
        let message = format!(
            "the authorization response came from issuer {iss:?}, not the provider's issuer {:?}",
            w.auth.issuer
        );
        let after = w.get(&id).await;
        assert_eq!(after["error"]["error"], "invalid_request", "{after}");
        assert_eq!(after["error"]["error_description"], message.as_str());
        // The last good token stays, as it was.
        assert_eq!(after["status"], "active", "{after}");
        assert_eq!(after["identity"]["sub"], "alice");
        assert_eq!(w.app.token_secret(&id, "access_token").await.unwrap(), good);
        assert_eq!(
            w.app.token_secret(&id, "refresh_token").await.unwrap(),
            good_refresh
        );
        let audit = authorize_audit(&w, &id).await;
        assert_eq!(audit[0]["outcome"], "failure", "{audit:?}");
        assert_eq!(
            audit[0]["detail"],
            format!("invalid_request: {message}").as_str()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_without_iss_is_refused_where_the_provider_promises_it() {
    let w = World::new().await;
    let provider = w.provider("code-basic").await;
    let t = w.token(w.as_key(), json!({"name": "c", "provider_id": provider, "flow": "authorization_code", "scope": "openid"})).await;
    let id = t["id"].as_str().unwrap().to_owned();
    // Without iss; an id_token beside it does not stand in for it outside
    // OIDC Hybrid (nothing checks it there).
    for id_token in [None, Some("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.")] {
        let location = answer_location(&w, &id).await;
        let path = callback_with(&location, &[("iss", None), ("id_token", id_token)]);
        let page = w.app.send(request("GET", &path, None)).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            page.body
        );
        assert!(page.body.contains("carries no iss"), "{}", page.body);
        let after = w.get(&id).await;
        assert!(
            after["error"]["error_description"]
                .as_str()
                .unwrap()
                .contains("authorization_response_iss_parameter_supported"),
            "{after}"
        );
        assert_ne!(after["status"], "active");
        assert_eq!(authorize_audit(&w, &id).await[0]["outcome"], "failure");
    }

    // A provider that does not promise iss: an answer without it is fine.
    let mut body = w.auth.provider("quiet", "code-post", "client_secret_post");
    body["iss_parameter_supported"] = json!(false);
    let r = w
        .app
        .send(json_request("POST", "/api/v1/providers", w.as_key(), body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let quiet = r.json()["id"].as_str().unwrap().to_owned();
    let t = w.token(w.as_key(), json!({"name": "q", "provider_id": quiet, "flow": "authorization_code", "scope": "openid"})).await;
    let id = t["id"].as_str().unwrap().to_owned();
    let location = answer_location(&w, &id).await;
    let page = w
        .app
        .send(request(
            "GET",
            &callback_with(&location, &[("iss", None)]),
            None,
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hybrid_id_token_for_several_audiences_needs_this_client_as_azp() {
    let w = World::new().await;
    let provider = w.provider("hybrid").await;
    let t = w
        .token(w.as_key(), json!({"name": "hy", "provider_id": provider, "flow": "oidc_hybrid", "scope": "openid email profile"}))
        .await;
    let id = t["id"].as_str().unwrap().to_owned();
    w.auth.admin("POST", "/stats/reset", None).await;
    for (audience, accepted) in [
        (json!({"aud": ["hybrid", "another-client"]}), false),
        (
            json!({"aud": ["hybrid", "another-client"], "azp": "another-client"}),
            false,
        ),
        (
            json!({"aud": ["hybrid", "another-client"], "azp": "hybrid"}),
            true,
        ),
    ] {
        // The provider's own id_token with only the audience changed,
        // signed with the provider's key.
        let (code, id_token, state) = hybrid_answer(&w, &id).await;
        let mut claims = jwt_claims(&id_token);
        claims.as_object_mut().unwrap().remove("azp");
        for (k, v) in audience.as_object().unwrap() {
            claims[k] = v.clone();
        }
        let r = post_callback(
            &w.app,
            &[
                ("code", code),
                ("id_token", sign_id_token(&claims)),
                ("state", state),
            ],
            None,
        )
        .await;
        if accepted {
            assert_eq!(r.status, StatusCode::OK, "{audience}: {}", r.body);
            assert_eq!(w.get(&id).await["identity"]["sub"], "alice");
        } else {
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{audience}: {}", r.body);
            assert!(r.body.contains("azp"), "{audience}: {}", r.body);
            assert!(
                w.auth.stats().await["tokenGrantTypes"]["authorization_code"].is_null(),
                "{audience}: no code was exchanged"
            );
            let after = w.get(&id).await;
            assert!(after["identity"].is_null(), "{after}");
            assert_eq!(authorize_audit(&w, &id).await[0]["outcome"], "failure");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_verified_token_endpoint_id_token_gives_the_identity() {
    let w = World::new().await;
    let provider = w.provider("code-basic").await;
    let t = w.token(w.as_key(), json!({"name": "c", "provider_id": provider, "flow": "authorization_code", "scope": "openid email"})).await;
    let id = t["id"].as_str().unwrap().to_owned();
    let now = chrono::Utc::now().timestamp();
    let claims = |extra: Value| {
        let mut c = json!({
            "iss": w.auth.issuer, "aud": "code-basic", "sub": "mallory",
            "email": "mallory@example.com", "iat": now, "exp": now + 300,
        });
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let forged = {
        let genuine = sign_id_token(&claims(json!({})));
        let (signed, signature) = genuine.rsplit_once('.').unwrap();
        let other = if signature.starts_with('A') { "B" } else { "A" };
        format!("{signed}.{other}{}", &signature[1..])
    };
    for (id_token, needle) in [
        (forged, "signature"),
        (
            sign_id_token(&claims(json!({"aud": ["code-basic", "another-client"]}))),
            "azp",
        ),
        (
            sign_id_token(&claims(json!({"iss": "https://evil.example"}))),
            "evil.example",
        ),
        (sign_id_token(&claims(json!({"nonce": "n"}))), "nonce"),
    ] {
        // The token endpoint answers with tokens and this id_token.
        w.auth
            .fault(
                json!({"endpoint": "token", "mode": "status", "status": 200, "body": {
                    "access_token": "at-from-a-tampered-answer", "token_type": "Bearer",
                    "expires_in": 3600, "id_token": id_token,
                }}),
            )
            .await;
        let location = answer_location(&w, &id).await;
        let page = w
            .app
            .send(request("GET", &callback_path(&location), None))
            .await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{needle}: {}",
            page.body
        );
        assert!(page.body.contains("token endpoint"), "{}", page.body);
        assert!(page.body.contains(needle), "{needle}: {}", page.body);
        let after = w.get(&id).await;
        assert!(after["identity"].is_null(), "{needle}: {after}");
        assert_eq!(after["has_access_token"], false, "{needle}: {after}");
        assert_eq!(after["error"]["error"], "invalid_id_token");
    }
    // The genuine answer: its id_token verifies, and names the person.
    let location = answer_location(&w, &id).await;
    let page = w
        .app
        .send(request("GET", &callback_path(&location), None))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let after = w.get(&id).await;
    assert_eq!(after["identity"]["sub"], "alice", "{after}");
    assert_eq!(after["identity"]["email"], "alice@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_id_token_for_another_subject_is_refused_in_the_hybrid_flow() {
    let w = World::new().await;
    let provider = w.provider("hybrid").await;
    let t = w
        .token(w.as_key(), json!({"name": "hy", "provider_id": provider, "flow": "oidc_hybrid", "scope": "openid email profile"}))
        .await;
    let id = t["id"].as_str().unwrap().to_owned();
    let (code, id_token, state) = hybrid_answer(&w, &id).await;
    let r = post_callback(
        &w.app,
        &[("code", code), ("id_token", id_token), ("state", state)],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let good = w.app.token_secret(&id, "access_token").await.unwrap();
    let good_refresh = w.app.token_secret(&id, "refresh_token").await.unwrap();

    // A genuine front channel (alice); the token endpoint's id_token, signed
    // by the provider's key and bound to the same nonce, names mallory.
    let (code, id_token, state) = hybrid_answer(&w, &id).await;
    let front = jwt_claims(&id_token);
    let now = chrono::Utc::now().timestamp();
    let back = sign_id_token(&json!({
        "iss": front["iss"], "aud": "hybrid", "sub": "mallory", "nonce": front["nonce"],
        "iat": now, "exp": now + 300,
    }));
    w.auth
        .fault(
            json!({"endpoint": "token", "mode": "status", "status": 200, "body": {
                "access_token": "at-of-mallory", "refresh_token": "rt-of-mallory",
                "token_type": "Bearer", "expires_in": 3600, "id_token": back,
            }}),
        )
        .await;
    let r = post_callback(
        &w.app,
        &[("code", code), ("id_token", id_token), ("state", state)],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        r.body.contains("subject") && r.body.contains("mallory"),
        "{}",
        r.body
    );
    let after = w.get(&id).await;
    assert_eq!(after["status"], "active", "{after}");
    assert_eq!(after["identity"]["sub"], "alice");
    assert_eq!(after["error"]["error"], "invalid_id_token");
    assert_eq!(w.app.token_secret(&id, "access_token").await.unwrap(), good);
    assert_eq!(
        w.app.token_secret(&id, "refresh_token").await.unwrap(),
        good_refresh
    );
    let audit = authorize_audit(&w, &id).await;
    assert_eq!(audit[0]["outcome"], "failure");
    assert!(
        audit[0]["detail"].as_str().unwrap().contains("mallory"),
        "{audit:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_authorization_requests_keep_the_request_off_the_link() {
    let w = World::new().await;
    // Discovery finds the endpoint.
    let discovered = w
        .app
        .send(json_request(
            "POST",
            "/api/v1/providers/discover",
            w.as_key(),
            json!({"issuer": w.auth.issuer}),
        ))
        .await
        .json();
    let par = discovered["pushed_authorization_request_endpoint"]
        .as_str()
        .expect("oidc-provider advertises PAR")
        .to_owned();
    for (client, method) in [
        ("code-par", "client_secret_post"),
        ("code-basic", "client_secret_basic"),
    ] {
        let mut body = w.auth.provider(client, client, method);
        body["pushed_authorization_request_endpoint"] = json!(par);
        let r = w
            .app
            .send(json_request("POST", "/api/v1/providers", w.as_key(), body))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let provider = r.json()["id"].as_str().unwrap().to_owned();
        let t = w
            .token(
                w.as_key(),
                json!({"name": client, "provider_id": provider, "flow": "authorization_code", "scope": "openid api:read"}),
            )
            .await;
        let url = url::Url::parse(t["auth_url"].as_str().unwrap()).unwrap();
        let q: std::collections::BTreeMap<String, String> =
            url.query_pairs().into_owned().collect();
        assert_eq!(
            q.keys().map(String::as_str).collect::<Vec<_>>(),
            ["client_id", "request_uri"],
            "{url}"
        );
        assert_eq!(q["client_id"], client);
        assert!(q["request_uri"].starts_with("urn:ietf:params:oauth:request_uri:"));
        let back = authorize(url.as_str()).await;
        assert_eq!(back.status().as_u16(), 303, "{client}");
        let location = back.headers()["location"].to_str().unwrap().to_owned();
        let page = w
            .app
            .send(request("GET", &callback_path(&location), None))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let after = w.get(t["id"].as_str().unwrap()).await;
        assert_eq!(after["status"], "active", "{client}: {after}");
        assert_eq!(after["identity"]["sub"], "alice");
    }
    // A client that takes only pushed requests refuses a plain link.
    let body = w
        .auth
        .provider("par-less", "code-par", "client_secret_post");
    let r = w
        .app
        .send(json_request("POST", "/api/v1/providers", w.as_key(), body))
        .await;
    let provider = r.json()["id"].as_str().unwrap().to_owned();
    let t = w
        .token(
            w.as_key(),
            json!({"name": "plain", "provider_id": provider, "flow": "authorization_code", "scope": "openid"}),
        )
        .await;
    let back = authorize(t["auth_url"].as_str().unwrap()).await;
    let location = back.headers()["location"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(location.contains("error="), "{location}");
    // A refused push says so and names the setting.
    let mut body = w
        .auth
        .provider("par-wrong", "code-par", "client_secret_post");
    body["pushed_authorization_request_endpoint"] = json!(par);
    body["client_secret"] = json!("wrong");
    let r = w
        .app
        .send(json_request("POST", "/api/v1/providers", w.as_key(), body))
        .await;
    let provider = r.json()["id"].as_str().unwrap().to_owned();
    let r = w
        .app
        .send(json_request(
            "POST",
            "/api/v1/tokens",
            w.as_key(),
            json!({"name": "refused", "provider_id": provider, "flow": "authorization_code"}),
        ))
        .await;
    // The token is saved with the provider's refusal on it, like any
    // other refused request.
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let t = r.json();
    assert_eq!(t["status"], "failed", "{t}");
    assert_eq!(t["error"]["error"], "invalid_client", "{t}");
    // Asking for a link again says why, naming the setting.
    let r = w
        .app
        .send(request(
            "POST",
            &format!("/api/v1/tokens/{}/auth-link", t["id"].as_str().unwrap()),
            w.as_key(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(
        r.json()["error"]["field"],
        "pushed_authorization_request_endpoint"
    );
    assert!(r.body.contains("invalid_client"), "{}", r.body);
}
