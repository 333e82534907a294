//! Benchmarks of the background work, printed as `BENCH <name>: <value> …`
//! lines on standard output (progress goes to standard error). The
//! access-token endpoint is measured by `scripts/bench-access-token.sh`,
//! with an external load generator: one in this process shared the CPUs
//! with the server and measured itself.
//!
//! - `refresh`: 10,000 due Client Credentials tokens renewed by the
//!   scheduler's passes, against the test provider's own capacity measured
//!   alone (client_credentials grants straight to its token endpoint at the
//!   same concurrency); SQLite by default. With 2 CPUs or more the
//!   provider runs on the first and this process on the others, in every
//!   run alike (`BENCH_PIN`).
//! - `memory`: the resident memory of a separate `quiver serve` process with
//!   10,000 and 100,000 tokens (inserted in SQL batches); SQLite by default.
//!
//! `cargo bench -p server --bench automation -- [refresh|memory]…`
//! (no part: all). Sizes come from environment variables, see
//! [`Settings::from_env`] and docs/BENCHMARKS.md. Everything runs on
//! loopback against the real test authorization server
//! (end2end/authserver, Node.js) and, for PostgreSQL, a database of its own
//! on `QUIVER_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), dropped at the end. Child
//! processes are killed when the run ends, fails or is interrupted.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use base64::Engine;
use rand::Rng;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, Value,
};
use serde_json::json;
use server::account::Role;
use server::config::Config;
use server::db::DatabaseUrl;
use server::http::{AppState, router};
use server::schedule::refresh::RefreshScheduler;
use server::secret::SecretString;
use server::startup::Instance;
use server::{site, startup};

const ADMIN_EMAIL: &str = "bench@example.com";
const ADMIN_PASSWORD: &str = "bench admin password";
/// Longest any single setup request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest the scheduler may take to renew every due token.
const REFRESH_DEADLINE: Duration = Duration::from_secs(1800);
/// Longest a memory run waits for its scheduler pass.
const PASS_DEADLINE: Duration = Duration::from_secs(300);
/// Tokens made due for the memory run's scheduler pass (one pass's batch).
const PASS_TOKENS: u64 = 500;

type BenchResult<T = ()> = Result<T, String>;

/// Sizes and choices, from the environment.
#[derive(Clone, Debug)]
struct Settings {
    /// `BENCH_TOKENS` (10,000): due tokens of the refresh run.
    tokens: u64,
    /// `BENCH_GRANTS` (= `BENCH_TOKENS`): grants of the provider-alone run.
    grants: u64,
    /// `BENCH_CONCURRENCY` (16): grants at once, alone and in Quiver.
    concurrency: u64,
    /// `BENCH_MEMORY_TOKENS` (`10000,100000`): token counts of the memory runs.
    memory_tokens: Vec<u64>,
    /// `BENCH_INSERT_BATCH` (10,000): rows per SQL insert.
    insert_batch: u64,
    /// `BENCH_DATABASES` (`sqlite`).
    databases: Option<Vec<Kind>>,
    /// `QUIVER_TEST_POSTGRES_URL`.
    postgres_url: String,
    /// `QUIVER_LOG` (`info`, as `quiver serve`): the in-process log filter.
    log: String,
    /// `BENCH_PIN` (1 on a machine with 2 CPUs or more, else 0): in the
    /// refresh part, the provider runs on the first CPU and this process
    /// (Quiver, and the load generator of the provider-alone runs) on the
    /// others, in every run alike, as when the provider is another machine.
    pin: bool,
}

fn env_u64(name: &str, default: u64) -> BenchResult<u64> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .replace(['_', ','], "")
            .parse()
            .map_err(|_| format!("{name} must be a whole number, got {v:?}")),
        Err(_) => Ok(default),
    }
}

