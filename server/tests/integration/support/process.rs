//! Around the processes a test or a benchmark starts: a free port to give
//! one, waiting until a `quiver serve` answers `/healthz`, and its figures
//! in `/proc` (resident memory, CPU time).
//!
//! Shared by the integration tests and the benchmarks (`server/benches`
//! include this file).

use std::process::Child;
use std::time::{Duration, Instant};

/// Longest a `quiver serve` may take to answer `/healthz`.
pub const HEALTHY_DEADLINE: Duration = Duration::from_secs(60);

/// A port free on loopback now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port on loopback")
        .port()
}

/// Waits until the `quiver serve` process `child` answers `/healthz` at
/// `base` (`http://127.0.0.1:PORT`); what went wrong if it exits first or
/// takes longer than [`HEALTHY_DEADLINE`].
pub async fn wait_until_healthy(child: &mut Child, base: &str) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + HEALTHY_DEADLINE;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited early ({status})"));
        }
        let health = client
            .get(format!("{base}/healthz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        if health.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("was not healthy within {HEALTHY_DEADLINE:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A figure in KiB from `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`).
pub fn status_kib(pid: u32, field: &str) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field} in {path}"))
}

/// User plus system CPU time of process `pid` (or `self`) so far, in
/// seconds.
pub fn cpu_seconds(pid: &str) -> Result<f64, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the line, in clock ticks (100 per second).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| format!("unreadable {path}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .ok_or_else(|| format!("unreadable {path}"))
    };
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}
