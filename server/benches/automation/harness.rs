//! What the benchmarks share: their settings from the environment, the
//! `BENCH` lines, the admin's API key and Quiver's REST API, a router
//! served in this process, and the test authorization server started the
//! way the benchmarks want it.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use serde_json::json;
use server::account::Role;
use server::secret::SecretString;
use server::startup::Instance;

use crate::authserver::{AuthServer, CALLBACK};
use crate::database::Kind;
use crate::pg_database::postgres_url;

const ADMIN_EMAIL: &str = "bench@example.com";
const ADMIN_PASSWORD: &str = "bench admin password";
/// Longest any single setup request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) type BenchResult<T = ()> = Result<T, String>;

/// Sizes and choices, from the environment.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// `BENCH_TOKENS` (10,000): due tokens of the refresh run.
    pub(crate) tokens: u64,
    /// `BENCH_GRANTS` (= `BENCH_TOKENS`): grants of the provider-alone run.
    pub(crate) grants: u64,
    /// `BENCH_CONCURRENCY` (16): grants at once, alone and in Quiver.
    pub(crate) concurrency: u64,
    /// `BENCH_MEMORY_TOKENS` (`10000,100000`): token counts of the memory runs.
    pub(crate) memory_tokens: Vec<u64>,
    /// `BENCH_INSERT_BATCH` (10,000): rows per SQL insert.
    pub(crate) insert_batch: u64,
    /// `BENCH_DATABASES` (`sqlite`).
    pub(crate) databases: Option<Vec<Kind>>,
    /// `QUIVER_TEST_POSTGRES_URL`.
    pub(crate) postgres_url: String,
    /// `QUIVER_LOG` (`info`, as `quiver serve`): the in-process log filter.
    pub(crate) log: String,
    /// `BENCH_PIN` (1 on a machine with 2 CPUs or more, else 0): in the
    /// refresh part, the provider runs on the first CPU and this process
    /// (Quiver, and the load generator of the provider-alone runs) on the
    /// others, in every run alike, as when the provider is another machine.
    pub(crate) pin: bool,
}

fn env_u64(name: &str, default: u64) -> BenchResult<u64> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .replace(['_', ','], "")
            .parse()
            .map_err(|_| format!("{name} must be a whole number, got {v:?}")),
        Err(_) => Ok(default),
    }
}

impl Settings {
    pub(crate) fn from_env() -> BenchResult<Self> {
        let cpus = std::thread::available_parallelism().map_or(2, usize::from) as u64;
        let tokens = env_u64("BENCH_TOKENS", 10_000)?;
        let memory_tokens = match std::env::var("BENCH_MEMORY_TOKENS") {
            Ok(v) => v
                .split(',')
                .map(|n| {
                    n.trim()
                        .replace('_', "")
                        .parse::<u64>()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| format!("BENCH_MEMORY_TOKENS: {n:?} is not a count"))
                })
                .collect::<BenchResult<Vec<_>>>()?,
            Err(_) => vec![10_000, 100_000],
        };
        let databases = match std::env::var("BENCH_DATABASES") {
            Ok(v) => Some(
                v.split(',')
                    .map(|d| match d.trim() {
                        "sqlite" => Ok(Kind::Sqlite),
                        "postgres" => Ok(Kind::Postgres),
                        other => Err(format!(
                            "BENCH_DATABASES: {other:?} is neither sqlite nor postgres"
                        )),
                    })
                    .collect::<BenchResult<Vec<_>>>()?,
            ),
            Err(_) => None,
        };
        let s = Self {
            tokens: tokens.max(1),
            grants: env_u64("BENCH_GRANTS", tokens)?.max(1),
            concurrency: env_u64("BENCH_CONCURRENCY", 16)?.clamp(1, 64),
            memory_tokens,
            insert_batch: env_u64("BENCH_INSERT_BATCH", 10_000)?.max(1),
            databases,
            postgres_url: postgres_url(),
            log: std::env::var("QUIVER_LOG").unwrap_or_else(|_| "info".to_owned()),
            pin: env_u64("BENCH_PIN", u64::from(cpus >= 2))? != 0,
        };
        Ok(s)
    }

    pub(crate) fn databases(&self, default: &[Kind]) -> Vec<Kind> {
        self.databases.clone().unwrap_or_else(|| default.to_vec())
    }
}