impl Settings {
    fn from_env() -> BenchResult<Self> {
        let cpus = std::thread::available_parallelism().map_or(2, usize::from) as u64;
        let tokens = env_u64("BENCH_TOKENS", 10_000)?;
        let memory_tokens = match std::env::var("BENCH_MEMORY_TOKENS") {
            Ok(v) => v
                .split(',')
                .map(|n| {
                    n.trim()
                        .replace('_', "")
                        .parse::<u64>()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| format!("BENCH_MEMORY_TOKENS: {n:?} is not a count"))
                })
                .collect::<BenchResult<Vec<_>>>()?,
            Err(_) => vec![10_000, 100_000],
        };
        let databases = match std::env::var("BENCH_DATABASES") {
            Ok(v) => Some(
                v.split(',')
                    .map(|d| match d.trim() {
                        "sqlite" => Ok(Kind::Sqlite),
                        "postgres" => Ok(Kind::Postgres),
                        other => Err(format!(
                            "BENCH_DATABASES: {other:?} is neither sqlite nor postgres"
                        )),
                    })
                    .collect::<BenchResult<Vec<_>>>()?,
            ),
            Err(_) => None,
        };
        let s = Self {
            tokens: tokens.max(1),
            grants: env_u64("BENCH_GRANTS", tokens)?.max(1),
            concurrency: env_u64("BENCH_CONCURRENCY", 16)?.clamp(1, 64),
            memory_tokens,
            insert_batch: env_u64("BENCH_INSERT_BATCH", 10_000)?.max(1),
            databases,
            postgres_url: std::env::var("QUIVER_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
            log: std::env::var("QUIVER_LOG").unwrap_or_else(|_| "info".to_owned()),
            pin: env_u64("BENCH_PIN", u64::from(cpus >= 2))? != 0,
        };
        Ok(s)
    }

    fn databases(&self, default: &[Kind]) -> Vec<Kind> {
        self.databases.clone().unwrap_or_else(|| default.to_vec())
    }
}

