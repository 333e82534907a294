//! The real `quiver` binary: start-up, configuration errors, key file,
//! health, migrate, version and graceful shutdown on SIGTERM.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::process::{self, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_quiver");

pub(crate) fn quiver(data_dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("QUIVER_DATA_DIR", data_dir)
        .env("QUIVER_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn output(mut cmd: Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(crate) struct Running {
    child: Child,
    pub(crate) base: String,
}

impl Running {
    pub(crate) fn start(mut cmd: Command, port: u16) -> Self {
        cmd.env("QUIVER_LISTEN", format!("127.0.0.1:{port}"));
        let mut child = cmd.spawn().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                panic!("quiver exited early ({status}): {err}");
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "quiver did not listen in 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, base }
    }

    pub(crate) fn stop(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "quiver ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status, err)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[test]
fn version_prints_the_package_version() {
    let mut cmd = quiver(Path::new("/nonexistent"));
    cmd.arg("version");
    let (code, out, _) = output(cmd);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), format!("quiver {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn bad_settings_stop_the_start_and_name_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value, needle) in [
        ("QUIVER_LISTEN", "localhost", "QUIVER_LISTEN"),
        (
            "QUIVER_PUBLIC_URL",
            "quiver.example.com",
            "QUIVER_PUBLIC_URL",
        ),
        ("QUIVER_MASTER_KEY", "c2hvcnQ=", "QUIVER_MASTER_KEY"),
        ("QUIVER_DATABASE_URL", "mysql://x/y", "QUIVER_DATABASE_URL"),
        (
            "QUIVER_MASTER_KEY_FILE",
            "/nonexistent/key",
            "QUIVER_MASTER_KEY_FILE",
        ),
        ("QUIVER_SITE_DIR", "/nonexistent/site", "QUIVER_SITE_DIR"),
    ] {
        let mut cmd = quiver(dir.path());
        cmd.env(var, value).arg("serve");
        let (code, _, err) = output(cmd);
        assert_ne!(code, 0, "{var}={value} started");
        assert!(err.contains(needle), "{var}={value}: {err}");
    }
    let config = dir.path().join("quiver.toml");
    std::fs::write(&config, "listen = 3000\n").unwrap();
    let mut cmd = quiver(dir.path());
    cmd.arg("--config").arg(&config);
    let (code, _, err) = output(cmd);
    assert_eq!(code, 2);
    assert!(err.contains("quiver.toml"), "{err}");
}

#[test]
fn first_start_generates_a_private_key_file_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let running = Running::start(quiver(&data), port);
    let key_file = data.join("master.key");
    assert!(key_file.is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(data.join("quiver.db").is_file());

    let client = reqwest::blocking_get(&format!("{}/healthz", running.base));
    assert_eq!(client.0, 200, "{}", client.1);
    // A protected page leads to the login page, which says how to create
    // the first admin.
    let page = reqwest::blocking_get(&format!("{}/settings", running.base));
    assert_eq!(page.0, 200);
    assert!(page.1.contains("Sign in to Quiver"), "{}", page.1);
    assert!(
        page.1
            .contains("quiver user create --email you@example.com --admin")
    );

    let (status, err) = running.stop();
    assert!(status.success(), "exit {status}: {err}");
    assert!(err.contains("generated a new master key"), "{err}");
    assert!(err.contains(&key_file.display().to_string()), "{err}");
    assert!(err.contains("losing it loses every secret"), "{err}");
    assert!(err.contains("shutdown requested"), "{err}");
    assert!(err.contains("no user exists yet"), "{err}");

    // The second start reuses the key quietly; another key is refused.
    let running = Running::start(quiver(&data), port);
    let (status, err) = running.stop();
    assert!(status.success(), "exit {status}: {err}");
    assert!(!err.contains("generated a new master key"), "{err}");

    let mut cmd = quiver(&data);
    cmd.env(
        "QUIVER_MASTER_KEY",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    );
    let (code, _, err) = output(cmd);
    assert_ne!(code, 0);
    assert!(
        err.contains("does not match the key this database was sealed with"),
        "{err}"
    );
}

/// `quiver serve` started by a shell with this umask.
#[cfg(unix)]
fn quiver_with_umask(data_dir: &Path, umask: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" serve"))
        .arg(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("QUIVER_DATA_DIR", data_dir)
        .env("QUIVER_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `quiver serve` that must refuse to start, and returns what it
/// said; fails, instead of waiting forever, when it serves after all.
fn refused_start(mut cmd: Command) -> String {
    let port = free_port();
    cmd.env("QUIVER_LISTEN", format!("127.0.0.1:{port}"));
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            assert!(!status.success(), "quiver exited with success: {err}");
            return err;
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("quiver started instead of refusing to");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
#[test]
fn the_data_folder_and_database_files_are_private_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A umask of 0 would leave everything open to everyone.
    let running = Running::start(quiver_with_umask(&data, "000"), free_port());
    let files = ["quiver.db", "quiver.db-wal", "quiver.db-shm", "master.key"];
    let modes = |data: &Path| {
        files
            .iter()
            .map(|f| (f.to_string(), mode(&data.join(f))))
            .collect::<Vec<_>>()
    };
    let private = files
        .iter()
        .map(|f| (f.to_string(), 0o600))
        .collect::<Vec<_>>();
    assert_eq!(mode(&data), 0o700, "the data folder");
    assert_eq!(modes(&data), private);
    let (status, err) = running.stop();
    assert!(status.success(), "exit {status}: {err}");

    // A database left open (an older version, a restore) is made private
    // at the next start and the log says so; an existing data folder is
    // the operator's: a warning names the fix.
    set_mode(&data, 0o755);
    set_mode(&data.join("quiver.db"), 0o644);
    let running = Running::start(quiver_with_umask(&data, "022"), free_port());
    assert_eq!(modes(&data), private);
    assert_eq!(mode(&data), 0o755);
    let (status, err) = running.stop();
    assert!(status.success(), "exit {status}: {err}");
    let db = data.join("quiver.db").display().to_string();
    assert!(
        err.contains(&format!(
            "made {db} private to its owner: it was mode 0644, now 0600"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("`chmod 700 {}`", data.display())),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn a_master_key_file_open_to_group_or_others_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = dir.path().join("master.key");
    std::fs::write(&key, "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\n").unwrap();
    let shown = key.display();
    for open in [0o644, 0o640, 0o604] {
        set_mode(&key, open);
        let mut cmd = quiver(&data);
        cmd.env("QUIVER_MASTER_KEY_FILE", &key).arg("serve");
        let err = refused_start(cmd);
        assert!(
            err.contains(&format!(
                "invalid setting QUIVER_MASTER_KEY_FILE: the master key file {shown} is not \
                 private (mode {open:04o} lets group or others in): run `chmod 600 {shown}`"
            )),
            "{err}"
        );
    }
    // After the fix it starts.
    set_mode(&key, 0o600);
    let mut cmd = quiver(&data);
    cmd.env("QUIVER_MASTER_KEY_FILE", &key);
    let running = Running::start(cmd, free_port());
    let (status, err) = running.stop();
    assert!(status.success(), "exit {status}: {err}");

    // The data folder's generated key file too.
    let data = dir.path().join("other");
    let running = Running::start(quiver(&data), free_port());
    running.stop();
    let generated = data.join("master.key");
    set_mode(&generated, 0o644);
    let err = refused_start(quiver(&data));
    assert!(
        err.contains(&format!("`chmod 600 {}`", generated.display())),
        "{err}"
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = quiver(dir.path());
    cmd.env("QUIVER_LOG_FORMAT", "json");
    let running = Running::start(cmd, free_port());
    let (status, err) = running.stop();
    assert!(status.success(), "exit {status}: {err}");
    let lines: Vec<_> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 3, "{err}");
    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            value["level"].is_string() && value["message"].is_string(),
            "{line}"
        );
    }
}

#[test]
fn migrate_applies_the_schema_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = quiver(dir.path());
    cmd.arg("migrate");
    let (code, out, err) = output(cmd);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("14 migrations applied"), "{out}");
    assert!(out.contains("m0001_instance_settings"), "{out}");
}

/// A tiny blocking HTTP GET without another dependency at test time.
mod reqwest {
    pub fn blocking_get(url: &str) -> (u16, String) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            // As a browser asks for a page.
            let response = ::reqwest::Client::new()
                .get(url)
                .header("accept", "text/html")
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        })
    }
}