pub(crate) fn bench(name: &str, value: &str) {
    println!("BENCH {name}: {value}");
}

pub(crate) fn http_client() -> BenchResult<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())
}

/// Creates the admin account and returns an API key for it.
pub(crate) async fn admin_key(instance: &Instance) -> BenchResult<String> {
    let user = instance
        .accounts
        .users
        .create(
            ADMIN_EMAIL,
            &SecretString::new(ADMIN_PASSWORD.to_owned()),
            Role::Admin,
        )
        .await
        .map_err(|e| e.to_string())?;
    let (_, key) = instance
        .accounts
        .api_keys
        .create(&user.id, "bench")
        .await
        .map_err(|e| e.to_string())?;
    Ok(key.expose().to_owned())
}

/// Quiver's REST API with an admin key.
pub(crate) struct Api {
    client: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    pub(crate) fn new(base: &str, key: &str) -> Self {
        Self {
            client: http_client().expect("a reqwest client"),
            base: base.to_owned(),
            key: key.to_owned(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> BenchResult<Vec<u8>> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = r.status();
        let body = r.bytes().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!(
                "{method} {path}: {status} {}",
                String::from_utf8_lossy(&body)
            ));
        }
        Ok(body.to_vec())
    }

    async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> BenchResult<serde_json::Value> {
        let bytes = self.call(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{path}: {e}"))
    }

    pub(crate) async fn get_json(&self, path: &str) -> BenchResult<serde_json::Value> {
        self.json(reqwest::Method::GET, path, None).await
    }

    /// A provider for client `cc-basic`, with `concurrency` background
    /// renewals at once and no rate limit; returns its id.
    pub(crate) async fn cc_provider(
        &self,
        auth: &AuthServer,
        concurrency: u64,
    ) -> BenchResult<String> {
        let p = self
            .json(
                reqwest::Method::POST,
                "/api/v1/providers",
                Some(auth.provider("bench-cc", "cc-basic", "client_secret_basic")),
            )
            .await?;
        let id = p["id"].as_str().ok_or("no provider id")?.to_owned();
        let p = self
            .json(
                reqwest::Method::PATCH,
                &format!("/api/v1/providers/{id}"),
                Some(json!({"refresh_concurrency": concurrency, "refresh_rate_per_minute": 0})),
            )
            .await?;
        if p["refresh_concurrency"] != concurrency || p["refresh_rate_per_minute"] != 0 {
            return Err(format!("the provider's limits were not set: {p}"));
        }
        Ok(id)
    }

    /// A Client Credentials token, requested; returns its id.
    pub(crate) async fn cc_token(&self, provider: &str, name: &str) -> BenchResult<String> {
        let t = self
            .json(
                reqwest::Method::POST,
                "/api/v1/tokens",
                Some(json!({"name": name, "provider_id": provider, "flow": "client_credentials"})),
            )
            .await?;
        if t["status"] != "active" {
            return Err(format!("the token is not active: {t}"));
        }
        Ok(t["id"].as_str().ok_or("no token id")?.to_owned())
    }
}

/// A router served on the current runtime.
pub(crate) struct ServedHere {
    pub(crate) addr: SocketAddr,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

pub(crate) async fn serve_here(router: Router) -> BenchResult<ServedHere> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let task = tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, service).await {
            eprintln!("bench: server error: {e}");
        }
    });
    Ok(ServedHere { addr, task })
}

/// The test authorization server, its access tokens living an hour.
pub(crate) fn start_provider() -> BenchResult<AuthServer> {
    AuthServer::launch(
        CALLBACK,
        &[
            "--access-token-ttl",
            "3600",
            "--max-lifetime-seconds",
            "7200",
        ],
    )
}

/// Starts the provider's count of grants again.
pub(crate) async fn reset_stats(auth: &AuthServer) -> BenchResult {
    auth.try_admin("POST", "/stats/reset", None).await.map(drop)
}

/// client_credentials grants the provider answered since its count started.
pub(crate) async fn client_credentials_grants(auth: &AuthServer) -> BenchResult<u64> {
    let stats = auth.try_admin("GET", "/stats", None).await?;
    Ok(stats["providerGrantTypes"]["client_credentials"]
        .as_u64()
        .unwrap_or(0))
}
