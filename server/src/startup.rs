//! Opening an instance: data folder, master key, database, migrations and
//! the master key check, in that order, each failure with a clear message.

use crate::db::writes::Writes;
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::account::api_keys::ApiKeys;
use crate::account::rate_limit::LoginLimiter;
use crate::account::sessions::{SessionPolicy, Sessions};
use crate::account::users::Users;
use crate::audit::Audit;
use crate::auth::Accounts;
use crate::cache::Changes;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::db::{self, DbError};
use crate::events::Events;
use crate::key_check::{self, KeyCheckError};
use crate::master_key::{self, KeyOrigin, LoadKeyError};
use crate::providers::{ProviderSettings, Providers};
use crate::schedule::Scheduler;
use crate::seal::Sealer;
use crate::tokens::Tokens;
use crate::tokens::access::FreshTokens;
use crate::tokens::engine::{TokenEngine, TokenSettings};
use crate::transfer::{Transfer, TransferSettings};

/// Why the instance could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data folder cannot be created.
    #[error("invalid setting QUIVER_DATA_DIR: cannot create {path}: {source}")]
    DataDir {
        /// The folder.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The master key cannot be obtained.
    #[error(transparent)]
    Key(#[from] LoadKeyError),
    /// The database cannot be used.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The master key is not the database's.
    #[error(transparent)]
    KeyCheck(#[from] KeyCheckError),
    /// Another start-up problem.
    #[error("{0}")]
    Other(String),
}

/// An opened instance: what every service needs.
#[derive(Clone)]
pub struct Instance {
    /// The change epoch behind the API key and access-token caches.
    pub changes: Arc<Changes>,
    /// The validated settings.
    pub config: Arc<Config>,
    /// The database pool.
    pub db: DatabaseConnection,
    /// Seals and opens secret columns.
    pub sealer: Arc<Sealer>,
    /// The clock every expiry is measured with.
    pub clock: SharedClock,
    /// Users, sessions, API keys, login limits and the audit log.
    pub accounts: Accounts,
    /// OAuth providers.
    pub providers: Providers,
    /// OAuth tokens and their lifecycle.
    pub tokens: TokenEngine,
    /// Export and import of providers and tokens.
    pub transfer: Transfer,
}

/// What export and import need of the settings.
fn transfer_settings(config: &Config) -> TransferSettings {
    TransferSettings {
        public_url: config.public_url_text(),
        import_max_bytes: config.import_max_bytes,
        allow_insecure_loopback: config.allow_insecure_loopback,
        idle_refresh_interval: config.idle_refresh_interval,
    }
}

impl Instance {
    /// Starts the background work unless `QUIVER_SCHEDULER` is off; it runs
    /// until the process ends.
    pub fn start_scheduler(&self) -> Option<tokio::task::JoinHandle<()>> {
        if !self.config.scheduler {
            tracing::info!("QUIVER_SCHEDULER is off: this replica does no background work");
            return None;
        }
        let webhooks = self.webhook_deliverer();
        let scheduler = Scheduler::new(
            self.tokens.clone(),
            webhooks,
            self.config.scheduler_interval,
        );
        Some(scheduler.start())
    }

    /// The webhook deliverer, when a webhook is configured.
    pub fn webhook_deliverer(&self) -> Option<crate::events::webhook::Deliverer> {
        Some(crate::events::webhook::Deliverer::new(
            self.db.clone(),
            self.clock.clone(),
            self.config.webhook_url.clone()?,
            self.config.webhook_secret.clone()?,
            self.tokens.replica.clone(),
        ))
    }
}

/// Opens the instance described by `config`, on the system clock.
pub async fn open(config: Config) -> Result<Instance, StartError> {
    open_with_clock(config, Arc::new(SystemClock)).await
}

/// Opens the instance with a given clock (tests move a fake one).
pub async fn open_with_clock(config: Config, clock: SharedClock) -> Result<Instance, StartError> {
    crate::files::private_dir(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let (key, origin) = master_key::load(&config.master_key)?;
    if let KeyOrigin::Generated(path) = &origin {
        tracing::warn!(
            key_file = %path.display(),
            "generated a new master key in {}: back it up now and keep it apart from the \
             database; losing it loses every secret Quiver stores",
            path.display()
        );
    }
    let db = db::connect(&config.database_url, None).await?;
    db::migrate(&db).await?;
    let sealer = Sealer::new(&key);
    key_check::verify(&db, &sealer).await?;
    tracing::info!(key_id = %sealer.current_key_id(), "master key verified");
    let changes = Changes::new(&db, config.cache_ttl);
    let writes = Writes::new(&db);
    let accounts = Accounts {
        users: Users::new(db.clone(), clock.clone()),
        sessions: Sessions::new(
            db.clone(),
            clock.clone(),
            SessionPolicy {
                idle: config.session_idle_timeout,
                absolute: config.session_max_age,
            },
        ),
        api_keys: ApiKeys::new(db.clone(), clock.clone(), changes.clone()),
        limiter: Arc::new(LoginLimiter::new(clock.clone())),
        audit: Audit::new(db.clone(), writes.clone(), clock.clone(), changes.clone()),
        secure_cookies: config.is_https(),
        hashing: crate::auth::hashing_places(),
        trusted_proxies: config.trusted_proxies.clone(),
    };
    if accounts
        .users
        .count()
        .await
        .map_err(|e| StartError::Other(e.to_string()))?
        == 0
    {
        tracing::warn!(
            "no user exists yet: create the first admin with `quiver user create --email you@example.com --admin`"
        );
    }
    let outbound = crate::oauth::outbound::Outbound {
        proxy: config.outbound_proxy.clone(),
        roots: match &config.outbound_ca_file {
            Some(path) => {
                crate::oauth::outbound::Outbound::read_roots(path).map_err(|problem| {
                    StartError::Other(format!(
                        "invalid setting QUIVER_OUTBOUND_CA_FILE: {problem}"
                    ))
                })?
            }
            None => Vec::new(),
        },
    };
    let config = Arc::new(config);
    let sealer = Arc::new(sealer);
    let providers = Providers::new(
        db.clone(),
        sealer.clone(),
        clock.clone(),
        ProviderSettings {
            public_url: config.public_url_text(),
            allow_insecure_loopback: config.allow_insecure_loopback,
            outbound: outbound.clone(),
        },
        accounts.audit.clone(),
    );
    let tokens = TokenEngine {
        tokens: Tokens::new(db.clone(), writes, sealer.clone(), clock.clone()),
        providers: providers.clone(),
        audit: accounts.audit.clone(),
        settings: Arc::new(TokenSettings {
            redirect_uri: config.redirect_uri(),
            idle_refresh_interval: config.idle_refresh_interval,
            refresh_max_failures: config.refresh_max_failures,
            reauthorization_notice: config.reauthorization_notice,
        }),
        flights: Default::default(),
        replica: uuid::Uuid::new_v4().to_string(),
        events: Events::new(db.clone(), clock.clone(), config.webhook_url.is_some()),
        metrics: Arc::default(),
        http: Arc::new(crate::oauth::outbound::Clients::new(outbound)),
        fresh: Arc::new(FreshTokens::new(changes.clone())),
    };
    let transfer = Transfer::new(
        db.clone(),
        sealer.clone(),
        clock.clone(),
        transfer_settings(&config),
        accounts.audit.clone(),
        accounts.users.clone(),
    );
    Ok(Instance {
        changes,
        config,
        db,
        sealer,
        clock,
        accounts,
        providers,
        tokens,
        transfer,
    })
}
