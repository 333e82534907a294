//! Shared helpers for the integration tests.
#![allow(dead_code)]

pub mod authserver;
pub mod id_token;
pub mod pg_database;
pub mod process;
pub mod quirks;
pub mod world;

use rand::Rng;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use server::db::DatabaseUrl;

pub use pg_database::{PgDatabase, postgres_url};

/// A database of the test's own on the test PostgreSQL server, named after
/// `area` (`replicas`, `transfer`). Fails loudly when PostgreSQL is not
/// there: these tests must never pass silently without it.
pub async fn test_database(area: &str) -> PgDatabase {
    PgDatabase::create(&postgres_url(), &format!("quiver_{area}"))
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is required by the {area} tests: {e}"))
}

/// A schema of its own on the test PostgreSQL server, dropped by `drop_schema`.
pub struct PgSchema {
    pub url: DatabaseUrl,
    pub name: String,
    admin: DatabaseConnection,
}

impl PgSchema {
    /// Creates a fresh schema. Fails loudly when PostgreSQL is not there:
    /// these tests must never pass silently without it.
    pub async fn create() -> Self {
        let url = postgres_url();
        let admin = Database::connect(url.as_str()).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is required by the storage tests and is not reachable at {url}: {e}. \
                 `./dev test` starts the local cluster; or point QUIVER_TEST_POSTGRES_URL at a server."
            )
        });
        let name = format!("quiver_test_{:016x}", rand::thread_rng().r#gen::<u64>());
        admin
            .execute_unprepared(&format!("CREATE SCHEMA \"{name}\""))
            .await
            .expect("create test schema");
        Self {
            url: DatabaseUrl::parse(&url).expect("valid PostgreSQL URL"),
            name,
            admin,
        }
    }

    /// Drops the schema and everything in it.
    pub async fn drop_schema(self) {
        self.admin
            .execute_unprepared(&format!("DROP SCHEMA \"{}\" CASCADE", self.name))
            .await
            .expect("drop test schema");
    }
}

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use server::account::Role;
use server::clock::FakeClock;
use server::config::Config;
use server::http::{AppState, router};
use server::secret::SecretString;
use server::{site, startup};
use tower::ServiceExt;

/// Longest a test request may take; far above any timeout inside Quiver.
pub const REQUEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// Longest any test may run. A test still running then has hung: the
/// watchdog prints every thread's stack (with gdb, when installed) and
/// aborts, so the suite fails with evidence instead of stalling CI.
pub const TEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);

/// Aborts the process if the test that owns it outlives [`TEST_DEADLINE`].
pub struct Watchdog {
    done: Arc<std::sync::atomic::AtomicBool>,
}

impl Watchdog {
    pub fn start() -> Self {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = done.clone();
        let test = std::thread::current().name().unwrap_or("a test").to_owned();
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            while started.elapsed() < TEST_DEADLINE {
                std::thread::sleep(std::time::Duration::from_millis(500));
                if flag.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
            }
            eprintln!("WATCHDOG: {test} still runs after {TEST_DEADLINE:?}; its threads:");
            let _ = std::process::Command::new("gdb")
                .args([
                    "-p",
                    &std::process::id().to_string(),
                    "-batch",
                    "-ex",
                    "thread apply all bt 30",
                ])
                .status();
            std::process::abort();
        });
        Self { done }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The whole router in-process on a fresh SQLite file and a fake clock.
pub struct TestApp {
    pub state: AppState,
    pub clock: FakeClock,
    router: axum::Router,
    data_dir: std::path::PathBuf,
    _dir: Option<tempfile::TempDir>,
    _watchdog: Option<Watchdog>,
}

