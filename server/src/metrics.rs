//! Prometheus metrics, served at `GET /metrics` in the text exposition
//! format: token renewals by provider, outcome and trigger with their
//! latency, tokens by status (counted at scrape time), access-token
//! requests and their latency, and scheduled job runs. Counters live in
//! memory per replica; Prometheus sums the replicas.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds (seconds) of the latency buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A latency histogram without locks.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// Escapes a label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Everything counted in this process.
#[derive(Default)]
pub struct Metrics {
    /// (provider, outcome, trigger) → renewals.
    refreshes: Mutex<BTreeMap<(String, &'static str, &'static str), u64>>,
    /// provider → renewal latency.
    refresh_latency: Mutex<BTreeMap<String, Arc<Histogram>>>,
    /// outcome → access-token requests.
    access: Mutex<BTreeMap<&'static str, u64>>,
    access_latency: Histogram,
    /// outcome → job runs.
    job_runs: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Records a renewal (`trigger`: `background` or `asked`).
    pub fn refresh(&self, provider: &str, ok: bool, trigger: &'static str, took: Duration) {
        let outcome = if ok { "success" } else { "failure" };
        *self
            .refreshes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((provider.to_owned(), outcome, trigger))
            .or_default() += 1;
        let histogram = self
            .refresh_latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(provider.to_owned())
            .or_default()
            .clone();
        histogram.observe(took);
    }

    /// Records an access-token request (`outcome`: `ok` or the error code).
    pub fn access_token(&self, outcome: &'static str, took: Duration) {
        *self
            .access
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(outcome)
            .or_default() += 1;
        self.access_latency.observe(took);
    }

    /// Records a scheduled job run (`outcome`: `success` or `failure`).
    pub fn job_run(&self, outcome: &'static str) {
        *self
            .job_runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(outcome)
            .or_default() += 1;
    }

    /// The exposition text, with `tokens` (status → count) and `attention`
    /// (reason → tokens needing attention for it) read at scrape time.
    pub fn render(
        &self,
        tokens: &BTreeMap<String, u64>,
        attention: &BTreeMap<&'static str, u64>,
    ) -> String {
        let mut out = String::new();
        out.push_str("# HELP quiver_token_refreshes_total Token renewals at the provider, by provider, outcome and trigger (background or asked).\n# TYPE quiver_token_refreshes_total counter\n");
        for ((provider, outcome, trigger), n) in self
            .refreshes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "quiver_token_refreshes_total{{provider=\"{}\",outcome=\"{outcome}\",trigger=\"{trigger}\"}} {n}",
                label(provider)
            );
        }
        out.push_str("# HELP quiver_token_refresh_duration_seconds Time to renew a token, provider call included.\n# TYPE quiver_token_refresh_duration_seconds histogram\n");
        for (provider, h) in self
            .refresh_latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            h.write(
                &mut out,
                "quiver_token_refresh_duration_seconds",
                &format!("provider=\"{}\"", label(provider)),
            );
        }
        out.push_str("# HELP quiver_tokens Tokens by status.\n# TYPE quiver_tokens gauge\n");
        for (status, n) in tokens {
            let _ = writeln!(out, "quiver_tokens{{status=\"{}\"}} {n}", label(status));
        }
        out.push_str("# HELP quiver_tokens_attention Tokens that need a person, by reason (a token may count under several).\n# TYPE quiver_tokens_attention gauge\n");
        for (reason, n) in attention {
            let _ = writeln!(
                out,
                "quiver_tokens_attention{{reason=\"{}\"}} {n}",
                label(reason)
            );
        }
        out.push_str("# HELP quiver_access_token_requests_total Requests to GET /api/v1/tokens/{id}/access-token, by outcome.\n# TYPE quiver_access_token_requests_total counter\n");
        for (outcome, n) in self.access.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(
                out,
                "quiver_access_token_requests_total{{outcome=\"{}\"}} {n}",
                label(outcome)
            );
        }
        out.push_str("# HELP quiver_access_token_request_duration_seconds Time to answer an access-token request.\n# TYPE quiver_access_token_request_duration_seconds histogram\n");
        self.access_latency
            .write(&mut out, "quiver_access_token_request_duration_seconds", "");
        out.push_str("# HELP quiver_job_runs_total Scheduled job runs, by outcome.\n# TYPE quiver_job_runs_total counter\n");
        let runs = self.job_runs.lock().unwrap_or_else(|e| e.into_inner());
        for outcome in ["success", "failure"] {
            let _ = writeln!(
                out,
                "quiver_job_runs_total{{outcome=\"{outcome}\"}} {}",
                runs.get(outcome).copied().unwrap_or(0)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_labels_escaped() {
        let m = Metrics::default();
        m.refresh(
            "Acme \"prod\"",
            true,
            "background",
            Duration::from_millis(3),
        );
        m.refresh("Acme \"prod\"", false, "asked", Duration::from_millis(700));
        m.access_token("ok", Duration::from_micros(800));
        let text = m.render(
            &BTreeMap::from([("active".to_owned(), 3)]),
            &BTreeMap::from([("unused", 2)]),
        );
        assert!(text.contains("quiver_tokens_attention{reason=\"unused\"} 2"));
        assert!(text.contains(
            "quiver_token_refreshes_total{provider=\"Acme \\\"prod\\\"\",outcome=\"success\",trigger=\"background\"} 1"
        ), "{text}");
        assert!(text.contains("quiver_token_refresh_duration_seconds_bucket{provider=\"Acme \\\"prod\\\"\",le=\"0.005\"} 1"));
        assert!(text.contains("quiver_token_refresh_duration_seconds_bucket{provider=\"Acme \\\"prod\\\"\",le=\"1\"} 2"));
        assert!(text.contains(
            "quiver_token_refresh_duration_seconds_count{provider=\"Acme \\\"prod\\\"\"} 2"
        ));
        assert!(
            text.contains("quiver_access_token_request_duration_seconds_bucket{le=\"0.001\"} 1")
        );
        assert!(text.contains("quiver_access_token_request_duration_seconds_count 1"));
        assert!(text.contains("quiver_tokens{status=\"active\"} 3"));
        assert!(text.contains("quiver_job_runs_total{outcome=\"failure\"} 0"));
    }
}
