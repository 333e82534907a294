//! The provider alone: client_credentials grants straight to the test
//! authorization server's token endpoint, the measure Quiver's renewals are
//! compared with.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::authserver::AuthServer;
use crate::harness::BenchResult;
use crate::process::cpu_seconds;

/// CPU-seconds the provider process has used so far.
pub(crate) fn provider_cpu_seconds(auth: &AuthServer) -> BenchResult<f64> {
    cpu_seconds(&auth.pid().to_string())
}

/// What a run of grants measured.
pub(crate) struct Grants {
    pub(crate) count: u64,
    pub(crate) per_second: f64,
    /// CPU-seconds the provider process used meanwhile.
    pub(crate) provider_cpu: f64,
}

/// `n` client_credentials grants straight to the provider's token endpoint,
/// `concurrency` at a time.
pub(crate) async fn grants(
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
    let url = auth.endpoint("token");
    let secret = auth.client_secret("cc-basic");
    let next = Arc::new(AtomicU64::new(0));
    let cpu_before = provider_cpu_seconds(auth)?;
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
        provider_cpu: provider_cpu_seconds(auth)? - cpu_before,
    })
}
