//! Where the refresh runs execute: the provider on the first CPU, this
//! process (Quiver, and the provider-alone load generator) on the others,
//! with `taskset` (`BENCH_PIN`).

use std::process::Command;
use std::time::Duration;

use crate::harness::BenchResult;

/// Pins the provider (process `provider`, all its threads) to the first
/// CPU and this process (all its threads, and so those it starts later) to
/// the others; says where each runs.
pub(crate) fn pin_apart(provider: u32) -> BenchResult<String> {
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
pub(crate) fn cpu_list(first: usize) -> String {
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
pub(crate) fn pin(pid: u32, cpus: &str) -> BenchResult {
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
