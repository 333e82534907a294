//! The memory benchmark: the resident memory of a separate `quiver serve`
//! process holding 10,000 and 100,000 tokens, listing a page and running a
//! scheduler pass.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use server::config::Config;
use server::startup;

use crate::authserver::AuthServer;
use crate::database::{BenchDb, Kind, clone_tokens, count_due, quiver_env, set_due};
use crate::harness::{
    Api, BenchResult, Settings, admin_key, bench, client_credentials_grants, reset_stats,
    start_provider,
};
use crate::process::{free_port, status_kib, wait_until_healthy};

/// Longest a memory run waits for its scheduler pass.
const PASS_DEADLINE: Duration = Duration::from_secs(300);
/// Tokens made due for the memory run's scheduler pass (one pass's batch).
const PASS_TOKENS: u64 = 500;

pub(crate) async fn memory(s: &Settings) -> BenchResult {
    let auth = start_provider()?;
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
    reset_stats(auth).await?;
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
    let renewed = client_credentials_grants(auth).await?;
    drop(quiver);
    drop(instance);
    drop(db);

    bench(
        &format!("memory.{}.{n}", kind.name()),
        &format!(
            "{:.1} MiB RSS after listing a page and a scheduler pass ({:+.1} MiB over the baseline {:.1} MiB with 1 token; anonymous {:.1} MiB against {:.1} MiB, the rest pages of files); {:.1} MiB with the {n} tokens stored ({:+.1} MiB); peak (VmHWM) {:.1} MiB. Process: `quiver serve` on {}, scheduler every 1 s; the pass renewed {renewed} of {due} due tokens; {n} rows inserted in {insert:.2} s",
            mib(after.rss),
            mib(after.rss) - mib(baseline.rss),
            mib(baseline.rss),
            mib(after.anon),
            mib(baseline.anon),
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
    /// RssAnon (heap, stacks), KiB; the rest of VmRSS is pages of files
    /// (the binary, SQLite's mapping of the database).
    anon: u64,
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
        let port = free_port();
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
        match wait_until_healthy(&mut process.child, &process.base).await {
            Ok(()) => Ok(process),
            Err(e) => Err(format!("quiver serve {e}: {}", process.log_tail())),
        }
    }

    fn memory(&self) -> BenchResult<Memory> {
        let pid = self.child.id();
        Ok(Memory {
            rss: status_kib(pid, "VmRSS:")?,
            hwm: status_kib(pid, "VmHWM:")?,
            anon: status_kib(pid, "RssAnon:")?,
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
