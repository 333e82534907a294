//! Soak: real `quiver serve` processes under every kind of renewal at once,
//! against the real authorization server with refresh-token rotation and
//! reuse detection. Two replicas on PostgreSQL, and one process on SQLite,
//! side by side: the scheduler every second, 20 tokens living 60 s,
//! programs fetching access tokens, people pressing Refresh, refresh jobs
//! run again and again, and a `kill -9` in the middle while the killed
//! process is renewing a token (its claim must lapse and another caller
//! take over). At the end no refresh token was presented twice (no
//! `invalid_grant` at the provider), every token is `active`, and every
//! access-token call was answered 200.
//!
//! `QUIVER_SOAK_SECONDS` sets the length of the traffic (default 180).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

use crate::replicas::{Replica, Shared, http};
use crate::support::authserver::AuthServer;
use crate::support::process::free_port;
use crate::support::test_database;

const ADMIN_EMAIL: &str = "soak@example.com";
const ADMIN_PASSWORD: &str = "soak admin password";
/// Every provider's timeout: a refresh claim lasts twice this plus 15 s.
const PROVIDER_TIMEOUT_MS: i64 = 5_000;
const TOKEN_LIFETIME_SECS: i64 = 60;
const PROGRAMS: usize = 6;
const PEOPLE: usize = 2;