fn run_with_stdin(mut cmd: Command, stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn http(
    method: &str,
    url: &str,
    auth: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = ::reqwest::Client::new();
        let mut req = client.request(method.parse().unwrap(), url);
        if let Some(auth) = auth {
            req = req.header("authorization", format!("Bearer {auth}"));
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let response = req.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    })
}

fn login(base: &str, email: &str, password: &str) -> u16 {
    http(
        "POST",
        &format!("{base}/api/v1/session"),
        None,
        Some(serde_json::json!({"email": email, "password": password})),
    )
    .0
}

#[test]
fn user_and_api_key_commands_manage_real_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let user = |args: &[&str], stdin: &str| {
        let mut cmd = quiver(data);
        cmd.args(args);
        run_with_stdin(cmd, stdin)
    };
    // Password from standard input.
    let (code, out, err) = user(
        &["user", "create", "--email", "Admin@Example.com", "--admin"],
        "first admin password\n",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("created admin admin@example.com"), "{out}");
    assert!(!out.contains("first admin password"));
    // No password given: one is generated and printed once.
    let (code, out, _) = user(&["user", "create", "--email", "bob@example.com"], "");
    assert_eq!(code, 0);
    let generated = out
        .split("password (shown once): ")
        .nth(1)
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(generated.len(), 20);
    // The same email twice is refused.
    let (code, _, err) = user(&["user", "create", "--email", "bob@example.com"], "");
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");
    // A short password is refused with the rule.
    let (code, _, err) = user(&["user", "create", "--email", "c@example.com"], "short\n");
    assert_ne!(code, 0);
    assert!(err.contains("at least 12 characters"), "{err}");

    let (code, out, _) = user(
        &[
            "api-key",
            "create",
            "--name",
            "ci",
            "--email",
            "bob@example.com",
        ],
        "",
    );
    assert_eq!(code, 0);
    let key = out
        .split("key (shown once): ")
        .nth(1)
        .unwrap()
        .trim()
        .to_owned();

    let port = free_port();
    let running = Running::start(quiver(data), port);
    let base = running.base.clone();
    assert_eq!(
        login(&base, "admin@example.com", "first admin password"),
        200
    );
    assert_eq!(login(&base, "bob@example.com", &generated), 200);
    let me = http("GET", &format!("{base}/api/v1/session"), Some(&key), None);
    assert_eq!(me.0, 200);
    assert!(me.1.contains("bob@example.com"));

    // Reset and disable work while the server runs.
    let (code, out, _) = user(
        &["user", "reset-password", "--email", "bob@example.com"],
        "a brand new password\n",
    );
    assert_eq!(code, 0);
    assert!(out.contains("sessions ended"), "{out}");
    assert_eq!(login(&base, "bob@example.com", &generated), 422);
    assert_eq!(login(&base, "bob@example.com", "a brand new password"), 200);
    let (code, _, _) = user(&["user", "disable", "--email", "bob@example.com"], "");
    assert_eq!(code, 0);
    assert_eq!(login(&base, "bob@example.com", "a brand new password"), 422);
    // The server hears of the CLI's change through the audit log, which
    // it looks at every 250 ms (and keeps nothing longer than 1 s anyway).
    let disabled_at = Instant::now();
    while http("GET", &format!("{base}/api/v1/session"), Some(&key), None).0 != 401 {
        assert!(
            disabled_at.elapsed() < Duration::from_secs(1),
            "the disabled account's key still works after 1 s"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    let (code, _, err) = user(&["user", "disable", "--email", "nobody@example.com"], "");
    assert_ne!(code, 0);
    assert!(err.contains("no account"), "{err}");
    running.stop();

    let (code, out, _) = user(&["audit", "--tail", "50"], "");
    assert_eq!(code, 0);
    for action in [
        "user.create",
        "api_key.create",
        "login",
        "user.reset_password",
        "user.disable",
    ] {
        assert!(out.contains(action), "{action} missing from {out}");
    }
    assert!(!out.contains("first admin password") && !out.contains(&key));
}

#[test]
fn rotate_key_moves_the_database_to_a_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut cmd = quiver(&data);
    cmd.args(["user", "create", "--email", "a@example.com", "--admin"]);
    assert_eq!(run_with_stdin(cmd, "a long enough password\n").0, 0);
    let new_key = dir.path().join("new.key");
    std::fs::write(&new_key, "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\n").unwrap();
    #[cfg(unix)]
    set_mode(&new_key, 0o600);

    let mut cmd = quiver(&data);
    cmd.arg("rotate-key").arg("--new-key-file").arg(&new_key);
    let (code, out, err) = output(cmd);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("re-sealed"), "{out}");

    // The old key (the generated file) is refused now; the new one works.
    let (code, _, err) = output(quiver(&data));
    assert_ne!(code, 0);
    assert!(err.contains("does not match"), "{err}");
    let mut cmd = quiver(&data);
    cmd.env("QUIVER_MASTER_KEY_FILE", &new_key);
    let running = Running::start(cmd, free_port());
    assert_eq!(
        login(&running.base, "a@example.com", "a long enough password"),
        200
    );
    running.stop();

    // A bad new key file is named in the error.
    let bad = dir.path().join("bad.key");
    std::fs::write(&bad, "nope").unwrap();
    #[cfg(unix)]
    set_mode(&bad, 0o600);
    let mut cmd = quiver(&data);
    cmd.env("QUIVER_MASTER_KEY_FILE", &new_key)
        .arg("rotate-key")
        .arg("--new-key-file")
        .arg(&bad);
    let (code, _, err) = output(cmd);
    assert_ne!(code, 0);
    assert!(err.contains("bad.key"), "{err}");
}

