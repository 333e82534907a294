//! Several real `quiver serve` processes on one PostgreSQL database, with
//! the real authorization server: 1,000 due tokens are renewed exactly
//! once between two replicas, and `kill -9` of one replica in the middle
//! of the run loses no token (its leases lapse, the other finishes).
//!
//! Each test works in a database of its own, dropped at the end (also when
//! the test fails); the replicas are killed when the test ends.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, Utc};
use rand::Rng;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, Value};
use serde_json::json;

use crate::support::authserver::AuthServer;
use crate::support::process::{free_port, wait_until_healthy};
use crate::support::{PgDatabase, test_database};

const BIN: &str = env!("CARGO_BIN_EXE_quiver");
/// Tokens in each run.
const TOKENS: i64 = 1_000;
/// Background renewals at once per replica against the provider.
const CONCURRENCY: i64 = 16;
/// The provider's timeout: a background renewal's lease is twice this
/// (a refresh and a fallback request) plus 15 s.
const PROVIDER_TIMEOUT_MS: i64 = 2_000;
/// Longest a run may take before the test fails.
const RUN_DEADLINE: Duration = Duration::from_secs(120);
const ADMIN_EMAIL: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "replica admin password";

pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The environment every process of one test shares: same database, same
/// key. Without a database URL, each process has the SQLite database of its
/// data directory.
pub(crate) struct Shared {
    pub(crate) database_url: Option<String>,
    pub(crate) master_key: String,
    /// The data directory of the CLI commands (for SQLite: the serving one).
    pub(crate) cli_data: Option<PathBuf>,
}

impl Shared {
    /// A database URL and a new master key.
    pub(crate) fn new(database_url: Option<String>) -> Self {
        Self {
            database_url,
            master_key: base64::engine::general_purpose::STANDARD
                .encode(rand::thread_rng().r#gen::<[u8; 32]>()),
            cli_data: None,
        }
    }

    fn command(&self, data_dir: &Path) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("QUIVER_DATA_DIR", data_dir)
            .env("QUIVER_MASTER_KEY", &self.master_key)
            .env("QUIVER_ALLOW_INSECURE_LOOPBACK", "true")
            .env("QUIVER_LOG", "warn");
        if let Some(url) = &self.database_url {
            cmd.env("QUIVER_DATABASE_URL", url);
        }
        cmd
    }