/// An answer: status, headers and body text.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    pub fn header(&self, name: &str) -> String {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The `name=value` part of the session cookie that was set.
    pub fn session_cookie(&self) -> String {
        self.header("set-cookie")
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_env(&[]).await
    }

    pub async fn with_env(extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut env = vec![(
            "QUIVER_DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        )];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let (config, _) = Config::load(None, env).unwrap();
        let options = site::leptos_options(None, config.listen);
        let clock = FakeClock::new(chrono::Utc::now());
        let instance = startup::open_with_clock(config, Arc::new(clock.clone()))
            .await
            .unwrap();
        // As `quiver serve` does: hear other replicas' changes (PostgreSQL).
        let _ = instance.changes.follow(&instance.db);
        let state = AppState {
            instance: instance.into(),
            leptos_options: options,
        };
        Self {
            router: router(state.clone()),
            state,
            clock,
            data_dir: dir.path().to_path_buf(),
            _dir: Some(dir),
            _watchdog: Some(Watchdog::start()),
        }
    }

    /// A second Quiver process on the same database and key (another
    /// replica), sharing the fake clock.
    pub async fn replica(&self, extra: &[(&str, &str)]) -> Self {
        let mut env = vec![(
            "QUIVER_DATA_DIR".to_owned(),
            self.data_dir.display().to_string(),
        )];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let (config, _) = Config::load(None, env).unwrap();
        let options = site::leptos_options(None, config.listen);
        let instance = startup::open_with_clock(config, Arc::new(self.clock.clone()))
            .await
            .unwrap();
        let _ = instance.changes.follow(&instance.db);
        let state = AppState {
            instance: instance.into(),
            leptos_options: options,
        };
        Self {
            router: router(state.clone()),
            state,
            clock: self.clock.clone(),
            data_dir: self.data_dir.clone(),
            _dir: None,
            _watchdog: None,
        }
    }

    /// Creates an account and returns its password.
    pub async fn user(&self, email: &str, role: Role) -> String {
        let password = format!("pw-{email}-long-enough");
        self.state
            .instance
            .accounts
            .users
            .create(email, &SecretString::new(password.clone()), role)
            .await
            .unwrap();
        password
    }

    /// Sends a request from 127.0.0.1 (or `addr`).
    pub async fn send(&self, mut request: Request<Body>) -> Reply {
        if request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_none()
        {
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        }
        let what = format!("{} {}", request.method(), request.uri().path());
        // A request that never answers must fail the test, not hang the suite.
        let response = tokio::time::timeout(REQUEST_DEADLINE, self.router.clone().oneshot(request))
            .await
            .unwrap_or_else(|_| panic!("{what} did not answer within {REQUEST_DEADLINE:?}"))
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 8 << 20)
            .await
            .unwrap();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// Logs in through the REST API and returns the cookie pair.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let reply = self
            .send(json_request(
                "POST",
                "/api/v1/session",
                None,
                serde_json::json!({"email": email, "password": password}),
            ))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.session_cookie()
    }

    /// Creates an API key for a logged-in cookie and returns the key.
    pub async fn api_key(&self, cookie: &str, name: &str) -> (String, String) {
        let reply = self
            .send(json_request(
                "POST",
                "/api/v1/api-keys",
                Some(Auth::Cookie(cookie.to_owned())),
                serde_json::json!({"name": name}),
            ))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let v = reply.json();
        (
            v["key"].as_str().unwrap().to_owned(),
            v["api_key"]["id"].as_str().unwrap().to_owned(),
        )
    }

    /// The path a server function is registered at.
    pub fn server_fn_path(name: &str) -> String {
        leptos::server_fn::axum::server_fn_paths()
            .map(|(path, _)| path.to_owned())
            .find(|p| {
                p.strip_prefix("/rpc/")
                    .is_some_and(|rest| rest.trim_end_matches(|c: char| c.is_ascii_digit()) == name)
            })
            .unwrap_or_else(|| panic!("no server function {name}"))
    }
}

/// How a request authenticates.
#[derive(Clone, Debug)]
pub enum Auth {
    Cookie(String),
    Bearer(String),
}

/// A request with optional credentials and no body.
pub fn request(method: &str, path: &str, auth: Option<Auth>) -> Request<Body> {
    builder(method, path, auth).body(Body::empty()).unwrap()
}

/// A JSON request.
pub fn json_request(
    method: &str,
    path: &str,
    auth: Option<Auth>,
    body: serde_json::Value,
) -> Request<Body> {
    builder(method, path, auth)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// A server-function call (form-encoded arguments), as the browser sends it.
pub fn server_fn_request(name: &str, auth: Option<Auth>, form: &str) -> Request<Body> {
    builder("POST", &TestApp::server_fn_path(name), auth)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body(Body::from(form.to_owned()))
        .unwrap()
}

/// A JSON-encoded server function call from the app's own pages.
pub fn server_fn_json(name: &str, auth: Option<Auth>, body: serde_json::Value) -> Request<Body> {
    builder("POST", &TestApp::server_fn_path(name), auth)
        .header("content-type", "application/json")
        .header("sec-fetch-site", "same-origin")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// The boundary of the uploads [`multipart`] makes.
pub const BOUNDARY: &str = "quiver-test-boundary-7MA4YWxkTrZu0gW";

/// A `multipart/form-data` body of `parts` (`name`, bytes), in order; the
/// part named `bundle` is sent as a file, as a browser sends a chosen file.
pub fn multipart(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        if *name == "bundle" {
            body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"bundle.json\"\r\n\
                     Content-Type: application/json\r\n\r\n"
                )
                .as_bytes(),
            );
        } else {
            body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            );
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// The Import/Export page's import: the upload of `parts` to the import
/// server function, as the page sends it.
pub fn import_upload(auth: Option<Auth>, parts: &[(&str, &[u8])]) -> Request<Body> {
    let body = multipart(parts);
    builder("POST", app::transfer::IMPORT_ENDPOINT, auth)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header("content-length", body.len().to_string())
        .header("sec-fetch-site", "same-origin")
        .body(Body::from(body))
        .unwrap()
}

fn builder(method: &str, path: &str, auth: Option<Auth>) -> axum::http::request::Builder {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1:3000");
    match auth {
        Some(Auth::Cookie(c)) => b = b.header("cookie", c),
        Some(Auth::Bearer(k)) => b = b.header("authorization", format!("Bearer {k}")),
        None => {}
    }
    b
}

impl TestApp {
    /// A sealed column of a token, opened (what Quiver holds for it).
    pub async fn token_secret(&self, id: &str, column: &str) -> Option<String> {
        use sea_orm::EntityTrait;
        let t = server::db::entity::token::Entity::find_by_id(id.to_owned())
            .one(&self.state.instance.db)
            .await
            .unwrap()?;
        let sealed = match column {
            "access_token" => t.access_token,
            "refresh_token" => t.refresh_token,
            "client_secret" => t.client_secret,
            "password" => t.password,
            _ => panic!("{column}"),
        }?;
        let opened = self
            .state
            .instance
            .sealer
            .open(server::seal::SealSlot::new("tokens", id, column), &sealed)
            .unwrap();
        Some(String::from_utf8(opened.expose().to_vec()).unwrap())
    }
}
