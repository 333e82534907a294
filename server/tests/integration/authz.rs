//! The authorization matrix: every REST endpoint and server function that
//! exists, called by anonymous, a user, another user, an admin, an API key
//! and a revoked API key. Access is enforced on the server, whatever the UI shows.

use crate::support::{Auth, TestApp, json_request, request, server_fn_json, server_fn_request};
use axum::http::StatusCode;
use serde_json::json;
use server::account::Role;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Anonymous,
    User,
    OtherUser,
    Admin,
    Key,
    RevokedKey,
}

const EVERYONE: [Who; 6] = [
    Who::Anonymous,
    Who::User,
    Who::OtherUser,
    Who::Admin,
    Who::Key,
    Who::RevokedKey,
];

struct World {
    app: TestApp,
    user: String,
    other: String,
    admin: String,
    key: String,
    revoked: String,
    target_id: String,
    alice_spare_key: String,
    provider_id: String,
    spare_provider_id: String,
}

impl World {
    async fn new() -> Self {
        let app = TestApp::with_env(&[("QUIVER_ALLOW_INSECURE_LOOPBACK", "true")]).await;
        let pw_a = app.user("alice@example.com", Role::User).await;
        let pw_b = app.user("bob@example.com", Role::User).await;
        let pw_admin = app.user("admin@example.com", Role::Admin).await;
        app.user("target@example.com", Role::User).await;
        let user = app.login("alice@example.com", &pw_a).await;
        let other = app.login("bob@example.com", &pw_b).await;
        let admin = app.login("admin@example.com", &pw_admin).await;
        let (key, _) = app.api_key(&user, "matrix").await;
        let (revoked, revoked_id) = app.api_key(&user, "old").await;
        let (_, alice_spare_key) = app.api_key(&user, "spare").await;
        let r = app
            .send(request(
                "DELETE",
                &format!("/api/v1/api-keys/{revoked_id}"),
                Some(Auth::Cookie(user.clone())),
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let target_id = app
            .state
            .instance
            .accounts
            .users
            .find_by_email("target@example.com")
            .await
            .unwrap()
            .id;
        let mut providers = Vec::new();
        for name in ["matrix", "spare"] {
            let r = app
                .send(json_request(
                    "POST",
                    "/api/v1/providers",
                    Some(Auth::Cookie(admin.clone())),
                    json!({"name": name, "token_endpoint": "http://127.0.0.1:9/token", "client_auth_method": "none", "client_id": "c"}),
                ))
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            providers.push(r.json()["id"].as_str().unwrap().to_owned());
        }
        Self {
            app,
            user,
            other,
            admin,
            key,
            revoked,
            target_id,
            alice_spare_key,
            provider_id: providers[0].clone(),
            spare_provider_id: providers[1].clone(),
        }
    }

    fn auth(&self, who: Who) -> Option<Auth> {
        match who {
            Who::Anonymous => None,
            Who::User => Some(Auth::Cookie(self.user.clone())),
            Who::OtherUser => Some(Auth::Cookie(self.other.clone())),
            Who::Admin => Some(Auth::Cookie(self.admin.clone())),
            Who::Key => Some(Auth::Bearer(self.key.clone())),
            Who::RevokedKey => Some(Auth::Bearer(self.revoked.clone())),
        }
    }
}

/// What a caller gets: the status for REST.
fn admin_only(who: Who, ok: StatusCode) -> StatusCode {
    match who {
        Who::Anonymous | Who::RevokedKey => StatusCode::UNAUTHORIZED,
        Who::Admin => ok,
        _ => StatusCode::FORBIDDEN,
    }
}

fn signed_in(who: Who, ok: StatusCode) -> StatusCode {
    match who {
        Who::Anonymous | Who::RevokedKey => StatusCode::UNAUTHORIZED,
        _ => ok,
    }
}

/// A person signed in with a session: an API key cannot do this.
fn in_person(who: Who, ok: StatusCode) -> StatusCode {
    match who {
        Who::Key => StatusCode::FORBIDDEN,
        _ => signed_in(who, ok),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_endpoints_enforce_roles() {
    let w = World::new().await;
    let t = w.target_id.clone();
    let mut n = 0;
    for who in EVERYONE {
        let cases: Vec<(axum::http::Request<axum::body::Body>, StatusCode)> = vec![
            (
                request("GET", "/api/v1/session", w.auth(who)),
                signed_in(who, StatusCode::OK),
            ),
            (
                request("GET", "/api/v1/users", w.auth(who)),
                admin_only(who, StatusCode::OK),
            ),
            (
                json_request(
                    "POST",
                    "/api/v1/users",
                    w.auth(who),
                    json!({"email": format!("new-{n}@example.com")}),
                ),
                admin_only(who, StatusCode::CREATED),
            ),
            (
                json_request(
                    "PATCH",
                    &format!("/api/v1/users/{t}"),
                    w.auth(who),
                    json!({"role": "user"}),
                ),
                admin_only(who, StatusCode::OK),
            ),
            (
                request(
                    "POST",
                    &format!("/api/v1/users/{t}/revoke-sessions"),
                    w.auth(who),
                ),
                admin_only(who, StatusCode::OK),
            ),
            (
                request("GET", "/api/v1/api-keys", w.auth(who)),
                signed_in(who, StatusCode::OK),
            ),
            (
                request("GET", "/api/v1/api-keys?all=true", w.auth(who)),
                admin_only(who, StatusCode::OK),
            ),
            (
                json_request(
                    "POST",
                    "/api/v1/api-keys",
                    w.auth(who),
                    json!({"name": "k"}),
                ),
                in_person(who, StatusCode::CREATED),
            ),
            (
                request("GET", "/api/v1/audit", w.auth(who)),
                admin_only(who, StatusCode::OK),
            ),
            (
                request("GET", "/api/v1/providers", w.auth(who)),
                signed_in(who, StatusCode::OK),
            ),
            (
                json_request(
                    "POST",
                    "/api/v1/providers",
                    w.auth(who),
                    json!({"name": format!("p{n}"), "token_endpoint": "http://127.0.0.1:9/token", "client_auth_method": "none", "client_id": "c"}),
                ),
                admin_only(who, StatusCode::CREATED),
            ),
            (
                request(
                    "GET",
                    &format!("/api/v1/providers/{}", w.provider_id),
                    w.auth(who),
                ),
                signed_in(who, StatusCode::OK),
            ),
            (
                json_request(
                    "PATCH",
                    &format!("/api/v1/providers/{}", w.provider_id),
                    w.auth(who),
                    json!({"pkce": true}),
                ),
                admin_only(who, StatusCode::OK),
            ),
            (
                json_request(
                    "POST",
                    "/api/v1/providers/discover",
                    w.auth(who),
                    json!({"issuer": "http://127.0.0.1:1"}),
                ),
                admin_only(who, StatusCode::UNPROCESSABLE_ENTITY),
            ),
            (
                request("GET", "/api/v1/tokens", w.auth(who)),
                signed_in(who, StatusCode::OK),
            ),
            (
                json_request(
                    "POST",
                    "/api/v1/tokens",
                    w.auth(who),
                    json!({"name": "t", "provider_id": w.provider_id, "flow": "client_credentials", "request": false}),
                ),
                signed_in(who, StatusCode::CREATED),
            ),
            (
                request(
                    "DELETE",
                    &format!("/api/v1/providers/{}", w.spare_provider_id),
                    w.auth(who),
                ),
                admin_only(who, StatusCode::OK),
            ),
        ];
        for (req, expected) in cases {
            let what = format!("{} {}", req.method(), req.uri());
            let r = w.app.send(req).await;
            assert_eq!(r.status, expected, "{who:?} {what}: {}", r.body);
            if !r.status.is_success() {
                assert!(
                    r.json()["error"]["code"].is_string(),
                    "{who:?} {what}: {}",
                    r.body
                );
            }
            n += 1;
        }
    }

    // Someone else's API key: invisible to another user, revocable by its owner and admins.
    let spare = w.alice_spare_key.clone();
    for (who, expected) in [
        (Who::Anonymous, StatusCode::UNAUTHORIZED),
        (Who::RevokedKey, StatusCode::UNAUTHORIZED),
        (Who::OtherUser, StatusCode::NOT_FOUND),
        (Who::Key, StatusCode::OK),
        (Who::User, StatusCode::OK),
        (Who::Admin, StatusCode::OK),
    ] {
        let r = w
            .app
            .send(request(
                "DELETE",
                &format!("/api/v1/api-keys/{spare}"),
                w.auth(who),
            ))
            .await;
        assert_eq!(
            r.status, expected,
            "{who:?} revoking alice's key: {}",
            r.body
        );
    }
    // Tokens: only their owner (and admins) reach them.
    let alice_token = w
        .app
        .send(json_request("POST", "/api/v1/tokens", w.auth(Who::User), json!({"name": "a", "provider_id": w.provider_id, "flow": "client_credentials", "request": false})))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (who, expected) in [
        (Who::Anonymous, StatusCode::UNAUTHORIZED),
        (Who::RevokedKey, StatusCode::UNAUTHORIZED),
        (Who::OtherUser, StatusCode::NOT_FOUND),
        (Who::Key, StatusCode::OK),
        (Who::User, StatusCode::OK),
        (Who::Admin, StatusCode::OK),
    ] {
        let r = w
            .app
            .send(request(
                "GET",
                &format!("/api/v1/tokens/{alice_token}"),
                w.auth(who),
            ))
            .await;
        assert_eq!(r.status, expected, "{who:?} reading alice's token");
        let r = w
            .app
            .send(json_request(
                "PATCH",
                &format!("/api/v1/tokens/{alice_token}"),
                w.auth(who),
                json!({"name": "renamed"}),
            ))
            .await;
        assert_eq!(r.status, expected, "{who:?} renaming alice's token");
    }
    for (who, expected) in [
        (Who::Anonymous, StatusCode::UNAUTHORIZED),
        (Who::OtherUser, StatusCode::NOT_FOUND),
        (Who::User, StatusCode::OK),
    ] {
        let r = w
            .app
            .send(request(
                "DELETE",
                &format!("/api/v1/tokens/{alice_token}"),
                w.auth(who),
            ))
            .await;
        assert_eq!(r.status, expected, "{who:?} deleting alice's token");
    }

    // Tokens: only their owner (and admins) reach them.
    let alice_token = w
        .app
        .send(json_request("POST", "/api/v1/tokens", w.auth(Who::User), json!({"name": "a", "provider_id": w.provider_id, "flow": "client_credentials", "request": false})))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (who, expected) in [
        (Who::Anonymous, StatusCode::UNAUTHORIZED),
        (Who::RevokedKey, StatusCode::UNAUTHORIZED),
        (Who::OtherUser, StatusCode::NOT_FOUND),
        (Who::Key, StatusCode::OK),
        (Who::User, StatusCode::OK),
        (Who::Admin, StatusCode::OK),
    ] {
        let r = w
            .app
            .send(request(
                "GET",
                &format!("/api/v1/tokens/{alice_token}"),
                w.auth(who),
            ))
            .await;
        assert_eq!(r.status, expected, "{who:?} reading alice's token");
        let r = w
            .app
            .send(json_request(
                "PATCH",
                &format!("/api/v1/tokens/{alice_token}"),
                w.auth(who),
                json!({"name": "renamed"}),
            ))
            .await;
        assert_eq!(r.status, expected, "{who:?} renaming alice's token");
        for action in ["auth-link", "refresh", "request", "reset"] {
            let r = w
                .app
                .send(request(
                    "POST",
                    &format!("/api/v1/tokens/{alice_token}/{action}"),
                    w.auth(who),
                ))
                .await;
            match who {
                Who::Anonymous | Who::RevokedKey => assert_eq!(r.status, StatusCode::UNAUTHORIZED),
                Who::OtherUser => assert_eq!(r.status, StatusCode::NOT_FOUND, "{action}"),
                // The owner and admins get past the access check; the flow decides the rest.
                _ => assert!(
                    r.status != StatusCode::NOT_FOUND && r.status != StatusCode::FORBIDDEN,
                    "{who:?} {action}: {}",
                    r.body
                ),
            }
        }
    }
    for (who, expected) in [
        (Who::Anonymous, StatusCode::UNAUTHORIZED),
        (Who::OtherUser, StatusCode::NOT_FOUND),
        (Who::User, StatusCode::OK),
    ] {
        let r = w
            .app
            .send(request(
                "DELETE",
                &format!("/api/v1/tokens/{alice_token}"),
                w.auth(who),
            ))
            .await;
        assert_eq!(r.status, expected, "{who:?} deleting alice's token");
    }

    // A user's key list never shows another user's keys.
    let bob_keys = w
        .app
        .send(request("GET", "/api/v1/api-keys", w.auth(Who::OtherUser)))
        .await
        .json();
    assert!(
        bob_keys["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["owner"] == "bob@example.com")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_functions_enforce_roles() {
    let w = World::new().await;
    let t = w.target_id.clone();
    for who in EVERYONE {
        let admin_fns: Vec<(&str, String)> = vec![
            ("list_users", String::new()),
            (
                "create_user",
                format!("email=sf-{who:?}@example.com&password=&role=user").to_lowercase(),
            ),
            ("update_user", format!("id={t}&role=user")),
            ("revoke_user_sessions", format!("id={t}")),
            ("get_audit_page", "query[offset]=0".into()),
        ];
        let user_fns: Vec<(&str, String)> = vec![
            ("list_api_keys", String::new()),
            ("get_instance_info", String::new()),
            ("check_database", String::new()),
            ("list_tokens", "query[offset]=0".into()),
            ("get_token_form", String::new()),
            ("list_providers", String::new()),
            ("get_provider", format!("id={}", w.provider_id)),
        ];
        for (name, form) in admin_fns {
            let r = w
                .app
                .send(server_fn_request(name, w.auth(who), &form))
                .await;
            match who {
                Who::Admin => assert_eq!(r.status, StatusCode::OK, "{who:?} {name}: {}", r.body),
                Who::Anonymous | Who::RevokedKey => {
                    assert!(
                        r.status == StatusCode::UNAUTHORIZED && r.body.contains("Unauthenticated"),
                        "{who:?} {name}: {} {}",
                        r.status,
                        r.body
                    )
                }
                _ => assert!(
                    r.status == StatusCode::FORBIDDEN && r.body.contains("Forbidden"),
                    "{who:?} {name}: {} {}",
                    r.status,
                    r.body
                ),
            }
        }
        let r = w
            .app
            .send(server_fn_request("create_api_key", w.auth(who), "name=sf"))
            .await;
        assert_eq!(
            r.status,
            in_person(who, StatusCode::OK),
            "{who:?} create_api_key: {}",
            r.body
        );
        for (name, form) in user_fns {
            let r = w
                .app
                .send(server_fn_request(name, w.auth(who), &form))
                .await;
            match who {
                Who::Anonymous | Who::RevokedKey => {
                    assert!(
                        r.status == StatusCode::UNAUTHORIZED && r.body.contains("Unauthenticated"),
                        "{who:?} {name}: {} {}",
                        r.status,
                        r.body
                    )
                }
                _ => assert_eq!(r.status, StatusCode::OK, "{who:?} {name}: {}", r.body),
            }
        }
        let me = w
            .app
            .send(server_fn_request("get_current_user", w.auth(who), ""))
            .await;
        assert_eq!(me.status, StatusCode::OK);
        match who {
            Who::Anonymous | Who::RevokedKey => assert_eq!(me.body, "null"),
            _ => assert!(me.body.contains("@example.com")),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_and_provider_server_functions_keep_owners_and_roles() {
    let w = World::new().await;
    let created = w
        .app
        .send(server_fn_json(
            "create_token",
            w.auth(Who::User),
            json!({"input": {"name": "sf-token", "provider_id": w.provider_id, "flow": "client_credentials", "request": false}}),
        ))
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    // Secrets never travel back: the view says only whether they are set.
    assert!(!created.body.contains("client_secret\":\""));
    let calls: Vec<(&str, String)> = vec![
        ("get_token", format!("id={id}")),
        ("token_auth_link", format!("id={id}")),
        ("reset_token", format!("id={id}")),
        ("refresh_token", format!("id={id}")),
        ("request_token", format!("id={id}")),
        ("delete_token", format!("id={id}")),
    ];
    for (name, form) in &calls {
        for (who, expected) in [
            (Who::Anonymous, StatusCode::UNAUTHORIZED),
            (Who::RevokedKey, StatusCode::UNAUTHORIZED),
            (Who::OtherUser, StatusCode::NOT_FOUND),
        ] {
            let r = w.app.send(server_fn_request(name, w.auth(who), form)).await;
            assert_eq!(r.status, expected, "{who:?} {name}: {}", r.body);
        }
        let r = w
            .app
            .send(server_fn_json(
                "update_token",
                w.auth(Who::OtherUser),
                json!({"id": id, "input": {"name": "x"}}),
            ))
            .await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "bob update_token: {}",
            r.body
        );
    }
    // The owner reads and renames it; the history records both.
    let r = w
        .app
        .send(server_fn_json(
            "update_token",
            w.auth(Who::User),
            json!({"id": id, "input": {"name": "renamed"}}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let detail = w
        .app
        .send(server_fn_request(
            "get_token",
            w.auth(Who::User),
            &format!("id={id}"),
        ))
        .await
        .json();
    assert_eq!(detail["token"]["name"], "renamed");
    let actions: Vec<&str> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    // Bob's refused attempts are not in Alice's view of the history.
    assert_eq!(actions, ["token.rename", "token.create"]);
    assert!(!detail.to_string().contains("bob@example.com"));
    // Validation names the field.
    let r = w
        .app
        .send(server_fn_json(
            "update_token",
            w.auth(Who::User),
            json!({"id": id, "input": {"name": " "}}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("\"field\":\"name\""), "{}", r.body);
    // Arguments that do not decode are a 400 naming the problem, not a 500.
    let r = w
        .app
        .send(server_fn_json(
            "update_token",
            w.auth(Who::User),
            json!({"id": id, "input": {"name": 5}}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("Deserialization"), "{}", r.body);
    // Providers: users read, only admins change.
    for who in [Who::User, Who::Key] {
        for (name, form) in [
            (
                "delete_provider",
                format!("id={}&force=true", w.spare_provider_id),
            ),
            (
                "discover_provider",
                "issuer=http%3A%2F%2F127.0.0.1%3A9".to_owned(),
            ),
        ] {
            let r = w
                .app
                .send(server_fn_request(name, w.auth(who), &form))
                .await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{who:?} {name}: {}",
                r.body
            );
        }
    }
    // A provider in use is not deleted without force.
    let r = w
        .app
        .send(server_fn_request(
            "delete_provider",
            w.auth(Who::Admin),
            &format!("id={}&force=false", w.provider_id),
        ))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let r = w
        .app
        .send(server_fn_request(
            "delete_token",
            w.auth(Who::User),
            &format!("id={id}"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["revocation"], "not_supported");
}