fn main() -> ExitCode {
    // `cargo bench` adds `--bench`; every other word names a part.
    let mut parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if let Some(bad) = parts
        .iter()
        .find(|p| !["refresh", "memory"].contains(&p.as_str()))
    {
        eprintln!(
            "unknown part {bad:?}: expected refresh or memory (none: both); the access-token \
             endpoint is measured by scripts/bench-access-token.sh"
        );
        return ExitCode::from(2);
    }
    if parts.is_empty() {
        parts = vec!["refresh".into(), "memory".into()];
    }
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    server::telemetry::init(&settings.log, server::config::LogFormat::Text);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = run(&parts, &settings) => r,
            // Dropping the run kills the children and drops the databases.
            _ = tokio::signal::ctrl_c() => Err("interrupted".to_owned()),
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(parts: &[String], s: &Settings) -> BenchResult {
    eprintln!("bench: settings {s:?}");
    for part in parts {
        match part.as_str() {
            "refresh" => refresh(s).await?,
            "memory" => memory(s).await?,
            _ => unreachable!("checked in main"),
        }
    }
    Ok(())
}

// ----------------------------------------------------------------- refresh

async fn refresh(s: &Settings) -> BenchResult {
    let auth = AuthServer::start()?;
    let placement = if s.pin {
        pin_apart(auth.child.id())?
    } else {
        "not pinned: the provider and Quiver share every CPU".to_owned()
    };
    bench("refresh.cpus", &placement);
    let outcome = refresh_runs(s, &auth).await;
    if s.pin {
        // The later parts run on every CPU again.
        if let Err(e) = pin(std::process::id(), &cpu_list(0)) {
            eprintln!("bench: {e}; the later parts stay on CPUs {}", cpu_list(1));
        }
    }
    outcome
}

/// The refresh runs of every database, on `auth`.
async fn refresh_runs(s: &Settings, auth: &AuthServer) -> BenchResult {
    for kind in s.databases(&[Kind::Sqlite]) {
        // The provider alone, right before Quiver, at the same concurrency,
        // after a full run to warm it up (its JIT takes thousands of
        // grants to settle).
        grants(auth, s.grants, s.concurrency, true).await?;
        let alone = grants(auth, s.grants, s.concurrency, true).await?;
        let alone_new = grants(auth, s.grants, s.concurrency, false).await?;

        let db = BenchDb::create(kind, s).await?;
        let env = quiver_env(&db, &db.dir.path().join("data"));
        let (config, _) = Config::load(None, env).map_err(|e| e.to_string())?;
        let options = site::leptos_options(None, config.listen);
        let instance = startup::open(config).await.map_err(|e| e.to_string())?;
        let key = admin_key(&instance).await?;
        let served = serve_here(router(AppState {
            instance: instance.clone().into(),
            leptos_options: options,
        }))
        .await?;
        let api = Api::new(&format!("http://{}", served.addr), &key);
        let provider = api.cc_provider(auth, s.concurrency).await?;
        let token = api.cc_token(&provider, "refresh-bench").await?;
        let now = chrono::Utc::now();
        eprintln!(
            "bench: refresh on {}: cloning {} due tokens in SQL",
            kind.name(),
            s.tokens
        );
        clone_tokens(
            &instance.db,
            &token,
            s.tokens,
            s.insert_batch,
            now - chrono::Duration::seconds(1),
        )
        .await?;
        let due = count_due(&instance.db, chrono::Utc::now()).await?;
        if due != s.tokens {
            return Err(format!("{due} tokens are due, expected {}", s.tokens));
        }

        auth.reset_stats().await?;
        eprintln!(
            "bench: refresh on {}: renewing {} tokens",
            kind.name(),
            s.tokens
        );
        let scheduler = RefreshScheduler::new(instance.tokens.clone());
        let cpu_before = process_cpu_seconds()?;
        let provider_cpu_before = auth.cpu_seconds()?;
        let started = Instant::now();
        let (mut renewed, mut failed, mut passes) = (0usize, 0usize, 0usize);
        loop {
            let r = scheduler.pass().await;
            if r.renewed + r.failed + r.skipped == 0 {
                break;
            }
            passes += 1;
            renewed += r.renewed;
            failed += r.failed;
            if started.elapsed() > REFRESH_DEADLINE {
                return Err(format!(
                    "the scheduler renewed {renewed} tokens in {REFRESH_DEADLINE:?} and is not done"
                ));
            }
        }
        let took = started.elapsed().as_secs_f64();
        let cpu = process_cpu_seconds()? - cpu_before;
        let provider_cpu = auth.cpu_seconds()? - provider_cpu_before;
        let left = count_due(&instance.db, chrono::Utc::now()).await?;
        let seen = auth.client_credentials_grants().await?;
        served.task.abort();
        drop(instance);
        drop(db);
        // The provider alone again, now that it holds every token issued
        // so far: tells how much of the difference is the provider slowing
        // down as its store grows.
        let alone_after = grants(auth, s.grants, s.concurrency, true).await?;

        let rate = renewed as f64 / took;
        let capacity = alone.per_second.max(alone_after.per_second);
        bench(
            &format!("refresh.{}.provider_alone", kind.name()),
            &format!(
                "{:.0} grants/s ({} client_credentials grants at concurrency {}, keep-alive connections)",
                alone.per_second, alone.count, s.concurrency
            ),
        );
        bench(
            &format!("refresh.{}.provider_alone_new_connection", kind.name()),
            &format!(
                "{:.0} grants/s ({} grants at concurrency {}, a new connection per grant)",
                alone_new.per_second, alone_new.count, s.concurrency
            ),
        );
        bench(
            &format!("refresh.{}.provider_alone_after", kind.name()),
            &format!(
                "{:.0} grants/s (the same, measured again after Quiver's run)",
                alone_after.per_second
            ),
        );
        bench(
            &format!("refresh.{}.quiver", kind.name()),
            &format!(
                "{rate:.0} renewals/s ({renewed} of {} tokens renewed in {took:.2} s over {passes} scheduler passes, {failed} failed, {left} still due; the provider saw {seen} grants; concurrency {}, no rate limit)",
                s.tokens, s.concurrency
            ),
        );
        bench(
            &format!("refresh.{}.quiver_cpu", kind.name()),
            &format!(
                "{:.0} µs of Quiver CPU per renewal ({cpu:.2} CPU-seconds for {renewed} renewals: the scheduler, SQLite and the HTTP client, all in this process; {:.0} % of one core)",
                cpu * 1e6 / renewed.max(1) as f64,
                cpu * 100.0 / took
            ),
        );
        bench(
            &format!("refresh.{}.provider_cpu", kind.name()),
            &format!(
                "{:.0} µs of provider CPU per grant alone, {:.0} µs per grant during Quiver's run",
                alone.provider_cpu * 1e6 / alone.count as f64,
                provider_cpu * 1e6 / seen.max(1) as f64
            ),
        );
        bench(
            &format!("refresh.{}.ratio", kind.name()),
            &format!(
                "{:.2} of the provider's capacity alone, the better of its two runs (goal >= 0.80); {:.2} of its run before, {:.2} of its run after; {:.2} of the provider with a new connection per grant",
                rate / capacity,
                rate / alone.per_second,
                rate / alone_after.per_second,
                rate / alone_new.per_second
            ),
        );
        if left > 0 || failed > 0 {
            return Err(format!(
                "{failed} renewals failed and {left} tokens are still due"
            ));
        }
    }
    Ok(())
}

/// Pins the provider (process `provider`, all its threads) to the first
/// CPU and this process (all its threads, and so those it starts later) to
/// the others; says where each runs.
fn pin_apart(provider: u32) -> BenchResult<String> {
    if cpu_count() < 2 {
        return Err("BENCH_PIN=1 needs at least 2 CPUs; set BENCH_PIN=0".into());
    }
    let rest = cpu_list(1);
    pin(provider, "0")?;
    pin(std::process::id(), &rest)?;
    Ok(format!(
        "the provider pinned to CPU 0, Quiver and the provider-alone load generator to CPUs {rest} (BENCH_PIN=0: not pinned)"
    ))
}

/// The machine's CPUs (not only those this process may use now).
fn cpu_count() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|list| {
            let last = list
                .trim()
                .rsplit([',', '-'])
                .next()?
                .parse::<usize>()
                .ok()?;
            Some(last + 1)
        })
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// CPUs `first` to the last, as `taskset -c` takes them.
fn cpu_list(first: usize) -> String {
    let last = cpu_count().saturating_sub(1).max(first);
    if last == first {
        first.to_string()
    } else {
        format!("{first}-{last}")
    }
}

