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
//! [`harness::Settings::from_env`] and docs/BENCHMARKS.md. Everything runs on
//! loopback against the real test authorization server
//! (end2end/authserver, Node.js) and, for PostgreSQL, a database of its own
//! on `QUIVER_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), dropped at the end. Child
//! processes are killed when the run ends, fails or is interrupted.
//!
//! The pieces: `refresh.rs` (with `provider.rs`, the provider alone, and
//! `pinning.rs`, the CPUs each runs on), `memory.rs`, and what they share
//! in `harness.rs` (settings, output, the REST API) and `database.rs`. The
//! authorization server, the PostgreSQL database and the `/proc` readings
//! are the integration tests' own helpers, included from
//! `server/tests/integration/support/`.

mod database;
mod harness;
mod memory;
mod pinning;
mod provider;
mod refresh;

// The integration tests' helpers, one copy for both.
#[allow(dead_code)] // what only the tests call
#[path = "../../tests/integration/support/authserver.rs"]
mod authserver;
#[path = "../../tests/integration/support/pg_database.rs"]
mod pg_database;
#[allow(dead_code)] // what only the tests call
#[path = "../../tests/integration/support/process.rs"]
mod process;

use std::process::ExitCode;
use std::time::Duration;

use harness::{BenchResult, Settings};

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
            "refresh" => refresh::refresh(s).await?,
            "memory" => memory::memory(s).await?,
            _ => unreachable!("checked in main"),
        }
    }
    Ok(())
}