fn soak_length() -> Duration {
    Duration::from_secs(
        std::env::var("QUIVER_SOAK_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(180),
    )
}

/// What the traffic saw.
#[derive(Default)]
struct Tally {
    access_ok: AtomicU64,
    access_other: AtomicU64,
    refresh_ok: AtomicU64,
    refresh_other: AtomicU64,
    job_runs: AtomicU64,
    job_busy: AtomicU64,
    job_failed: AtomicU64,
    /// The refresh sent to the process about to be killed.
    cut: AtomicU64,
}

/// The processes of one run: which may take traffic.
struct Fleet {
    bases: Vec<String>,
    live: Vec<AtomicBool>,
}

impl Fleet {
    fn pick(&self) -> Option<&str> {
        let live: Vec<&String> = self
            .bases
            .iter()
            .zip(&self.live)
            .filter(|(_, l)| l.load(Ordering::SeqCst))
            .map(|(b, _)| b)
            .collect();
        live.choose(&mut rand::thread_rng()).map(|b| b.as_str())
    }
}

struct Run {
    label: &'static str,
    auth: AuthServer,
    key: String,
    tokens: Vec<String>,
    /// A Password token of its own client, the one in flight at the kill.
    victim: String,
    jobs: Vec<String>,
    tally: Arc<Tally>,
    fleet: Arc<Fleet>,
}

async fn post(base: &str, key: &str, path: &str, body: Value) -> Value {
    let r = http()
        .post(format!("{base}{path}"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

async fn get(base: &str, key: &str, path: &str) -> Value {
    let r = http()
        .get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

/// Providers, tokens (10 Authorization Code, 9 Password, one Password
/// token of a client of its own) and two refresh jobs, made on `base`.
async fn populate(auth: &AuthServer, base: &str, key: &str) -> (Vec<String>, String, Vec<String>) {
    auth.admin(
        "POST",
        "/clients",
        Some(json!({
            "client_id": "victim",
            "client_secret": "victim-secret",
            "grant_types": ["password", "refresh_token"],
            "response_types": [],
            "redirect_uris": [],
            "token_endpoint_auth_method": "client_secret_basic",
        })),
    )
    .await;
    let mut providers = Vec::new();
    for (name, client) in [
        ("code", "code-basic"),
        ("pw", "password"),
        ("victim", "victim"),
    ] {
        let mut p = auth.provider(name, client, "client_secret_basic");
        if client == "victim" {
            p["client_secret"] = json!("victim-secret");
        }
        p["timeout_ms"] = json!(PROVIDER_TIMEOUT_MS);
        providers.push(
            post(base, key, "/api/v1/providers", p).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    auth.admin("POST", "/config", Some(json!({"autoLogin": "alice"})))
        .await;
    let mut tokens = Vec::new();
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for i in 0..10 {
        let t = post(base, key, "/api/v1/tokens", json!({"name": format!("code-{i}"), "provider_id": providers[0], "flow": "authorization_code", "scope": "openid api:read"})).await;
        let id = t["id"].as_str().unwrap().to_owned();
        let link = post(
            base,
            key,
            &format!("/api/v1/tokens/{id}/auth-link"),
            json!({}),
        )
        .await;
        let back = no_redirects
            .get(link["url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        let location = back.headers()["location"].to_str().unwrap().to_owned();
        let page = http().get(&location).send().await.unwrap();
        assert!(page.status().is_success(), "callback: {}", page.status());
        tokens.push(id);
    }
    for i in 0..9 {
        let t = post(base, key, "/api/v1/tokens", json!({"name": format!("pw-{i}"), "provider_id": providers[1], "flow": "password", "username": "alice", "password": "wonderland"})).await;
        tokens.push(t["id"].as_str().unwrap().to_owned());
    }
    let t = post(base, key, "/api/v1/tokens", json!({"name": "victim", "provider_id": providers[2], "flow": "password", "username": "alice", "password": "wonderland"})).await;
    let victim = t["id"].as_str().unwrap().to_owned();
    tokens.push(victim.clone());
    for id in &tokens {
        let t = get(base, key, &format!("/api/v1/tokens/{id}")).await;
        assert_eq!(t["status"], "active", "{t}");
        assert_eq!(t["has_refresh_token"], true, "{t}");
    }
    let mut jobs = Vec::new();
    for (name, provider) in [("code", &providers[0]), ("pw", &providers[1])] {
        let j = post(base, key, "/api/v1/jobs", json!({"name": name, "action": "refresh", "target": "provider", "target_id": provider, "every_minutes": 60})).await;
        jobs.push(j["id"].as_str().unwrap().to_owned());
    }
    (tokens, victim, jobs)
}

/// Programs, people and a job runner, until `until`.
fn traffic(run: &Run, until: Instant) -> tokio::task::JoinSet<()> {
    let mut set = tokio::task::JoinSet::new();
    for program in 0..PROGRAMS + PEOPLE {
        let (fleet, tally, key, tokens) = (
            run.fleet.clone(),
            run.tally.clone(),
            run.key.clone(),
            run.tokens.clone(),
        );
        set.spawn(async move {
            let client = http();
            let person = program >= PROGRAMS;
            while Instant::now() < until {
                let pause = if person { 1_000 } else { 20 };
                let Some(base) = fleet.pick().map(str::to_owned) else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let id = tokens.choose(&mut rand::thread_rng()).unwrap().clone();
                let request = if person {
                    client.post(format!("{base}/api/v1/tokens/{id}/refresh"))
                } else {
                    client.get(format!("{base}/api/v1/tokens/{id}/access-token"))
                };
                let ok = match request.bearer_auth(&key).send().await {
                    Ok(r) if r.status().as_u16() == 200 => true,
                    Ok(r) => {
                        let status = r.status();
                        eprintln!("{id}: {status} {}", r.text().await.unwrap_or_default());
                        false
                    }
                    Err(e) => {
                        eprintln!("{id}: {e}");
                        false
                    }
                };
                let counter = match (person, ok) {
                    (false, true) => &tally.access_ok,
                    (false, false) => &tally.access_other,
                    (true, true) => &tally.refresh_ok,
                    (true, false) => &tally.refresh_other,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                let jitter = rand::thread_rng().gen_range(0..=pause / 2);
                tokio::time::sleep(Duration::from_millis(pause + jitter)).await;
            }
        });
    }
    let (fleet, tally, key, jobs) = (
        run.fleet.clone(),
        run.tally.clone(),
        run.key.clone(),
        run.jobs.clone(),
    );
    set.spawn(async move {
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let Some(base) = fleet.pick().map(str::to_owned) else {
                continue;
            };
            let job = jobs.choose(&mut rand::thread_rng()).unwrap().clone();
            let r = http()
                .post(format!("{base}/api/v1/jobs/{job}/run"))
                .bearer_auth(&key)
                .send()
                .await;
            match r {
                Ok(r) if r.status().as_u16() == 409 => {
                    tally.job_busy.fetch_add(1, Ordering::Relaxed);
                }
                Ok(r) if r.status().is_success() => {
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    tally.job_runs.fetch_add(1, Ordering::Relaxed);
                    if body["failed"] != 0 {
                        eprintln!("job run failed: {body}");
                        tally.job_failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                other => {
                    eprintln!("job run: {other:?}");
                    tally.job_failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    set
}

/// Makes `base` start a refresh of the victim token whose request hangs
/// at the provider's door (never passed to oidc-provider), and waits until
/// it does: the process then holds the token's claim.
async fn renewal_in_flight(run: &Run, base: &str) -> tokio::task::JoinHandle<()> {
    let served = |s: Value| s["faultsServed"]["token"].as_i64().unwrap_or(0);
    let before = served(run.auth.stats().await);
    run.auth
        .fault(
            json!({"mode": "hang", "grantType": "refresh_token", "clientId": "victim", "count": 1}),
        )
        .await;
    let (url, key, tally) = (
        format!("{base}/api/v1/tokens/{}/refresh", run.victim),
        run.key.clone(),
        run.tally.clone(),
    );
    let cut = tokio::spawn(async move {
        // Answered by nobody: the process dies first.
        let _ = http().post(url).bearer_auth(key).send().await;
        tally.cut.fetch_add(1, Ordering::Relaxed);
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while served(run.auth.stats().await) == before {
        assert!(
            Instant::now() < deadline,
            "the victim's refresh never reached the provider"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cut
}

/// Waits until every token is `active` with no claim left; then checks and
/// reports the run.
async fn finish(run: &Run, base: &str, took: Duration) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let tokens = loop {
        let page = get(base, &run.key, "/api/v1/tokens?limit=100").await;
        let items = page["items"].as_array().unwrap().clone();
        if items.iter().all(|t| t["status"] == "active") || Instant::now() > deadline {
            break items;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let stats = run.auth.stats().await;
    let invalid_grants = stats["tokenErrors"]["refresh_token"]["invalid_grant"]
        .as_i64()
        .unwrap_or(0);
    let grants = &stats["providerGrantTypes"];
    let t = &run.tally;
    eprintln!(
        "soak {}: {:.0} s; provider answered {} refresh_token and {} password grants, {} authorization codes; \
         invalid_grant: {invalid_grants}; access-token calls: {} answered 200, {} otherwise; \
         manual refreshes: {} answered 200, {} otherwise; job runs: {} ({} busy, {} with failures); \
         refresh cut by the kill: {}; errors at the provider: {}",
        run.label,
        took.as_secs_f64(),
        grants["refresh_token"].as_i64().unwrap_or(0),
        grants["password"].as_i64().unwrap_or(0),
        grants["authorization_code"].as_i64().unwrap_or(0),
        t.access_ok.load(Ordering::Relaxed),
        t.access_other.load(Ordering::Relaxed),
        t.refresh_ok.load(Ordering::Relaxed),
        t.refresh_other.load(Ordering::Relaxed),
        t.job_runs.load(Ordering::Relaxed),
        t.job_busy.load(Ordering::Relaxed),
        t.job_failed.load(Ordering::Relaxed),
        t.cut.load(Ordering::Relaxed),
        stats["tokenErrors"],
    );
    assert_eq!(
        invalid_grants, 0,
        "{}: a refresh token was presented twice",
        run.label
    );
    for token in &tokens {
        assert_eq!(token["status"], "active", "{}: {token}", run.label);
    }
    assert_eq!(
        t.access_other.load(Ordering::Relaxed),
        0,
        "{}: every access-token call answered 200",
        run.label
    );
    assert_eq!(
        t.refresh_other.load(Ordering::Relaxed),
        0,
        "{}: every manual refresh answered 200",
        run.label
    );
    assert_eq!(
        t.job_failed.load(Ordering::Relaxed),
        0,
        "{}: no job run failed",
        run.label
    );
    assert!(
        t.access_ok.load(Ordering::Relaxed) > 1_000,
        "{}: programs were busy",
        run.label
    );
    assert!(
        t.job_runs.load(Ordering::Relaxed) > 0,
        "{}: jobs ran",
        run.label
    );
    assert!(
        grants["refresh_token"].as_i64().unwrap_or(0) > 100,
        "{}: tokens were renewed again and again",
        run.label
    );
}

/// Starts the authorization server (60 s tokens) calling back to `port`.
async fn auth_server(port: u16) -> AuthServer {
    let auth = AuthServer::start(&format!("http://127.0.0.1:{port}/oauth/callback"));
    auth.admin(
        "POST",
        "/config",
        Some(json!({"accessTokenTtl": TOKEN_LIFETIME_SECS})),
    )
    .await;
    auth
}

fn settings(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("QUIVER_SCHEDULER_INTERVAL", "1s".into()),
        ("QUIVER_PUBLIC_URL", format!("http://127.0.0.1:{port}")),
    ]
}

async fn start(shared: &Shared, name: &'static str, dir: &Path, port: u16, public: u16) -> Replica {
    let env = settings(public);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Replica::start_in(shared, name, dir, port, &env).await
}

fn admin_key(shared: &Shared) -> String {
    shared.cli(
        &["user", "create", "--email", ADMIN_EMAIL, "--admin"],
        &format!("{ADMIN_PASSWORD}\n"),
    );
    let out = shared.cli(
        &[
            "api-key",
            "create",
            "--name",
            "soak",
            "--email",
            ADMIN_EMAIL,
        ],
        "",
    );
    out.split("key (shown once): ")
        .nth(1)
        .unwrap_or_else(|| panic!("no key in {out:?}"))
        .trim()
        .to_owned()
}

/// Two replicas on PostgreSQL; replica A is killed in the middle.
async fn postgres(length: Duration) {
    let database = test_database("soak").await;
    let shared = Shared::new(Some(database.url.clone()));
    let dir = tempfile::tempdir().unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    let auth = auth_server(port_a).await;
    std::fs::create_dir_all(dir.path().join("a")).unwrap();
    std::fs::create_dir_all(dir.path().join("b")).unwrap();
    let mut a = start(&shared, "A", &dir.path().join("a"), port_a, port_a).await;
    let key = admin_key(&shared);
    let b = start(&shared, "B", &dir.path().join("b"), port_b, port_a).await;
    let (tokens, victim, jobs) = populate(&auth, &a.base, &key).await;
    auth.admin("POST", "/stats/reset", None).await;
    let run = Run {
        label: "PostgreSQL, two replicas",
        auth,
        key,
        tokens,
        victim,
        jobs,
        tally: Arc::default(),
        fleet: Arc::new(Fleet {
            bases: vec![a.base.clone(), b.base.clone()],
            live: vec![AtomicBool::new(true), AtomicBool::new(true)],
        }),
    };
    let started = Instant::now();
    let mut traffic = traffic(&run, started + length);
    tokio::time::sleep(length / 2).await;
    // A holds the victim's claim, its request open at the provider: no more
    // traffic to A, then kill -9.
    let cut = renewal_in_flight(&run, &a.base).await;
    run.fleet.live[0].store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.kill();
    let _ = cut.await;
    while traffic.join_next().await.is_some() {}
    finish(&run, &b.base, started.elapsed()).await;
    let warnings: Vec<String> = b
        .warnings()
        .into_iter()
        .filter(|w| !w.contains("lapsed without storing its result"))
        .collect();
    assert!(warnings.is_empty(), "replica B warned: {warnings:#?}");
}

/// One process on SQLite, killed in the middle and started again on the
/// same database.
async fn sqlite(length: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let mut shared = Shared::new(None);
    shared.cli_data = Some(dir.path().join("data"));
    let port = free_port();
    let auth = auth_server(port).await;
    let mut q = start(&shared, "Q", dir.path(), port, port).await;
    let key = admin_key(&shared);
    let (tokens, victim, jobs) = populate(&auth, &q.base, &key).await;
    auth.admin("POST", "/stats/reset", None).await;
    let run = Run {
        label: "SQLite, one process",
        auth,
        key,
        tokens,
        victim,
        jobs,
        tally: Arc::default(),
        fleet: Arc::new(Fleet {
            bases: vec![q.base.clone()],
            live: vec![AtomicBool::new(true)],
        }),
    };
    let started = Instant::now();
    let mut traffic = traffic(&run, started + length);
    tokio::time::sleep(length / 2).await;
    let cut = renewal_in_flight(&run, &q.base).await;
    run.fleet.live[0].store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    q.kill();
    let _ = cut.await;
    let q = start(&shared, "Q", dir.path(), port, port).await;
    run.fleet.live[0].store(true, Ordering::SeqCst);
    while traffic.join_next().await.is_some() {}
    finish(&run, &q.base, started.elapsed()).await;
    let warnings: Vec<String> = q
        .warnings()
        .into_iter()
        .filter(|w| !w.contains("lapsed without storing its result"))
        .collect();
    assert!(warnings.is_empty(), "Quiver warned: {warnings:#?}");
}

/// Both runs side by side (they share nothing but the machine), so the
/// suite waits for one soak length rather than two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_every_caller_at_once_with_a_kill_in_the_middle() {
    let length = soak_length();
    tokio::join!(postgres(length), sqlite(length));
}