/// Pins every thread of process `pid` to `cpus`, with `taskset`.
///
/// `taskset -a` lists the process's threads, then pins them one by one: a
/// thread that ends in between (a runtime's idle blocking thread, one of
/// the provider's helpers) fails the call with "No such process", and the
/// threads after it are left unpinned. So the affinity is set again until
/// one pass finds every thread alive, and the threads that are left are
/// then checked one by one; new threads inherit it from the thread that
/// starts them.
fn pin(pid: u32, cpus: &str) -> BenchResult {
    const ATTEMPTS: usize = 20;
    let mut last = String::new();
    for _ in 0..ATTEMPTS {
        let out = Command::new("taskset")
            .args(["-a", "-p", "-c", cpus, &pid.to_string()])
            .output()
            .map_err(|e| format!("cannot run taskset (util-linux) to pin the runs: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        last = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        if !last.contains("No such process") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Still racing with threads that come and go: pin those alive now.
    if last.contains("No such process")
        && std::path::Path::new(&format!("/proc/{pid}")).exists()
        && pin_threads(pid, cpus)?
    {
        return Ok(());
    }
    Err(format!(
        "taskset could not pin process {pid} to CPUs {cpus}: {last}"
    ))
}

/// Pins each thread of `pid` still alive to `cpus`; threads that ended
/// meanwhile are skipped. Whether every thread alive was pinned.
fn pin_threads(pid: u32, cpus: &str) -> BenchResult<bool> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).map_err(|e| e.to_string())?;
    for task in tasks.flatten() {
        let tid = task.file_name().to_string_lossy().into_owned();
        let out = Command::new("taskset")
            .args(["-p", "-c", cpus, &tid])
            .output()
            .map_err(|e| format!("cannot run taskset (util-linux) to pin the runs: {e}"))?;
        let gone = !std::path::Path::new(&format!("/proc/{pid}/task/{tid}")).exists();
        if !out.status.success() && !gone {
            return Ok(false);
        }
    }
    Ok(true)
}

/// User plus system CPU time of this process so far, in seconds.
fn process_cpu_seconds() -> BenchResult<f64> {
    cpu_seconds("self")
}

/// User plus system CPU time of process `pid` (or `self`), in seconds.
fn cpu_seconds(pid: &str) -> BenchResult<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the line, in clock ticks (100 per second).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("unreadable /proc/self/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> BenchResult<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .ok_or_else(|| "unreadable /proc/self/stat".to_owned())
    };
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

struct Grants {
    count: u64,
    per_second: f64,
    /// CPU-seconds the provider process used meanwhile.
    provider_cpu: f64,
}

/// `n` client_credentials grants straight to the provider's token endpoint,
/// `concurrency` at a time.
async fn grants(
    auth: &AuthServer,
    n: u64,
    concurrency: u64,
    keep_alive: bool,
) -> BenchResult<Grants> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30));
    if !keep_alive {
        builder = builder.pool_max_idle_per_host(0);
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    let url = auth.endpoint("token")?;
    let secret = auth.info["clientSecrets"]["cc-basic"]
        .as_str()
        .ok_or("no secret for cc-basic")?
        .to_owned();
    let next = Arc::new(AtomicU64::new(0));
    let cpu_before = auth.cpu_seconds()?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, url, next, secret) =
            (client.clone(), url.clone(), next.clone(), secret.clone());
        tasks.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let r = client
                    .post(&url)
                    .basic_auth("cc-basic", Some(&secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = r.status();
                let body = r.bytes().await.map_err(|e| e.to_string())?;
                if !status.is_success() {
                    return Err(format!(
                        "the provider answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    ));
                }
            }
            Ok::<(), String>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    let per_second = n as f64 / started.elapsed().as_secs_f64();
    Ok(Grants {
        count: n,
        per_second,
        provider_cpu: auth.cpu_seconds()? - cpu_before,
    })
}

// ------------------------------------------------------------------ memory

async fn memory(s: &Settings) -> BenchResult {
    let auth = AuthServer::start()?;
    for kind in s.databases(&[Kind::Sqlite]) {
        for &n in &s.memory_tokens {
            memory_run(s, &auth, kind, n).await?;
        }
    }
    Ok(())
}

async fn memory_run(s: &Settings, auth: &AuthServer, kind: Kind, n: u64) -> BenchResult {
    let db = BenchDb::create(kind, s).await?;
    // This process migrates the database and makes the admin and key.
    let env = quiver_env(&db, &db.dir.path().join("bench-data"));
    let (config, _) = Config::load(None, env).map_err(|e| e.to_string())?;
    let instance = startup::open(config).await.map_err(|e| e.to_string())?;
    let key = admin_key(&instance).await?;
    let quiver = QuiverProcess::start(&db).await?;
    let api = Api::new(&quiver.base, &key);
    let provider = api.cc_provider(auth, s.concurrency).await?;
    let token = api.cc_token(&provider, "memory-bench").await?;
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    set_due(&instance.db, None, later).await?;
    // Baseline: one token, a page listed, a few idle scheduler passes.
    api.get_json("/api/v1/tokens?limit=50").await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let baseline = quiver.memory()?;

    eprintln!(
        "bench: memory on {}: inserting {} tokens in SQL",
        kind.name(),
        n
    );
    let started = Instant::now();
    if n > 1 {
        clone_tokens(&instance.db, &token, n, s.insert_batch, later).await?;
    }
    let insert = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stored = quiver.memory()?;

    let page = api.get_json("/api/v1/tokens?limit=50").await?;
    if page["total"].as_u64() != Some(n) {
        return Err(format!(
            "the list reports {} tokens, expected {n}",
            page["total"]
        ));
    }
    auth.reset_stats().await?;
    let due = PASS_TOKENS.min(n);
    set_due(
        &instance.db,
        Some(due),
        chrono::Utc::now() - chrono::Duration::seconds(1),
    )
    .await?;
    let started = Instant::now();
    while count_due(&instance.db, chrono::Utc::now()).await? > 0 {
        if started.elapsed() > PASS_DEADLINE {
            return Err(format!(
                "the scheduler of `quiver serve` did not renew {due} tokens in {PASS_DEADLINE:?}: {}",
                quiver.log_tail()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = quiver.memory()?;
    let renewed = auth.client_credentials_grants().await?;
    drop(quiver);
    drop(instance);
    drop(db);

    bench(
        &format!("memory.{}.{n}", kind.name()),
        &format!(
            "{:.1} MiB RSS after listing a page and a scheduler pass ({:+.1} MiB over the baseline {:.1} MiB with 1 token); {:.1} MiB with the {n} tokens stored ({:+.1} MiB); peak (VmHWM) {:.1} MiB. Process: `quiver serve` on {}, scheduler every 1 s; the pass renewed {renewed} of {due} due tokens; {n} rows inserted in {insert:.2} s",
            mib(after.rss),
            mib(after.rss) - mib(baseline.rss),
            mib(baseline.rss),
            mib(stored.rss),
            mib(stored.rss) - mib(baseline.rss),
            mib(after.hwm),
            kind.name()
        ),
    );
    Ok(())
}

#[derive(Clone, Copy)]
struct Memory {
    /// VmRSS, KiB.
    rss: u64,
    /// VmHWM, KiB.
    hwm: u64,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A separate `quiver serve` process with the scheduler on; killed on drop.
struct QuiverProcess {
    child: Child,
    base: String,
    log: PathBuf,
}

impl QuiverProcess {
    async fn start(db: &BenchDb) -> BenchResult<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let log = db.dir.path().join("quiver.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_quiver"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(quiver_env(db, &db.dir.path().join("serve-data")))
            .env("QUIVER_LISTEN", format!("127.0.0.1:{port}"))
            .env("QUIVER_SCHEDULER_INTERVAL", "1s")
            .env("QUIVER_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start quiver: {e}"))?;
        let mut process = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let client = http_client()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = process.child.try_wait() {
                return Err(format!(
                    "quiver serve exited ({status}): {}",
                    process.log_tail()
                ));
            }
            let health = client
                .get(format!("{}/healthz", process.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return Ok(process);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "quiver serve was not healthy within 60 s: {}",
                    process.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn memory(&self) -> BenchResult<Memory> {
        let path = format!("/proc/{}/status", self.child.id());
        let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .ok_or_else(|| format!("no {name} in {path}"))
        };
        Ok(Memory {
            rss: field("VmRSS:")?,
            hwm: field("VmHWM:")?,
        })
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for QuiverProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------ shared

fn bench(name: &str, value: &str) {
    println!("BENCH {name}: {value}");
}

fn http_client() -> BenchResult<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())
}

/// Creates the admin account and returns an API key for it.
async fn admin_key(instance: &Instance) -> BenchResult<String> {
    let user = instance
        .accounts
        .users
        .create(
            ADMIN_EMAIL,
            &SecretString::new(ADMIN_PASSWORD.to_owned()),
            Role::Admin,
        )
        .await
        .map_err(|e| e.to_string())?;
    let (_, key) = instance
        .accounts
        .api_keys
        .create(&user.id, "bench")
        .await
        .map_err(|e| e.to_string())?;
    Ok(key.expose().to_owned())
}

/// Which database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Sqlite,
    Postgres,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Sqlite => "sqlite",
            Kind::Postgres => "postgres",
        }
    }
}

/// A database of the run's own: a SQLite file in a temporary folder, or a
/// fresh PostgreSQL database dropped (with its connections) on drop.
struct BenchDb {
    url: String,
    master_key: String,
    pg: Option<(String, String)>,
    dir: tempfile::TempDir,
}

impl BenchDb {
    async fn create(kind: Kind, s: &Settings) -> BenchResult<Self> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let master_key = base64::engine::general_purpose::STANDARD
            .encode(rand::thread_rng().r#gen::<[u8; 32]>());
        let (url, pg) = match kind {
            Kind::Sqlite => (
                DatabaseUrl::sqlite_file(&dir.path().join("quiver.db"))
                    .expose()
                    .to_owned(),
                None,
            ),
            Kind::Postgres => {
                let server = s.postgres_url.clone();
                let admin = Database::connect(quiet(&server)).await.map_err(|e| {
                    format!("PostgreSQL is not reachable at {server}: {e} (scripts/postgres.sh starts it)")
                })?;
                let name = format!("quiver_bench_{:016x}", rand::thread_rng().r#gen::<u64>());
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .map_err(|e| format!("create database {name}: {e}"))?;
                let _ = admin.close().await;
                let mut url = url::Url::parse(&server).map_err(|e| e.to_string())?;
                url.set_path(&format!("/{name}"));
                (url.to_string(), Some((server, name)))
            }
        };
        Ok(Self {
            url,
            master_key,
            pg,
            dir,
        })
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        let Some((server, name)) = self.pg.take() else {
            return;
        };
        // Possibly inside the bench's runtime: drop from a thread with its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let admin = Database::connect(quiet(&server))
                    .await
                    .map_err(|e| e.to_string())?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .map_err(|e| e.to_string())?;
                admin.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("bench: could not drop a PostgreSQL database: {dropped:?}");
        }
    }
}

/// Connection options that do not log every statement.
fn quiet(url: &str) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options.sqlx_logging(false);
    options
}

/// The settings of a Quiver instance on `db` with its data in `data_dir`.
fn quiver_env(db: &BenchDb, data_dir: &Path) -> Vec<(String, String)> {
    vec![
        ("QUIVER_DATA_DIR".into(), data_dir.display().to_string()),
        ("QUIVER_DATABASE_URL".into(), db.url.clone()),
        ("QUIVER_MASTER_KEY".into(), db.master_key.clone()),
        ("QUIVER_ALLOW_INSECURE_LOOPBACK".into(), "true".into()),
    ]
}

/// `$n` placeholders, numbered the SQLite way (`?n`) when needed.
fn sql(backend: DbBackend, text: &str) -> String {
    match backend {
        DbBackend::Sqlite => text.replace('$', "?"),
        _ => text.to_owned(),
    }
}

/// Clones token `id` into tokens 2..=`total` in batched `INSERT … SELECT`s:
/// new ids and names, no sealed column (sealed values are bound to their
/// row; a Client Credentials token without an access token is renewed by
/// requesting anew), automatic refresh on, next due at `due`.
async fn clone_tokens(
    db: &DatabaseConnection,
    id: &str,
    total: u64,
    batch: u64,
    due: chrono::DateTime<chrono::Utc>,
) -> BenchResult {
    let backend = db.get_database_backend();
    let (with, series, n) = match backend {
        DbBackend::Postgres => ("", "generate_series($1::int, $2::int) AS g", "g"),
        _ => (
            "WITH RECURSIVE g(n) AS (SELECT $1 UNION ALL SELECT n + 1 FROM g WHERE n < $2) ",
            "g",
            "n",
        ),
    };
    let padded = |width: usize| match backend {
        DbBackend::Postgres => format!("lpad({n}::text, {width}, '0')"),
        _ => format!("printf('%0{width}d', {n})"),
    };
    let text = format!(
        "{with}INSERT INTO tokens (id, name, owner_id, provider_id, flow, use_default_keys, \
         client_id, client_secret, username, password, resource, scope, additional_values, \
         status, access_token, refresh_token, token_type, expires_at, granted_scope, identity, \
         last_error, last_refreshed_at, refresh_margin_secs, lease_owner, lease_until, \
         auto_refresh, refresh_lead_secs, refresh_due_at, failure_count, created_at, updated_at) \
         SELECT '00000000-0000-4000-8000-' || {id}, 'bench-' || {name}, owner_id, provider_id, \
         flow, use_default_keys, client_id, NULL, username, NULL, resource, scope, \
         additional_values, status, NULL, NULL, token_type, expires_at, granted_scope, identity, \
         last_error, last_refreshed_at, refresh_margin_secs, NULL, NULL, $3, refresh_lead_secs, \
         $4, 0, created_at, updated_at FROM tokens, {series} WHERE id = $5",
        id = padded(12),
        name = padded(7),
    );
    let text = sql(backend, &text);
    let mut first = 2;
    while first <= total {
        let last = (first + batch - 1).min(total);
        let done = db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                &text,
                [
                    Value::from(first as i32),
                    Value::from(last as i32),
                    Value::from(true),
                    Value::from(due),
                    Value::from(id.to_owned()),
                ],
            ))
            .await
            .map_err(|e| format!("cloning tokens {first}..={last}: {e}"))?;
        if done.rows_affected() != last - first + 1 {
            return Err(format!(
                "cloning tokens {first}..={last} inserted {} rows",
                done.rows_affected()
            ));
        }
        first = last + 1;
    }
    // The original too.
    set_due(db, None, due).await
}

/// Sets automatic refresh and the next renewal of every token (or of the
/// first `limit` by id).
async fn set_due(
    db: &DatabaseConnection,
    limit: Option<u64>,
    due: chrono::DateTime<chrono::Utc>,
) -> BenchResult {
    let backend = db.get_database_backend();
    let text = match limit {
        None => "UPDATE tokens SET auto_refresh = $1, refresh_due_at = $2".to_owned(),
        Some(n) => format!(
            "UPDATE tokens SET auto_refresh = $1, refresh_due_at = $2 \
             WHERE id IN (SELECT id FROM tokens ORDER BY id LIMIT {n})"
        ),
    };
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        sql(backend, &text),
        [Value::from(true), Value::from(due)],
    ))
    .await
    .map_err(|e| format!("setting refresh_due_at: {e}"))?;
    Ok(())
}

