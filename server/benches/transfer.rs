//! Benchmark of import and export of a generated bundle of
//! 100 providers and 10,000 tokens, with secrets, through the real `quiver`
//! binary (`quiver import FILE --apply`, `quiver export --out FILE
//! --include-secrets`), on SQLite and on PostgreSQL. Prints `BENCH …`
//! lines: wall time and peak resident memory (VmHWM of the process, read
//! from /proc while it runs) of each command, and the bundle's size.
//!
//! `cargo bench -p server --bench transfer -- [sqlite] [postgres]`
//! (no argument: both). `BENCH_PROVIDERS` (100) and `BENCH_TOKENS`
//! (10,000) change the size. PostgreSQL: a database of its own on
//! `QUIVER_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), dropped at the end.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Value, json};
use server::secret::SecretString;
use server::transfer::{Bundle, BundleKey, KdfParams, ProviderSecret, SecretSlot, TokenSecret};

// The integration tests' helpers, one copy for both.
#[path = "../tests/integration/support/pg_database.rs"]
mod pg_database;
#[allow(dead_code)] // what only the tests and the other benchmark call
#[path = "../tests/integration/support/process.rs"]
mod process;

use pg_database::{PgDatabase, postgres_url};
use process::status_kib;

const PASSPHRASE: &str = "benchmark passphrase";

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A bundle of `providers` providers and `tokens` tokens spread over them,
/// every provider with a client secret and every token with an access and
/// a refresh token, sealed under [`PASSPHRASE`] (Argon2id at the default
/// export costs) and authenticated under it.
fn generate(providers: usize, tokens: usize) -> Vec<u8> {
    let (key, header) = BundleKey::create(
        &SecretString::new(PASSPHRASE.to_owned()),
        &KdfParams::generate(),
    )
    .expect("a key");
    let seal = |slot: SecretSlot<'_>, text: String| {
        serde_json::to_value(key.seal(slot, &SecretString::new(text))).expect("sealed value")
    };
    let mut rng = rand::thread_rng();
    let provider_entries: Vec<Value> = (0..providers)
        .map(|i| {
            let id = format!("p{i}");
            json!({
                "id": id,
                "name": format!("Provider {i:03}"),
                "token_endpoint": format!("https://idp{i}.example/oauth2/token"),
                "authorization_endpoint": format!("https://idp{i}.example/oauth2/authorize"),
                "revocation_endpoint": format!("https://idp{i}.example/oauth2/revoke"),
                "client_id": format!("client-{i}"),
                "client_secret": seal(SecretSlot::provider(&id, ProviderSecret::ClientSecret), format!("secret-{i}-{}", rng.r#gen::<u64>())),
            })
        })
        .collect();
    let expires = chrono::Utc::now() + chrono::Duration::hours(1);
    let token_entries: Vec<Value> = (0..tokens)
        .map(|i| {
            let id = format!("t{i}");
            json!({
                "id": id,
                "name": format!("Token {i:05}"),
                "provider_id": format!("p{}", i % providers),
                "flow": "client_credentials",
                "scope": "read write",
                "token_type": "Bearer",
                "expires_at": expires,
                "access_token": seal(SecretSlot::token(&id, TokenSecret::AccessToken), format!("at-{i}-{:032x}", rng.r#gen::<u128>())),
                "refresh_token": seal(SecretSlot::token(&id, TokenSecret::RefreshToken), format!("rt-{i}-{:032x}", rng.r#gen::<u128>())),
            })
        })
        .collect();
    let bundle = json!({
        "format": "quiver-export",
        "version": 1,
        "exported_at": chrono::Utc::now(),
        "source": {"instance": null, "quiver_version": env!("CARGO_PKG_VERSION")},
        "secrets": header,
        "providers": provider_entries,
        "tokens": token_entries,
    });
    // Authenticated as an export would be.
    let mut bundle: Bundle = serde_json::from_value(bundle).expect("a bundle");
    bundle.mac = server::transfer::mac::code_of(&key, &bundle);
    serde_json::to_vec(&bundle).expect("JSON")
}

/// Runs `cmd` to its end: its wall time and peak resident memory (KiB).
fn measure(mut cmd: Command) -> Result<(Duration, u64, String), String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start quiver: {e}"))?;
    let mut peak = 0u64;
    let status = loop {
        if let Ok(kib) = status_kib(child.id(), "VmHWM:") {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = started.elapsed();
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !status.success() {
        return Err(format!(
            "quiver failed ({status}): {}{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok((took, peak, stdout))
}

fn quiver(data_dir: &Path, database_url: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_quiver"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("QUIVER_DATA_DIR", data_dir)
        .env("QUIVER_LOG", "warn")
        .env("QUIVER_IMPORT_PASSPHRASE", PASSPHRASE)
        .env("QUIVER_EXPORT_PASSPHRASE", PASSPHRASE)
        // 100,000 tokens with secrets make a bundle of ~62 MiB, over the
        // default 50 MiB import limit; the limit is a setting, and a bench
        // of large imports raises it (`BENCH_IMPORT_MAX_BYTES`).
        .env(
            "QUIVER_IMPORT_MAX_BYTES",
            std::env::var("BENCH_IMPORT_MAX_BYTES").unwrap_or_else(|_| (256 << 20).to_string()),
        );
    if let Some(url) = database_url {
        cmd.env("QUIVER_DATABASE_URL", url);
    }
    cmd
}

fn run(
    label: &str,
    bundle: &Path,
    database_url: Option<&str>,
    sizes: (usize, usize),
) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    // The user the tokens belong to (imports need an admin to own them).
    let mut create = quiver(dir.path(), database_url);
    create.args(["user", "create", "--email", "bench@example.com", "--admin"]);
    create.stdin(Stdio::piped()).stdout(Stdio::null());
    let mut child = create.spawn().map_err(|e| e.to_string())?;
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"bench admin password\n")
            .map_err(|e| e.to_string())?;
    }
    if !child.wait().map_err(|e| e.to_string())?.success() {
        return Err("quiver user create failed".into());
    }

    let mut import = quiver(dir.path(), database_url);
    import.arg("import").arg(bundle).arg("--apply");
    let (took, peak, out) = measure(import)?;
    println!(
        "BENCH transfer {label} import: {:.2} s, peak {:.1} MiB ({} providers and {} tokens with secrets, one transaction) — {}",
        took.as_secs_f64(),
        peak as f64 / 1024.0,
        sizes.0,
        sizes.1,
        out.lines().last().unwrap_or_default().trim()
    );

    let out_file = dir.path().join("export.json");
    let mut export = quiver(dir.path(), database_url);
    export
        .arg("export")
        .arg("--out")
        .arg(&out_file)
        .arg("--include-secrets");
    let (took, peak, _) = measure(export)?;
    let size = std::fs::metadata(&out_file).map_or(0, |m| m.len());
    println!(
        "BENCH transfer {label} export: {:.2} s, peak {:.1} MiB, {:.1} MiB written (with secrets)",
        took.as_secs_f64(),
        peak as f64 / 1024.0,
        size as f64 / (1024.0 * 1024.0)
    );
    Ok(())
}

/// A PostgreSQL database of the run's own, dropped with the value.
fn postgres_database() -> Result<PgDatabase, String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(PgDatabase::create(&postgres_url(), "quiver_bench"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |part: &str| args.is_empty() || args.iter().any(|a| a == part);
    let sizes = (
        env_number("BENCH_PROVIDERS", 100).max(1),
        env_number("BENCH_TOKENS", 10_000),
    );
    let started = Instant::now();
    let bytes = generate(sizes.0, sizes.1);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let bundle = dir.path().join("bundle.json");
    std::fs::write(&bundle, &bytes).expect("write the bundle");
    println!(
        "BENCH transfer bundle: {} providers, {} tokens, {:.1} MiB, generated in {:.2} s",
        sizes.0,
        sizes.1,
        bytes.len() as f64 / (1024.0 * 1024.0),
        started.elapsed().as_secs_f64()
    );
    let mut failed = false;
    if wants("sqlite")
        && let Err(e) = run("sqlite", &bundle, None, sizes)
    {
        eprintln!("sqlite: {e}");
        failed = true;
    }
    if wants("postgres") {
        match postgres_database() {
            Ok(database) => {
                if let Err(e) = run("postgres", &bundle, Some(&database.url), sizes) {
                    eprintln!("postgres: {e}");
                    failed = true;
                }
            }
            Err(e) => {
                eprintln!("postgres: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
