//! The refresh benchmark: tokens made due in SQL, renewed by the
//! scheduler's passes of a Quiver in this process, against the provider's
//! capacity measured alone right before and after.

use std::time::{Duration, Instant};

use server::config::Config;
use server::http::{AppState, router};
use server::schedule::refresh::RefreshScheduler;
use server::{site, startup};

use crate::authserver::AuthServer;
use crate::database::{BenchDb, Kind, clone_tokens, count_due, quiver_env};
use crate::harness::{
    Api, BenchResult, Settings, admin_key, bench, client_credentials_grants, reset_stats,
    serve_here, start_provider,
};
use crate::pinning::{cpu_list, pin, pin_apart};
use crate::process::cpu_seconds;
use crate::provider::{grants, provider_cpu_seconds};

/// Longest the scheduler may take to renew every due token.
const REFRESH_DEADLINE: Duration = Duration::from_secs(1800);

pub(crate) async fn refresh(s: &Settings) -> BenchResult {
    let auth = start_provider()?;
    let placement = if s.pin {
        pin_apart(auth.pid())?
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

        reset_stats(auth).await?;
        eprintln!(
            "bench: refresh on {}: renewing {} tokens",
            kind.name(),
            s.tokens
        );
        let scheduler = RefreshScheduler::new(instance.tokens.clone());
        let cpu_before = cpu_seconds("self")?;
        let provider_cpu_before = provider_cpu_seconds(auth)?;
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
        let cpu = cpu_seconds("self")? - cpu_before;
        let provider_cpu = provider_cpu_seconds(auth)? - provider_cpu_before;
        let left = count_due(&instance.db, chrono::Utc::now()).await?;
        let seen = client_credentials_grants(auth).await?;
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
                "{:.0} µs of Quiver CPU per renewal ({cpu:.2} CPU-seconds for {renewed} renewals: the scheduler, {} and the HTTP client, all in this process; {:.0} % of one core)",
                cpu * 1e6 / renewed.max(1) as f64,
                match kind {
                    Kind::Sqlite => "SQLite",
                    Kind::Postgres => "the PostgreSQL client (the server's own CPU is not counted)",
                },
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