/// Tokens whose renewal is due at `now`.
async fn count_due(
    db: &DatabaseConnection,
    now: chrono::DateTime<chrono::Utc>,
) -> BenchResult<u64> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql(
                backend,
                "SELECT count(*) FROM tokens WHERE auto_refresh = $1 AND refresh_due_at <= $2",
            ),
            [Value::from(true), Value::from(now)],
        ))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no count")?;
    let n: i64 = row.try_get_by_index(0).map_err(|e| e.to_string())?;
    Ok(n as u64)
}

/// Quiver's REST API with an admin key.
struct Api {
    client: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    fn new(base: &str, key: &str) -> Self {
        Self {
            client: http_client().expect("a reqwest client"),
            base: base.to_owned(),
            key: key.to_owned(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> BenchResult<Vec<u8>> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = r.status();
        let body = r.bytes().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!(
                "{method} {path}: {status} {}",
                String::from_utf8_lossy(&body)
            ));
        }
        Ok(body.to_vec())
    }

    async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> BenchResult<serde_json::Value> {
        let bytes = self.call(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{path}: {e}"))
    }

    async fn get_json(&self, path: &str) -> BenchResult<serde_json::Value> {
        self.json(reqwest::Method::GET, path, None).await
    }

    /// A provider for client `cc-basic`, with `concurrency` background
    /// renewals at once and no rate limit; returns its id.
    async fn cc_provider(&self, auth: &AuthServer, concurrency: u64) -> BenchResult<String> {
        let p = self
            .json(
                reqwest::Method::POST,
                "/api/v1/providers",
                Some(auth.provider("bench-cc", "cc-basic")?),
            )
            .await?;
        let id = p["id"].as_str().ok_or("no provider id")?.to_owned();
        let p = self
            .json(
                reqwest::Method::PATCH,
                &format!("/api/v1/providers/{id}"),
                Some(json!({"refresh_concurrency": concurrency, "refresh_rate_per_minute": 0})),
            )
            .await?;
        if p["refresh_concurrency"] != concurrency || p["refresh_rate_per_minute"] != 0 {
            return Err(format!("the provider's limits were not set: {p}"));
        }
        Ok(id)
    }

    /// A Client Credentials token, requested; returns its id.
    async fn cc_token(&self, provider: &str, name: &str) -> BenchResult<String> {
        let t = self
            .json(
                reqwest::Method::POST,
                "/api/v1/tokens",
                Some(json!({"name": name, "provider_id": provider, "flow": "client_credentials"})),
            )
            .await?;
        if t["status"] != "active" {
            return Err(format!("the token is not active: {t}"));
        }
        Ok(t["id"].as_str().ok_or("no token id")?.to_owned())
    }
}

/// A router served on the current runtime.
struct ServedHere {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

async fn serve_here(router: Router) -> BenchResult<ServedHere> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let task = tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, service).await {
            eprintln!("bench: server error: {e}");
        }
    });
    Ok(ServedHere { addr, task })
}