/// A loopback listener that records the request line of every connection
/// and answers 404: a stand-in for a provider or for a proxy.
struct Recorder {
    url: String,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Recorder {
    fn start() -> Self {
        use std::io::{BufRead, BufReader, Write};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen, stopped) = (lines.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                seen.lock().unwrap().push(first.trim_end().to_owned());
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        Self { url, lines, stop }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

#[test]
fn provider_calls_ignore_proxy_variables_unless_quiver_outbound_proxy_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let mut cmd = quiver(data);
    cmd.args(["user", "create", "--email", "admin@example.com", "--admin"]);
    assert_eq!(run_with_stdin(cmd, "a long enough password\n").0, 0);
    let mut cmd = quiver(data);
    cmd.args([
        "api-key",
        "create",
        "--name",
        "ci",
        "--email",
        "admin@example.com",
    ]);
    let (code, out, err) = output(cmd);
    assert_eq!(code, 0, "{err}");
    let key = out
        .split("key (shown once): ")
        .nth(1)
        .unwrap()
        .trim()
        .to_owned();

    let provider = Recorder::start();
    let environment_proxy = Recorder::start();
    let outbound_proxy = Recorder::start();
    let discovery_path = "/.well-known/openid-configuration";
    for setting in [None, Some(outbound_proxy.url.as_str())] {
        let mut cmd = quiver(data);
        cmd.env("QUIVER_ALLOW_INSECURE_LOOPBACK", "true");
        for var in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            cmd.env(var, &environment_proxy.url);
        }
        if let Some(proxy) = setting {
            cmd.env("QUIVER_OUTBOUND_PROXY", proxy);
        }
        let running = Running::start(cmd, free_port());
        let (status, body) = http(
            "POST",
            &format!("{}/api/v1/providers/discover", running.base),
            Some(&key),
            Some(serde_json::json!({"issuer": provider.url})),
        );
        assert_eq!(status, 422, "{body}");
        assert!(body.contains("HTTP 404"), "{body}");
        let (_, err) = running.stop();
        assert!(!err.contains("unknown setting"), "{err}");
    }
    // Without the setting: straight to the provider, whatever the
    // environment says.
    assert_eq!(
        provider.lines(),
        [format!("GET {discovery_path} HTTP/1.1")],
        "the provider is called directly once"
    );
    assert!(
        environment_proxy.lines().is_empty(),
        "the proxy environment variables were used: {:?}",
        environment_proxy.lines()
    );
    // With it: through that proxy (a request in absolute form), and only it.
    assert_eq!(
        outbound_proxy.lines(),
        [format!("GET {}{discovery_path} HTTP/1.1", provider.url)]
    );
}

/// A figure in KiB from `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`).
fn proc_status_kib(pid: u32, field: &str) -> u64 {
    process::status_kib(pid, field).unwrap_or_else(|e| panic!("{e}"))
}

/// Posts a body of `size` bytes starting with `head` as an attacker does:
/// all of it at once, without waiting for an answer, announced with its
/// length or chunked. Returns the status the server answered with.
fn hostile_post(
    port: u16,
    path: &str,
    content_type: &str,
    head: &[u8],
    size: usize,
    chunked: bool,
) -> Result<u16, String> {
    use std::io::Write;
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let length = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {size}")
    };
    let request_head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n{length}\r\n\r\n"
    );
    let head = head.to_vec();
    let sender = std::thread::spawn(move || {
        let filler = vec![b'x'; 256 * 1024];
        let mut send = || -> std::io::Result<()> {
            writer.write_all(request_head.as_bytes())?;
            let mut sent = 0;
            while sent < size {
                let piece = if sent == 0 {
                    &head[..]
                } else {
                    &filler[..filler.len().min(size - sent)]
                };
                if chunked {
                    write!(writer, "{:x}\r\n", piece.len())?;
                }
                writer.write_all(piece)?;
                if chunked {
                    writer.write_all(b"\r\n")?;
                }
                sent += piece.len();
            }
            if chunked {
                writer.write_all(b"0\r\n\r\n")?;
            }
            Ok(())
        };
        // The server may close the connection once it has answered.
        let _ = send();
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let mut reader = &stream;
    let result = loop {
        if let Some(end) = answer.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&answer[..end]).into_owned();
            break line
                .split(' ')
                .nth(1)
                .and_then(|code| code.parse::<u16>().ok())
                .ok_or(line);
        }
        match reader.read(&mut buf) {
            Ok(0) => break Err(format!("closed without an answer after {answer:?}")),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) => break Err(format!("{e} before an answer")),
        }
    };
    let _ = stream.shutdown(std::net::Shutdown::Both);
    sender.join().unwrap();
    result
}

