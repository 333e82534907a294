//! Who is calling: a session cookie or an API key, resolved once per
//! request by middleware and read by every handler and server function.
//! Access rules are checked on the server; the UI only mirrors them.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::middleware::Next;
use axum::response::Response;

use crate::account::Role;
use crate::account::api_keys::{ApiKey, ApiKeys};
use crate::account::rate_limit::LoginLimiter;
use crate::account::sessions::Sessions;
use crate::account::users::{User, Users};
use crate::audit::{Actor, Audit};

/// The session cookie's name on an http instance.
pub const SESSION_COOKIE: &str = "quiver_session";

/// The session cookie's name on an https instance. Browsers accept a
/// `__Host-` cookie only when it is `Secure`, has `Path=/` and no
/// `Domain`, and only from a secure origin: no other host (a sibling
/// subdomain) and no plain-http page can set or overwrite it.
pub const SECURE_SESSION_COOKIE: &str = "__Host-quiver_session";

/// The session cookie's name: `__Host-quiver_session` when cookies are
/// `Secure` (the public URL is https), else `quiver_session`.
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

/// Everything about accounts that handlers need.
#[derive(Clone)]
pub struct Accounts {
    /// Users.
    pub users: Users,
    /// Sessions.
    pub sessions: Sessions,
    /// API keys.
    pub api_keys: ApiKeys,
    /// Login rate limits.
    pub limiter: Arc<LoginLimiter>,
    /// The audit log.
    pub audit: Audit,
    /// Whether cookies get `Secure` and the `__Host-` name (the public URL
    /// is https).
    pub secure_cookies: bool,
    /// Places for password checks at once (about one per CPU).
    pub hashing: Arc<tokio::sync::Semaphore>,
    /// Proxies whose word about the client's address is believed.
    pub trusted_proxies: crate::client_addr::TrustedProxies,
}

/// Longest a login waits for a place to check its password; then 503.
pub const HASH_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Password checks at once: one per CPU.
pub fn hashing_places() -> Arc<tokio::sync::Semaphore> {
    let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    Arc::new(tokio::sync::Semaphore::new(cpus))
}

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A session cookie; the hash identifies the session.
    Session {
        /// Session id hash.
        id_hash: String,
    },
    /// An API key (its record, shared with the verified-key cache).
    ApiKey(Arc<ApiKey>),
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user (for an API key, its owner; shared with the verified-key
    /// cache, so that a program's request copies nothing).
    pub user: Arc<User>,
    /// Session or API key.
    pub via: Via,
}

impl Caller {
    /// The audit actor.
    pub fn actor(&self) -> Actor {
        match &self.via {
            Via::Session { .. } => Actor::User {
                id: self.user.id.clone(),
                email: self.user.email.clone(),
            },
            Via::ApiKey(key) => Actor::ApiKey {
                id: key.id.clone(),
                label: format!("{} ({})", key.name, self.user.email),
            },
        }
    }

    /// Whether the caller is an admin.
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }
}

/// What the middleware learnt about a request.
#[derive(Debug, Clone, Default)]
pub struct RequestIdentity {
    /// The caller, when the credentials were valid.
    pub caller: Option<Caller>,
    /// The client's address.
    pub client_addr: Option<String>,
    /// Whether credentials were presented but refused.
    pub rejected_credentials: bool,
}

/// The value of the cookie `name` in a request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_owned())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Resolves the caller of a request.
pub async fn identify(
    accounts: &Accounts,
    headers: &HeaderMap,
    client_addr: Option<String>,
) -> RequestIdentity {
    let mut identity = RequestIdentity {
        caller: None,
        client_addr,
        rejected_credentials: false,
    };
    if let Some(key) = bearer(headers) {
        match accounts.api_keys.authenticate(key).await {
            Ok(Some((key, user))) => {
                identity.caller = Some(Caller {
                    user,
                    via: Via::ApiKey(key),
                });
            }
            Ok(None) => identity.rejected_credentials = true,
            Err(e) => {
                tracing::error!(error = %e, "API key lookup failed");
                identity.rejected_credentials = true;
            }
        }
        return identity;
    }
    if let Some(token) = accounts.session_cookie(headers) {
        match accounts.sessions.resolve(&token).await {
            Ok(Some(live)) => {
                identity.caller = Some(Caller {
                    user: Arc::new(live.user),
                    via: Via::Session {
                        id_hash: live.id_hash,
                    },
                });
            }
            Ok(None) => identity.rejected_credentials = true,
            Err(e) => {
                tracing::error!(error = %e, "session lookup failed");
                identity.rejected_credentials = true;
            }
        }
    }
    identity
}

/// Who sent `request` and from where: the client address (through the
/// trusted proxies) and the caller its credentials name.
///
/// Not an `async fn`: the future borrows the headers only, so that it is
/// `Send` while the request (whose body is not `Sync`) stays with the caller.
pub fn identify_sender<'a>(
    accounts: &'a Accounts,
    request: &'a Request,
) -> impl Future<Output = RequestIdentity> + Send + 'a {
    let client_addr =
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| {
                accounts
                    .trusted_proxies
                    .client(addr.ip(), request.headers())
                    .to_string()
            });
    identify(accounts, request.headers(), client_addr)
}

/// Middleware: puts a [`RequestIdentity`] into the request's extensions.
pub async fn identify_request(
    State(accounts): State<std::sync::Arc<Accounts>>,
    mut request: Request,
    next: Next,
) -> Response {
    let identity = identify_sender(&accounts, &request).await;
    request.extensions_mut().insert(identity);
    next.run(request).await
}

