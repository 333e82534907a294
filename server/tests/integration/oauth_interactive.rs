//! The interactive flows against the real authorization server:
//! Authorization Code (PKCE S256, RFC 9207 iss, state binding) and OIDC
//! Hybrid (form_post, id_token checks before the code exchange).

use crate::support::authserver::AuthServer;
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
        let mut body = self.auth.provider(client, client, "client_secret_basic");
        body["iss_parameter_supported"] = json!(true);
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