/// Twenty callers who have not signed in post 60 MiB each, all at once, to
/// the page's import and to the REST import, with and without announcing
/// the length, to a real `quiver serve` that imports up to 100 MiB: each
/// is refused (401, or 413 for a length over the limit) and the process's
/// resident memory grows by less than 32 MiB.
#[test]
fn twenty_parallel_unauthenticated_sixty_mebibyte_posts_leave_memory_flat() {
    const SIZE: usize = 60 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = quiver(dir.path());
    cmd.env("QUIVER_LOG", "warn")
        .env("QUIVER_IMPORT_MAX_BYTES", "100MiB")
        .arg("serve");
    let running = Running::start(cmd, port);
    let pid = running.child.id();
    let boundary = "quiver-test-boundary";
    let upload_type = format!("multipart/form-data; boundary={boundary}");
    let upload_head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"bundle\"; filename=\"b.json\"\r\n\
         Content-Type: application/json\r\n\r\n{{\"format\": \"quiver-export\", \"x\": \""
    );
    let json_head = r#"{"bundle": {"format": "quiver-export", "x": ""#;
    let targets: Vec<(&str, String, Vec<u8>)> = vec![
        (
            app::transfer::IMPORT_ENDPOINT,
            upload_type,
            upload_head.into_bytes(),
        ),
        (
            "/api/v1/import",
            "application/json".to_owned(),
            json_head.as_bytes().to_vec(),
        ),
    ];
    // Warm up: every path once, small.
    for (path, content_type, head) in &targets {
        for chunked in [false, true] {
            let status = hostile_post(port, path, content_type, head, 4096, chunked).unwrap();
            assert_eq!(status, 401, "{path}");
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    // The peak from here on (older kernels: since the start, which only
    // makes the figure larger).
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    let before = proc_status_kib(pid, "VmRSS:");
    let start = std::sync::Arc::new(std::sync::Barrier::new(20));
    let mut posts = Vec::new();
    for i in 0..20 {
        let (path, content_type, head) = targets[i % 2].clone();
        let chunked = (i / 2) % 2 == 1;
        let start = start.clone();
        posts.push(std::thread::spawn(move || {
            start.wait();
            let status = hostile_post(port, path, &content_type, &head, SIZE, chunked);
            (format!("{path} chunked={chunked}"), status)
        }));
    }
    let answers: Vec<_> = posts.into_iter().map(|p| p.join().unwrap()).collect();
    let peak = proc_status_kib(pid, "VmHWM:");
    let after = proc_status_kib(pid, "VmRSS:");
    eprintln!(
        "resident memory: {before} KiB before, peak {peak} KiB during, {after} KiB after 20 x 60 MiB posts"
    );
    for (what, status) in &answers {
        assert!(matches!(status, Ok(401 | 413)), "{what}: {status:?}");
    }
    let growth = peak.saturating_sub(before);
    assert!(
        growth < 32 * 1024,
        "resident memory grew by {growth} KiB ({before} KiB before, peak {peak} KiB)"
    );
    // Still serving.
    let (status, _) = reqwest::blocking_get(&format!("{}/healthz", running.base));
    assert_eq!(status, 200);
}