/// The `Set-Cookie` value that stores a session id: `Secure` and named
/// `__Host-quiver_session` when `secure`, never a `Domain`.
pub fn session_set_cookie(token: &str, secure: bool, max_age_seconds: i64) -> String {
    format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_seconds}{}",
        session_cookie_name(secure),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that clears the session cookie.
pub fn session_clear_cookie(secure: bool) -> String {
    session_set_cookie("", secure, 0)
}

/// Why a login was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Too many failures; try again after this many seconds.
    #[error("too many failed logins; try again in {0} seconds")]
    RateLimited(u64),
    /// Wrong email or password, or a disabled account (never says which).
    #[error("the email or password is not correct")]
    BadCredentials,
    /// Too many passwords are being checked at once; try again shortly.
    #[error("the server is busy checking other sign-ins; try again in a moment")]
    Busy,
    /// The database failed.
    #[error("login failed: {0}")]
    Internal(String),
}

impl From<LoginError> for app::error::AppError {
    fn from(e: LoginError) -> Self {
        use app::error::AppError;
        match e {
            LoginError::RateLimited(seconds) => AppError::RateLimited {
                retry_after_seconds: seconds,
            },
            LoginError::BadCredentials => AppError::Validation {
                field: None,
                message: app::auth::BAD_CREDENTIALS.into(),
            },
            LoginError::Busy => AppError::Unavailable(LoginError::Busy.to_string()),
            LoginError::Internal(message) => {
                tracing::error!(%message, "login failed");
                AppError::Internal
            }
        }
    }
}

impl Accounts {
    /// Checks the password and starts a new session. A session id the
    /// client already held is ended, so the id changes at every login.
    pub async fn login(
        &self,
        email: &str,
        password: crate::secret::SecretString,
        previous_session: Option<String>,
        client_addr: Option<String>,
    ) -> Result<(User, crate::secret::SecretString), LoginError> {
        use crate::account::password;
        use crate::audit::{AuditEvent, Outcome};

        let claimed = email.trim().to_lowercase();
        let audit = |outcome, detail: &str| {
            AuditEvent::new(
                Actor::Anonymous {
                    claimed: Some(claimed.chars().take(254).collect()),
                },
                "login",
                "session",
                outcome,
            )
            .detail(detail)
            .from_addr(client_addr.clone())
        };
        // Counted before the password is checked: however many guesses
        // arrive at once, at most the limit of them are ever verified.
        let attempt = match self.limiter.attempt(&claimed, client_addr.as_deref()) {
            Ok(attempt) => attempt,
            Err(wait) => {
                let _ = self
                    .audit
                    .record(audit(Outcome::Denied, "rate limited"))
                    .await;
                return Err(LoginError::RateLimited(wait));
            }
        };
        let found = self
            .users
            .find_by_email_with_hash(&claimed)
            .await
            .map_err(|e| LoginError::Internal(e.to_string()))?;
        // Argon2 is deliberately slow and memory-hungry: a few at a time,
        // off the async workers, so that a flood of logins cannot starve
        // the rest of the server.
        let Ok(slot) = tokio::time::timeout(HASH_WAIT, self.hashing.clone().acquire_owned()).await
        else {
            return Err(LoginError::Busy);
        };
        let verified = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            match found {
                Some((user, hash)) => password::verify(&password, &hash).then_some(user),
                None => {
                    password::verify_dummy(&password);
                    None
                }
            }
        })
        .await
        .map_err(|e| LoginError::Internal(e.to_string()))?;
        let user = match verified {
            Some(user) if !user.disabled => user,
            _ => {
                let _ = self
                    .audit
                    .record(audit(Outcome::Failure, "bad credentials"))
                    .await;
                return Err(LoginError::BadCredentials);
            }
        };
        self.limiter.succeeded(attempt);
        if let Some(previous) = previous_session {
            let _ = self
                .sessions
                .end(&crate::account::sessions::hash_token(&previous))
                .await;
        }
        let token = self
            .sessions
            .start(&user.id, client_addr.clone())
            .await
            .map_err(|e| LoginError::Internal(e.to_string()))?;
        let _ = self
            .audit
            .record(
                AuditEvent::new(
                    Actor::User {
                        id: user.id.clone(),
                        email: user.email.clone(),
                    },
                    "login",
                    "session",
                    Outcome::Success,
                )
                .object(user.id.clone())
                .from_addr(client_addr),
            )
            .await;
        Ok((user, token))
    }

    /// Ends the caller's session (an API key has none to end).
    pub async fn logout(&self, caller: &Caller, client_addr: Option<String>) {
        use crate::audit::{AuditEvent, Outcome};
        if let Via::Session { id_hash } = &caller.via
            && let Err(e) = self.sessions.end(id_hash).await
        {
            tracing::error!(error = %e, "could not end a session");
        }
        let _ = self
            .audit
            .record(
                AuditEvent::new(caller.actor(), "logout", "session", Outcome::Success)
                    .object(caller.user.id.clone())
                    .from_addr(client_addr),
            )
            .await;
    }

    /// The session id the request's cookie carries, under this instance's
    /// cookie name only (an https instance ignores `quiver_session`, which
    /// any host could have set).
    pub fn session_cookie(&self, headers: &HeaderMap) -> Option<String> {
        cookie(headers, session_cookie_name(self.secure_cookies))
    }

    /// The `Set-Cookie` for a new session.
    pub fn set_cookie(&self, token: &crate::secret::SecretString) -> String {
        session_set_cookie(
            token.expose(),
            self.secure_cookies,
            self.sessions.policy().absolute.num_seconds(),
        )
    }

    /// The `Set-Cookie` that clears the session.
    pub fn clear_cookie(&self) -> String {
        session_clear_cookie(self.secure_cookies)
    }
}
