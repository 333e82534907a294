//! The background refresher against the real authorization server: due
//! tokens are renewed before they expire and only once; provider faults
//! back off (with `Retry-After`), keep the last good token and, repeated,
//! mark the token failed with an event; refresh tokens without an expiry
//! are used every idle interval; two replicas share the work.

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::Duration;
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use server::clock::Clock;
use server::db::entity::token;
use server::schedule::refresh::{PassReport, RefreshScheduler};
use server::tokens::TokenStatus;

use crate::support::request;
use crate::support::world::World;

async fn row(w: &World, id: &str) -> token::Model {
    token::Entity::find_by_id(id.to_owned())
        .one(&w.app.state.instance.db)
        .await
        .unwrap()
        .unwrap()
}

async fn pass(w: &World) -> PassReport {
    RefreshScheduler::new(w.app.state.instance.tokens.clone())
        .pass()
        .await
}

async fn grants(w: &World, grant: &str) -> i64 {
    w.auth.stats().await["providerGrantTypes"][grant]
        .as_i64()
        .unwrap_or(0)
}

async fn events(w: &World) -> Vec<Value> {
    let r = w
        .app
        .send(request("GET", "/api/v1/events", Some(w.admin.clone())))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.json()["items"].as_array().unwrap().clone()
}

/// Authorizes an interactive token as alice's browser would.
async fn authorize(w: &World, id: &str) {
    w.auth
        .admin("POST", "/config", Some(json!({"autoLogin": "alice"})))
        .await;
    let link = w
        .app
        .send(request(
            "POST",
            &format!("/api/v1/tokens/{id}/auth-link"),
            w.key.clone(),
        ))
        .await
        .json();
    let back = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(link["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let location = back.headers()["location"].to_str().unwrap().to_owned();
    let path = location.trim_start_matches("http://127.0.0.1:3000");
    let page = w.app.send(request("GET", path, None)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_tokens_are_renewed_before_expiry_and_only_once() {
    let w = World::new().await;
    w.auth
        .admin("POST", "/config", Some(json!({"accessTokenTtl": 3600})))
        .await;
    let id = w
        .token(json!({"name": "cc", "provider_id": w.provider_id("cc").await, "flow": "client_credentials", "refresh_lead_seconds": 600}))
        .await;
    let first = row(&w, &id).await;
    let expires = first.expires_at.unwrap();
    assert_eq!(
        first.refresh_due_at,
        Some(expires - Duration::seconds(600)),
        "due 600 s before expiry"
    );
    w.auth.admin("POST", "/stats/reset", None).await;
    // Not yet due: nothing happens.
    w.app.clock.advance(Duration::minutes(49));
    assert_eq!(pass(&w).await, PassReport::default());
    assert_eq!(grants(&w, "client_credentials").await, 0);
    // Due: renewed once, even over several passes.
    w.app.clock.advance(Duration::minutes(2));
    let report = pass(&w).await;
    assert_eq!(report.renewed, 1, "{report:?}");
    assert_eq!(pass(&w).await, PassReport::default());
    assert_eq!(grants(&w, "client_credentials").await, 1);
    let renewed = row(&w, &id).await;
    assert!(renewed.expires_at.unwrap() > expires);
    assert!(renewed.refresh_due_at.unwrap() > w.app.clock.now());
    assert!(renewed.lease_owner.is_none(), "the lease is released");
    // The REST view says when the next renewal is.
    let view = w
        .app
        .send(request(
            "GET",
            &format!("/api/v1/tokens/{id}"),
            w.key.clone(),
        ))
        .await
        .json();
    assert_eq!(view["auto_refresh"], true);
    assert_eq!(view["refresh_lead_seconds"], 600);
    assert!(view["next_refresh_at"].is_string(), "{view}");
    assert_eq!(view["failure_count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_refresh_off_leaves_the_token_alone() {
    let w = World::new().await;
    let id = w
        .token(json!({"name": "cc", "provider_id": w.provider_id("cc").await, "flow": "client_credentials", "auto_refresh": false}))
        .await;
    assert_eq!(row(&w, &id).await.refresh_due_at, None);
    w.auth.admin("POST", "/stats/reset", None).await;
    w.app.clock.advance(Duration::hours(3));
    assert_eq!(pass(&w).await, PassReport::default());
    assert_eq!(grants(&w, "client_credentials").await, 0);
    // Turning it on schedules it (here: at once, the token has expired).
    let r = w
        .app
        .send(crate::support::json_request(
            "PATCH",
            &format!("/api/v1/tokens/{id}"),
            w.key.clone(),
            json!({"auto_refresh": true}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(pass(&w).await.renewed, 1);
    // Bad values name their field.
    let r = w
        .app
        .send(crate::support::json_request(
            "PATCH",
            &format!("/api/v1/tokens/{id}"),
            w.key.clone(),
            json!({"refresh_lead_seconds": -5}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.json()["error"]["field"], "refresh_lead_seconds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_faults_back_off_keep_the_last_good_token_and_finally_fail() {
    let w = World::with_env(&[("QUIVER_REFRESH_MAX_FAILURES", "4")]).await;
    let id = w
        .token(json!({"name": "cc", "provider_id": w.provider_id("cc").await, "flow": "client_credentials"}))
        .await;
    let good = row(&w, &id).await;
    w.app.clock.advance(Duration::hours(2));
    let faults = [
        json!({"mode": "status", "status": 500, "body": {"error": "server_error"}}),
        json!({"mode": "status", "status": 503, "headers": {"Retry-After": "900"}, "body": "busy"}),
        json!({"mode": "malformed"}),
        json!({"mode": "status", "status": 400, "body": {"error": "invalid_client"}}),
    ];
    for (n, fault) in faults.iter().enumerate() {
        w.auth.fault(fault.clone()).await;
        let before = w.app.clock.now();
        let report = pass(&w).await;
        assert_eq!(report.failed, 1, "fault {fault}: {report:?}");
        let t = row(&w, &id).await;
        assert_eq!(t.failure_count, n as i32 + 1);
        // The last good token stays.
        assert_eq!(t.access_token, good.access_token, "fault {fault}");
        let wait = t.refresh_due_at.unwrap() - before;
        let full = 30 * 2_i64.pow(n as u32);
        if n == 1 {
            assert!(
                wait >= Duration::seconds(900),
                "Retry-After honoured: {wait}"
            );
            assert_eq!(
                t.last_error
                    .as_deref()
                    .map(|e| e.contains("\"retry_after_seconds\":900")),
                Some(true)
            );
        } else {
            assert!(
                wait >= Duration::seconds(full / 2) && wait <= Duration::seconds(full),
                "backoff after {} failures: {wait}",
                n + 1
            );
        }
        if n < 3 {
            assert_eq!(
                t.status,
                TokenStatus::Active,
                "not failed after {} failures",
                n + 1
            );
            // Backing off: an immediate pass does nothing.
            assert_eq!(pass(&w).await, PassReport::default());
            w.app.clock.advance(wait + Duration::seconds(1));
        } else {
            assert_eq!(t.status, TokenStatus::Failed, "failed after 4 failures");
        }
    }
    let raised = events(&w).await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0]["kind"], "token.failed");
    assert_eq!(raised[0]["token_id"], id.as_str());
    assert_eq!(raised[0]["detail"]["failures"], 4);
    // The user who owns the token sees it too.
    let mine = w
        .app
        .send(request("GET", "/api/v1/events", w.key.clone()))
        .await
        .json();
    assert_eq!(mine["total"], 1);
    // The provider recovers: the next attempt renews and says so.
    w.app
        .clock
        .advance(Duration::hours(1) + Duration::seconds(1));
    assert_eq!(pass(&w).await.renewed, 1);
    let t = row(&w, &id).await;
    assert_eq!((t.status.as_str(), t.failure_count), ("active", 0));
    assert_ne!(t.access_token, good.access_token);
    let raised = events(&w).await;
    assert_eq!(raised[0]["kind"], "token.recovered", "{raised:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_provider_times_out_and_backs_off() {
    let w = World::new().await;
    let pid = w.provider_id("cc").await;
    let r = w
        .app
        .send(crate::support::json_request(
            "PATCH",
            &format!("/api/v1/providers/{pid}"),
            Some(w.admin.clone()),
            json!({"timeout_ms": 1000}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let id = w
        .token(json!({"name": "cc", "provider_id": pid, "flow": "client_credentials"}))
        .await;
    let good = row(&w, &id).await;
    w.app.clock.advance(Duration::hours(2));
    w.auth.fault(json!({"mode": "hang"})).await;
    let started = std::time::Instant::now();
    assert_eq!(pass(&w).await.failed, 1);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let t = row(&w, &id).await;
    assert_eq!(t.access_token, good.access_token);
    assert!(t.last_error.unwrap().contains("no answer"));
    assert_eq!(t.status, TokenStatus::Active);
    w.auth.admin("POST", "/faults/release-hung", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interactive_token_refused_by_the_provider_needs_a_person() {
    let w = World::new().await;
    let pid = w.provider_id("code").await;
    let id = w
        .token(json!({"name": "code", "provider_id": pid, "flow": "authorization_code", "scope": "openid email"}))
        .await;
    // Give it a refresh token the provider does not know, with an expiry.
    w.auth
        .fault(json!({"mode": "status", "status": 200, "body": {"access_token": "at-1", "token_type": "Bearer", "expires_in": 600, "refresh_token": "rt-unknown"}}))
        .await;
    // Any flow's first token comes from the auth link; here the fault
    // answers the code exchange of a real authorization.
    authorize(&w, &id).await;
    let t = row(&w, &id).await;
    assert!(t.refresh_due_at.is_some());
    w.app.clock.advance(Duration::minutes(10));
    assert_eq!(pass(&w).await.failed, 1);
    let t = row(&w, &id).await;
    assert_eq!(t.status, TokenStatus::Failed);
    assert_eq!(t.refresh_due_at, None, "no more attempts without a person");
    let raised = events(&w).await;
    assert_eq!(
        raised[0]["kind"], "token.reauthorization_needed",
        "{raised:?}"
    );
    assert_eq!(pass(&w).await, PassReport::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_without_expiry_are_used_every_idle_interval() {
    let w = World::with_env(&[("QUIVER_IDLE_REFRESH_INTERVAL", "24h")]).await;
    // The provider answers the first grant with a refresh token and no expiry.
    w.auth
        .fault(json!({"mode": "status", "status": 200, "body": {"access_token": "at-1", "token_type": "Bearer", "refresh_token": "rt-1"}}))
        .await;
    w.auth
        .admin(
            "POST",
            "/users",
            Some(json!({"username": "idle", "password": "idle-pw"})),
        )
        .await;
    let id = w
        .token(json!({"name": "pw", "provider_id": w.provider_id("pw").await, "flow": "password", "username": "idle", "password": "idle-pw"}))
        .await;
    let t = row(&w, &id).await;
    assert_eq!(t.expires_at, None);
    assert_eq!(
        t.refresh_due_at,
        Some(t.last_refreshed_at.unwrap() + Duration::hours(24))
    );
    w.auth.admin("POST", "/stats/reset", None).await;
    w.app.clock.advance(Duration::hours(23));
    assert_eq!(pass(&w).await, PassReport::default());
    w.app.clock.advance(Duration::hours(1));
    // The refresh token is used; the provider does not know it, so the
    // Password flow falls back to its saved credentials.
    assert_eq!(pass(&w).await.renewed, 1);
    assert_eq!(grants(&w, "refresh_token").await, 1);
    assert_eq!(grants(&w, "password").await, 1);
    assert_eq!(row(&w, &id).await.status, TokenStatus::Active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_renew_each_due_token_exactly_once() {
    let w = World::new().await;
    let second = Arc::new(w.app.replica(crate::support::world::ENV).await);
    let pid = w.provider_id("cc").await;
    let mut ids = Vec::new();
    for n in 0..40 {
        ids.push(
            w.token(json!({"name": format!("cc-{n}"), "provider_id": pid, "flow": "client_credentials"}))
                .await,
        );
    }
    w.auth.admin("POST", "/stats/reset", None).await;
    w.app.clock.advance(Duration::hours(2));
    let a = RefreshScheduler::new(w.app.state.instance.tokens.clone());
    let b = RefreshScheduler::new(second.state.instance.tokens.clone());
    let (ra, rb) = tokio::join!(a.pass(), b.pass());
    assert_eq!(ra.renewed + rb.renewed, 40, "{ra:?} {rb:?}");
    assert_eq!(ra.failed + rb.failed, 0);
    assert_eq!(grants(&w, "client_credentials").await, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pass_renews_every_due_token_batch_after_batch() {
    let w = World::new().await;
    let pid = w.provider_id("cc").await;
    for n in 0..12 {
        w.token(
            json!({"name": format!("cc-{n}"), "provider_id": pid, "flow": "client_credentials"}),
        )
        .await;
    }
    w.auth.admin("POST", "/stats/reset", None).await;
    w.app.clock.advance(Duration::hours(2));
    // Five listed at a time: the pass goes on until none is due.
    let scheduler = RefreshScheduler::with_batch(w.app.state.instance.tokens.clone(), 5);
    let report = scheduler.pass().await;
    assert_eq!(report.renewed, 12, "{report:?}");
    assert_eq!(report.failed, 0);
    assert_eq!(grants(&w, "client_credentials").await, 12, "each once");
    assert_eq!(scheduler.pass().await, PassReport::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_pass_stuck_at_a_provider_holds_up_no_scheduled_job() {
    let w = World::with_env(&[("QUIVER_SCHEDULER_INTERVAL", "100ms")]).await;
    let cc = w.provider_id("cc").await;
    let pw = w.provider_id("pw").await;
    // One renewal at a time at `cc`, three tokens: while the first hangs,
    // every pass waits for a slot for the other two.
    let r = w
        .app
        .send(crate::support::json_request(
            "PATCH",
            &format!("/api/v1/providers/{cc}"),
            Some(w.admin.clone()),
            json!({"refresh_concurrency": 1}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for n in 0..3 {
        w.token(
            json!({"name": format!("cc-{n}"), "provider_id": cc, "flow": "client_credentials"}),
        )
        .await;
    }
    // A job over a provider without tokens: its runs call no provider.
    let r = w
        .app
        .send(crate::support::json_request(
            "POST",
            "/api/v1/jobs",
            Some(w.admin.clone()),
            json!({"name": "pw tokens", "action": "refresh", "target": "provider", "target_id": pw, "every_minutes": 1}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let job = r.json()["id"].as_str().unwrap().to_owned();
    // The tokens and the job are due; every token request hangs for 20 s.
    w.app.clock.advance(Duration::hours(2));
    w.auth
        .fault(json!({"mode": "hang", "delayMs": 20000, "count": -1, "endpoint": "token"}))
        .await;
    let scheduler = w
        .app
        .state
        .instance
        .start_scheduler()
        .expect("the scheduler is on");
    let started = std::time::Instant::now();
    let mut ran = false;
    while started.elapsed() < std::time::Duration::from_secs(5) {
        let view = w
            .app
            .send(request(
                "GET",
                &format!("/api/v1/jobs/{job}"),
                Some(w.admin.clone()),
            ))
            .await
            .json();
        if view["job"]["last_run_at"].is_string() {
            ran = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    scheduler.abort();
    w.auth.clear_faults().await;
    assert!(
        ran,
        "the job ran within {:?} while the renewal hung",
        started.elapsed()
    );
}

/// A webhook receiver on loopback: records each delivery (headers and
/// body) and answers the queued statuses, then 200.
struct Receiver {
    url: String,
    seen: Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>,
    statuses: Arc<std::sync::Mutex<Vec<u16>>>,
}

impl Receiver {
    async fn start() -> Self {
        let seen: Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>> = Arc::default();
        let statuses: Arc<std::sync::Mutex<Vec<u16>>> = Arc::default();
        let (s, q) = (seen.clone(), statuses.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let (s, q) = (s.clone(), q.clone());
                async move {
                    s.lock().unwrap().push((headers, body));
                    let mut q = q.lock().unwrap();
                    let code = if q.is_empty() { 200 } else { q.remove(0) };
                    StatusCode::from_u16(code).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url,
            seen,
            statuses,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_posted_to_the_webhook_signed_and_retried() {
    use server::events::webhook::signature;
    let hook = Receiver::start().await;
    let w = World::with_env(&[
        ("QUIVER_WEBHOOK_URL", hook.url.as_str()),
        (
            "QUIVER_WEBHOOK_SECRET",
            "whsec-test-a-key-of-at-least-32-bytes",
        ),
        ("QUIVER_REFRESH_MAX_FAILURES", "1"),
    ])
    .await;
    let id = w
        .token(json!({"name": "cc", "provider_id": w.provider_id("cc").await, "flow": "client_credentials"}))
        .await;
    w.app.clock.advance(Duration::hours(2));
    w.auth
        .fault(json!({"mode": "status", "status": 401, "body": {"error": "invalid_client", "error_description": "client secret expired"}}))
        .await;
    assert_eq!(pass(&w).await.failed, 1);
    let raised = events(&w).await;
    assert_eq!(raised[0]["webhook_status"], "pending");
    // The receiver fails the first delivery: it is retried later.
    hook.statuses.lock().unwrap().push(503);
    let deliverer = w.app.state.instance.webhook_deliverer().unwrap();
    assert_eq!(deliverer.pass().await, 0);
    assert_eq!(deliverer.pass().await, 0, "not again before its backoff");
    assert_eq!(hook.seen.lock().unwrap().len(), 1);
    w.app.clock.advance(Duration::minutes(2));
    assert_eq!(deliverer.pass().await, 1);
    assert_eq!(deliverer.pass().await, 0, "delivered once");
    let seen = hook.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let (headers, body) = &seen[1];
    let sent: Value = serde_json::from_str(body).unwrap();
    assert_eq!(sent["kind"], "token.failed");
    assert_eq!(sent["token_id"], id.as_str());
    assert_eq!(sent["detail"]["error"]["error"], "invalid_client");
    assert!(!body.contains("whsec-test-a-key-of-at-least-32-bytes"));
    let header = |n: &str| headers[n].to_str().unwrap().to_owned();
    assert_eq!(header("x-quiver-event"), "token.failed");
    assert_eq!(header("x-quiver-delivery"), sent["id"].as_str().unwrap());
    assert_eq!(
        seen[0].0["x-quiver-delivery"],
        seen[1].0["x-quiver-delivery"]
    );
    let timestamp: i64 = header("x-quiver-timestamp").parse().unwrap();
    assert_eq!(
        header("x-quiver-signature"),
        signature(
            &server::secret::SecretString::new("whsec-test-a-key-of-at-least-32-bytes"),
            timestamp,
            body.as_bytes()
        )
    );
    assert_eq!(events(&w).await[0]["webhook_status"], "delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_renewals_tokens_and_access_token_requests_for_admins_only() {
    let w = World::new().await;
    let id = w
        .token(json!({"name": "cc", "provider_id": w.provider_id("cc").await, "flow": "client_credentials"}))
        .await;
    w.app.clock.advance(Duration::hours(2));
    let r = w
        .app
        .send(request("GET", "/metrics", Some(w.admin.clone())))
        .await;
    assert!(
        r.body.contains("quiver_tokens{status=\"expired\"} 1"),
        "{}",
        r.body
    );
    assert_eq!(pass(&w).await.renewed, 1);
    for _ in 0..3 {
        w.app
            .send(request(
                "GET",
                &format!("/api/v1/tokens/{id}/access-token"),
                w.key.clone(),
            ))
            .await;
    }
    w.app
        .send(request(
            "GET",
            "/api/v1/tokens/nope/access-token",
            w.key.clone(),
        ))
        .await;
    let r = w
        .app
        .send(request("GET", "/metrics", Some(w.admin.clone())))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").starts_with("text/plain"));
    let text = r.body;
    for line in [
        "quiver_token_refreshes_total{provider=\"cc\",outcome=\"success\",trigger=\"background\"} 1",
        "quiver_token_refresh_duration_seconds_count{provider=\"cc\"} 1",
        "quiver_tokens{status=\"active\"} 1",
        "quiver_tokens{status=\"expired\"} 0",
        "quiver_access_token_requests_total{outcome=\"ok\"} 3",
        "quiver_access_token_requests_total{outcome=\"not_found\"} 1",
        "quiver_access_token_request_duration_seconds_count 4",
        "# TYPE quiver_job_runs_total counter",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    // Only admins: a user's key is refused, nobody is asked to sign in.
    let r = w.app.send(request("GET", "/metrics", w.key.clone())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = w.app.send(request("GET", "/metrics", None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_provider_concurrency_and_rate_limits_pace_the_renewals() {
    let w = World::new().await;
    let pid = w.provider_id("cc").await;
    let r = w
        .app
        .send(crate::support::json_request(
            "PATCH",
            &format!("/api/v1/providers/{pid}"),
            Some(w.admin.clone()),
            json!({"refresh_concurrency": 2, "refresh_rate_per_minute": 120}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["refresh_concurrency"], 2);
    for n in 0..6 {
        w.token(
            json!({"name": format!("cc-{n}"), "provider_id": pid, "flow": "client_credentials"}),
        )
        .await;
    }
    w.app.clock.advance(Duration::hours(2));
    // Every token request takes 400 ms at the provider; track how many overlap.
    w.auth
        .fault(json!({"mode": "hang", "delayMs": 400, "count": -1, "endpoint": "token"}))
        .await;
    let started = std::time::Instant::now();
    let report = pass(&w).await;
    let took = started.elapsed();
    w.auth.clear_faults().await;
    assert_eq!(report.renewed, 6, "{report:?}");
    // 120 per minute with bursts of 2: two at once, then one every 500 ms,
    // so the sixth starts after 2 s.
    assert!(
        took >= std::time::Duration::from_millis(2000),
        "six renewals at 2 per second took {took:?}"
    );
    // Bad limits name their field.
    let r = w
        .app
        .send(crate::support::json_request(
            "PATCH",
            &format!("/api/v1/providers/{pid}"),
            Some(w.admin.clone()),
            json!({"refresh_concurrency": 0}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["error"]["field"], "refresh_concurrency");
}