    /// Runs a CLI command with `stdin` and returns its standard output.
    pub(crate) fn cli(&self, args: &[&str], stdin: &str) -> String {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let data = self
            .cli_data
            .clone()
            .unwrap_or_else(|| dir.path().to_owned());
        let mut cmd = self.command(&data);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "quiver {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// One `quiver serve` process, killed when it drops. Its log (JSON lines,
/// warnings plus the scheduler's pass reports) goes to a file.
pub(crate) struct Replica {
    pub(crate) name: &'static str,
    child: Child,
    pub(crate) base: String,
    log: PathBuf,
    _data: Option<tempfile::TempDir>,
}

impl Replica {
    async fn start(shared: &Shared, name: &'static str) -> Self {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().to_owned();
        let mut replica = Self::start_in(
            shared,
            name,
            &dir,
            free_port(),
            &[("QUIVER_SCHEDULER_INTERVAL", "200ms")],
        )
        .await;
        replica._data = Some(data);
        replica
    }

    /// Starts `quiver serve` with its data and log in `dir`, on `port`, with
    /// `extra` settings.
    pub(crate) async fn start_in(
        shared: &Shared,
        name: &'static str,
        dir: &Path,
        port: u16,
        extra: &[(&str, &str)],
    ) -> Self {
        let log = dir.join(format!("quiver-{}.log", rand::thread_rng().r#gen::<u32>()));
        let mut cmd = shared.command(&dir.join("data"));
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.env("QUIVER_LISTEN", format!("127.0.0.1:{port}"))
            // The pass reports say how many renewals each replica did.
            .env("QUIVER_LOG", "warn,server::schedule=info")
            .env("QUIVER_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap());
        let child = cmd.spawn().unwrap();
        let mut replica = Self {
            name,
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            _data: None,
        };
        if let Err(e) = wait_until_healthy(&mut replica.child, &replica.base).await {
            panic!("replica {name} {e}: {}", replica.log_text());
        }
        replica
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn log_lines(&self) -> Vec<serde_json::Value> {
        self.log_text()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Renewals this replica reported in its finished passes.
    fn renewed(&self) -> u64 {
        self.log_lines()
            .iter()
            .filter(|l| l["message"] == "background refresh pass")
            .map(|l| l["renewed"].as_u64().unwrap_or(0))
            .sum()
    }

    /// Warnings and errors of the token engine and the scheduler (a
    /// renewal that lost a race, a failed listing, a provider error).
    pub(crate) fn warnings(&self) -> Vec<String> {
        self.log_lines()
            .iter()
            .filter(|l| l["level"] == "WARN" || l["level"] == "ERROR")
            .filter(|l| {
                let target = l["target"].as_str().unwrap_or("");
                ["server::tokens", "server::schedule", "server::oauth"]
                    .iter()
                    .any(|t| target.starts_with(t))
            })
            .map(|l| l.to_string())
            .collect()
    }

    /// `kill -9`.
    pub(crate) fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How far a run is.
#[derive(Debug, Clone, Copy)]
struct Progress {
    /// Renewed after the run started and next due in the future.
    done: i64,
    failed: i64,
    /// Rows that still name a lease owner or a lease expiry.
    leased: i64,
}

/// Two replicas, the authorization server, an admin API key, a provider
/// and 1,000 Client Credentials tokens. Fields drop in order: the replicas
/// first, the database last.
struct Cluster {
    a: Replica,
    b: Replica,
    auth: AuthServer,
    db: DatabaseConnection,
    _database: PgDatabase,
}

impl Cluster {
    async fn start() -> Self {
        let database = test_database("replicas").await;
        let shared = Shared::new(Some(database.url.clone()));
        let auth = AuthServer::start("http://127.0.0.1:3000/oauth/callback");
        // Renewed tokens live an hour: next due 55 minutes later.
        auth.admin("POST", "/config", Some(json!({"accessTokenTtl": 3600})))
            .await;

        // The first replica migrates the database; then the accounts; then the second.
        let a = Replica::start(&shared, "A").await;
        shared.cli(
            &["user", "create", "--email", ADMIN_EMAIL, "--admin"],
            &format!("{ADMIN_PASSWORD}\n"),
        );
        let out = shared.cli(
            &[
                "api-key",
                "create",
                "--name",
                "replicas",
                "--email",
                ADMIN_EMAIL,
            ],
            "",
        );
        let key = out
            .split("key (shown once): ")
            .nth(1)
            .unwrap_or_else(|| panic!("no key in {out:?}"))
            .trim()
            .to_owned();
        let b = Replica::start(&shared, "B").await;

        let mut provider = auth.provider("cc", "cc-basic", "client_secret_basic");
        provider["refresh_concurrency"] = json!(CONCURRENCY);
        provider["refresh_rate_per_minute"] = json!(0);
        provider["timeout_ms"] = json!(PROVIDER_TIMEOUT_MS);
        let r = http()
            .post(format!("{}/api/v1/providers", a.base))
            .bearer_auth(&key)
            .json(&provider)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
        let provider: serde_json::Value = r.json().await.unwrap();
        assert_eq!(provider["refresh_concurrency"], CONCURRENCY, "{provider}");
        assert_eq!(provider["refresh_rate_per_minute"], 0, "{provider}");

        // One token through the API (on the other replica), the rest cloned
        // in SQL. Sealed columns are bound to their row, so the clones hold
        // no access token: a Client Credentials token without one is
        // renewed by requesting anew.
        let r = http()
            .post(format!("{}/api/v1/tokens", b.base))
            .bearer_auth(&key)
            .json(&json!({
                "name": "replica-1",
                "provider_id": provider["id"],
                "flow": "client_credentials",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
        let token: serde_json::Value = r.json().await.unwrap();
        assert_eq!(token["status"], "active", "{token}");
        let id = token["id"].as_str().unwrap().to_owned();

        let db = Database::connect(database.url.as_str()).await.unwrap();
        let cloned = db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO tokens (id, name, owner_id, provider_id, flow, use_default_keys, \
                 client_id, client_secret, username, password, resource, scope, additional_values, \
                 status, access_token, refresh_token, token_type, expires_at, granted_scope, \
                 identity, last_error, last_refreshed_at, refresh_margin_secs, lease_owner, \
                 lease_until, auto_refresh, refresh_lead_secs, refresh_due_at, failure_count, \
                 created_at, updated_at) \
                 SELECT gen_random_uuid()::text, 'replica-' || g, owner_id, provider_id, flow, \
                 use_default_keys, client_id, NULL, username, NULL, resource, scope, \
                 additional_values, status, NULL, NULL, token_type, expires_at, granted_scope, \
                 identity, last_error, last_refreshed_at, refresh_margin_secs, NULL, NULL, \
                 auto_refresh, refresh_lead_secs, NULL, failure_count, created_at, updated_at \
                 FROM tokens, generate_series(2, $1::int) AS g WHERE id = $2",
                [Value::from(TOKENS as i32), Value::from(id)],
            ))
            .await
            .unwrap();
        assert_eq!(cloned.rows_affected(), (TOKENS - 1) as u64);
        Self {
            a,
            b,
            auth,
            db,
            _database: database,
        }
    }

    async fn count(&self, sql: &str, at: DateTime<Utc>) -> i64 {
        self.db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                [Value::from(at)],
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<i64>(0)
            .unwrap()
    }

    /// The database's clock.
    async fn now(&self) -> DateTime<Utc> {
        self.db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT clock_timestamp()",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index(0)
            .unwrap()
    }

    /// Resets the provider's counters, then makes every token due at once.
    /// Returns the database time just before.
    async fn make_all_due(&self) -> DateTime<Utc> {
        self.auth.admin("POST", "/stats/reset", None).await;
        let t0 = self.now().await;
        let due = self
            .db
            .execute_unprepared("UPDATE tokens SET refresh_due_at = now(), auto_refresh = true")
            .await
            .unwrap();
        assert_eq!(due.rows_affected(), TOKENS as u64);
        t0
    }

    async fn progress(&self, t0: DateTime<Utc>) -> Progress {
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT \
                 count(*) FILTER (WHERE last_refreshed_at > $1 AND refresh_due_at > now()), \
                 count(*) FILTER (WHERE status = 'failed'), \
                 count(*) FILTER (WHERE lease_owner IS NOT NULL OR lease_until IS NOT NULL) \
                 FROM tokens",
                [Value::from(t0)],
            ))
            .await
            .unwrap()
            .unwrap();
        Progress {
            done: row.try_get_by_index(0).unwrap(),
            failed: row.try_get_by_index(1).unwrap(),
            leased: row.try_get_by_index(2).unwrap(),
        }
    }

    /// Waits until every token is renewed; fails after [`RUN_DEADLINE`]
    /// saying how many are left.
    async fn wait_all_renewed(&self, t0: DateTime<Utc>, started: Instant) -> Progress {
        loop {
            let p = self.progress(t0).await;
            if p.done == TOKENS {
                return p;
            }
            assert!(
                started.elapsed() < RUN_DEADLINE,
                "{} of {TOKENS} tokens still not renewed after {RUN_DEADLINE:?} \
                 (failed: {}, holding a lease: {}; provider: {})",
                TOKENS - p.done,
                p.failed,
                p.leased,
                self.auth.stats().await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn client_credentials_requests(&self) -> i64 {
        self.auth.stats().await["providerGrantTypes"]["client_credentials"]
            .as_i64()
            .unwrap_or(0)
    }

    /// Successful `token.refresh` audit entries since `t0`: in total, and
    /// the most for one token.
    async fn audited_refreshes(&self, t0: DateTime<Utc>) -> (i64, i64) {
        let total = self
            .count(
                "SELECT count(*) FROM audit_log WHERE action = 'token.refresh' \
                 AND outcome = 'success' AND at > $1",
                t0,
            )
            .await;
        let most = self
            .count(
                "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM audit_log \
                 WHERE action = 'token.refresh' AND outcome = 'success' AND at > $1 \
                 GROUP BY object_id) per_token",
                t0,
            )
            .await;
        (total, most)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_renew_a_thousand_due_tokens_exactly_once() {
    let c = Cluster::start().await;
    let t0 = c.make_all_due().await;
    let started = Instant::now();
    let end = c.wait_all_renewed(t0, started).await;
    let took = started.elapsed();
    // A second renewal would come within a few scheduler intervals.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let requests = c.client_credentials_requests().await;
    let after = c.progress(t0).await;
    let (audited, most) = c.audited_refreshes(t0).await;
    let (by_a, by_b) = (c.a.renewed(), c.b.renewed());
    eprintln!(
        "two replicas: {TOKENS} tokens renewed in {:.2} s ({:.0} tokens/s); provider saw {requests} \
         client_credentials requests; replica A renewed {by_a}, replica B {by_b}",
        took.as_secs_f64(),
        TOKENS as f64 / took.as_secs_f64()
    );
    assert_eq!(
        requests, TOKENS,
        "the provider must see exactly one request per token"
    );
    assert_eq!(after.done, TOKENS, "{after:?}");
    assert_eq!(end.failed + after.failed, 0, "no token failed: {after:?}");
    assert_eq!(after.leased, 0, "no lease is left: {after:?}");
    assert_eq!(
        (audited, most),
        (TOKENS, 1),
        "one successful token.refresh audit entry per token"
    );
    assert_eq!(
        by_a + by_b,
        TOKENS as u64,
        "the replicas' pass reports add up"
    );
    assert!(
        by_a > 0 && by_b > 0,
        "both replicas renewed some tokens (A {by_a}, B {by_b})"
    );
    for r in [&c.a, &c.b] {
        let warnings = r.warnings();
        assert!(
            warnings.is_empty(),
            "replica {} warned: {warnings:#?}",
            r.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_run_loses_no_token() {
    let mut c = Cluster::start().await;
    // Every token request answers normally after 300 ms: the run takes
    // long enough to kill a replica in the middle of it.
    c.auth
        .fault(json!({"mode": "hang", "delayMs": 300, "count": -1, "endpoint": "token"}))
        .await;
    let t0 = c.make_all_due().await;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.a.kill();
    let killed_at = started.elapsed();
    let kill_time = c.now().await;
    let at_kill = c.progress(t0).await;
    assert!(
        at_kill.done < TOKENS / 2,
        "the run was not in its middle when A was killed: {at_kill:?}"
    );
    // B finishes a renewal within the provider's timeout and releases its
    // lease; a lease taken before the kill and still held seconds later
    // is one A took and never finished: the work the kill interrupted.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let orphaned = c
        .count(
            &format!(
                "SELECT count(*) FROM tokens WHERE lease_until IS NOT NULL \
                 AND lease_until <= $1 + interval '{} milliseconds'",
                2 * PROVIDER_TIMEOUT_MS + 15_000
            ),
            kill_time,
        )
        .await;

    let end = c.wait_all_renewed(t0, started).await;
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let requests = c.client_credentials_requests().await;
    let after = c.progress(t0).await;
    let (audited, most) = c.audited_refreshes(t0).await;
    // A killed between storing a renewal and writing its audit entry
    // leaves the renewal without one (they are separate writes).
    let unaudited = c
        .count(
            "SELECT count(*) FROM tokens t WHERE t.last_refreshed_at > $1 AND NOT EXISTS \
             (SELECT 1 FROM audit_log a WHERE a.action = 'token.refresh' \
             AND a.outcome = 'success' AND a.at > $1 AND a.object_id = t.id)",
            t0,
        )
        .await;
    c.auth.clear_faults().await;
    eprintln!(
        "kill -9: A killed after {:.2} s with {} of {TOKENS} renewed, {orphaned} claimed by A and \
         left unfinished; all {TOKENS} renewed after {:.2} s ({:.0} tokens/s); provider saw \
         {requests} client_credentials requests; B reported {} renewals; {audited} audited, {unaudited} renewed tokens without an audit entry",
        killed_at.as_secs_f64(),
        at_kill.done,
        took.as_secs_f64(),
        TOKENS as f64 / took.as_secs_f64(),
        c.b.renewed()
    );
    assert!(
        (1..=CONCURRENCY).contains(&orphaned),
        "A was killed in the middle of renewals ({orphaned} of its claims left unfinished, \
         at most its concurrency {CONCURRENCY})"
    );
    assert_eq!(after.done, TOKENS, "no token is lost: {after:?}");
    assert_eq!(end.failed + after.failed, 0, "no token failed: {after:?}");
    assert_eq!(after.leased, 0, "no lease is left: {after:?}");
    assert!(
        (TOKENS..=TOKENS + orphaned).contains(&requests),
        "the provider saw {requests} requests: at least one per token, and at most one more \
         for each of the {orphaned} renewals A had in flight"
    );
    assert!(
        most <= 1,
        "a token was stored as renewed {most} times (audit log)"
    );
    // B says so when it takes over a claim A left behind, and says nothing else.
    let (lapsed, warnings): (Vec<String>, Vec<String>) =
        c.b.warnings()
            .into_iter()
            .partition(|w| w.contains("lapsed without storing its result"));
    assert!(warnings.is_empty(), "replica B warned: {warnings:#?}");
    assert!(
        lapsed.len() as i64 <= orphaned,
        "{} lapsed claims taken over, {orphaned} left by A",
        lapsed.len()
    );
}