/// The test authorization server (end2end/authserver) on loopback, killed
/// on drop (and stopping by itself when this process dies: it watches its
/// standard input).
struct AuthServer {
    issuer: String,
    info: serde_json::Value,
    child: Child,
    _stdin: ChildStdin,
}

impl AuthServer {
    fn start() -> BenchResult<Self> {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../end2end/authserver/server.js"
        );
        let mut child = Command::new("node")
            .arg(script)
            .args([
                "--port",
                "0",
                "--redirect-uri",
                "http://127.0.0.1:3000/oauth/callback",
                "--access-token-ttl",
                "3600",
                "--max-lifetime-seconds",
                "7200",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start node (./dev setup installs it): {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("the authorization server did not start within 30 s".into());
            }
        };
        let Some(ready) = line.strip_prefix("AUTHSERVER_READY ") else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the authorization server did not start: {line:?}"));
        };
        let info: serde_json::Value =
            serde_json::from_str(ready.trim()).map_err(|e| e.to_string())?;
        Ok(Self {
            issuer: info["issuer"].as_str().ok_or("no issuer")?.to_owned(),
            info,
            child,
            _stdin: stdin,
        })
    }

    /// CPU-seconds the provider process has used so far.
    fn cpu_seconds(&self) -> BenchResult<f64> {
        cpu_seconds(&self.child.id().to_string())
    }

    fn endpoint(&self, name: &str) -> BenchResult<String> {
        self.info["endpoints"][name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no {name} endpoint"))
    }

    async fn admin(&self, method: reqwest::Method, path: &str) -> BenchResult<serde_json::Value> {
        let r = http_client()?
            .request(method, format!("{}/__admin{path}", self.issuer))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = r.status();
        let text = r.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("authserver admin {path}: {status} {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    async fn reset_stats(&self) -> BenchResult {
        self.admin(reqwest::Method::POST, "/stats/reset")
            .await
            .map(drop)
    }

    async fn client_credentials_grants(&self) -> BenchResult<u64> {
        let stats = self.admin(reqwest::Method::GET, "/stats").await?;
        Ok(stats["providerGrantTypes"]["client_credentials"]
            .as_u64()
            .unwrap_or(0))
    }

    /// The provider JSON for a client of this server.
    fn provider(&self, name: &str, client_id: &str) -> BenchResult<serde_json::Value> {
        Ok(json!({
            "name": name,
            "issuer": self.issuer,
            "authorization_endpoint": self.endpoint("authorization")?,
            "token_endpoint": self.endpoint("token")?,
            "revocation_endpoint": self.endpoint("revocation")?,
            "jwks_uri": self.endpoint("jwks")?,
            "client_id": client_id,
            "client_secret": self.info["clientSecrets"][client_id],
            "client_auth_method": "client_secret_basic",
        }))
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
