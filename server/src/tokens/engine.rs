//! The token lifecycle: create, request, refresh, reset, delete (with
//! revocation), rename and edit. Results are stored in one update; a
//! provider failure records the provider's words and never loses the
//! last good access and refresh tokens.

use std::collections::BTreeMap;
use std::sync::Arc;

use app::error::AppError;
use app::tokens::{DeleteOutcome, ResetInput, TokenError, TokenInput, TokenView};
use sea_orm::QueryTrait as _;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TryIntoModel,
};
use tokio::sync::OwnedSemaphorePermit;
use url::Url;

use super::{Flow, Tokens, db_error, open_secret, status};
use crate::audit::{Actor, Audit, AuditEvent, Outcome};
use crate::auth::Caller;
use crate::config::Config;
use crate::db::entity::token;
use crate::events::{EventKind, Events};
use crate::oauth::client_auth::{ClientAuth, ClientAuthMethod};
use crate::oauth::grant::{GrantError, TokenEndpoint};
use crate::oauth::outbound::{self, OutboundError};
use crate::oauth::token_response::{ProviderFault, TokenSet};
use crate::providers::{OpenedProvider, Providers, has_value, params_map};
use crate::schedule::due;
use crate::seal::SealSlot;
use crate::secret::SecretString;

/// Everything the token actions need.
#[derive(Clone)]
pub struct TokenEngine {
    /// Token storage and views.
    pub tokens: Tokens,
    /// Providers.
    pub providers: Providers,
    /// The audit log.
    pub audit: Audit,
    /// Settings.
    pub config: Arc<Config>,
    /// In-process single-flight locks for refreshes.
    pub flights: Arc<super::access::Flights>,
    /// This process's name in refresh leases.
    pub replica: String,
    /// Notifications and webhooks.
    pub events: Events,
    /// Counters for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// HTTP clients for providers, reused between calls.
    pub http: Arc<outbound::Clients>,
    /// Tokens served fresh moments ago.
    pub fresh: Arc<super::access::FreshTokens>,
}

/// Default lead time of background renewals.
pub const DEFAULT_LEAD_SECS: i32 = 300;

fn invalid(field: &str, message: impl Into<String>) -> AppError {
    AppError::invalid(field, message)
}

fn clean(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The provider's words, as stored on the token and shown.
pub fn token_error(e: &GrantError) -> TokenError {
    match e {
        GrantError::RetryAfter {
            fault,
            retry_after_secs,
        } => TokenError {
            retry_after_seconds: Some(*retry_after_secs),
            ..token_error(&GrantError::Provider(fault.clone()))
        },
        GrantError::Provider(ProviderFault::Refused {
            error,
            description,
            http_status,
        }) => TokenError {
            error: error.clone(),
            error_description: description.clone(),
            http_status: Some(*http_status),
            retry_after_seconds: None,
        },
        GrantError::Provider(fault @ ProviderFault::Malformed { http_status, .. }) => TokenError {
            error: fault.code().to_owned(),
            error_description: Some(fault.to_string()),
            http_status: Some(*http_status),
            retry_after_seconds: None,
        },
        GrantError::Outbound(OutboundError::Timeout(ms)) => TokenError {
            error: "timeout".into(),
            error_description: Some(format!("the provider did not answer within {ms} ms")),
            http_status: None,
            retry_after_seconds: None,
        },
        GrantError::Outbound(o) => TokenError {
            error: "unreachable".into(),
            error_description: Some(o.to_string()),
            http_status: None,
            retry_after_seconds: None,
        },
        GrantError::ClientAuth(c) => TokenError {
            error: "invalid_configuration".into(),
            error_description: Some(c.to_string()),
            http_status: None,
            retry_after_seconds: None,
        },
    }
}

/// Who asked for a renewal, which decides how a failure is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A person or a program: a failure marks the token failed at once.
    Asked,
    /// The scheduler: failures back off and mark the token failed only
    /// after several in a row.
    Background,
}

/// Whether a store may overwrite a result stored meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guard {
    /// Only if nobody stored a newer result since the token was read.
    Version,
    /// Always (a new authorization replaces whatever was there).
    None,
}

/// What to send besides the grant: scope, resource, additional values.
struct RequestValues {
    scope: Option<String>,
    resource: Option<String>,
    additional: BTreeMap<String, String>,
}

impl TokenEngine {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.tokens.clock.now()
    }

    fn seal(&self, id: &str, column: &str, value: &str) -> String {
        self.tokens
            .sealer
            .seal(SealSlot::new("tokens", id, column), value.as_bytes())
    }

    async fn audited<T>(
        &self,
        actor: Actor,
        addr: &Option<String>,
        action: &'static str,
        id: Option<String>,
        result: Result<T, AppError>,
        detail: Option<String>,
    ) -> Result<T, AppError> {
        // A call that ran but whose grant failed reports `failed …`.
        let outcome = if detail.as_deref().is_some_and(|d| d.starts_with("failed")) {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        let mut event = AuditEvent::new(actor, action, "token", outcome)
            .from_addr(addr.clone())
            .maybe_object(id);
        event.detail = detail;
        self.audit.record_result(event, result).await
    }

    /// Creates a token and, unless `request` is false, requests it at once.
    /// A provider refusal still answers with the saved token (status `failed`).
    pub async fn create(
        &self,
        caller: &Caller,
        input: TokenInput,
        addr: Option<String>,
    ) -> Result<TokenView, AppError> {
        let request_now = input.request.unwrap_or(true);
        let created = self.insert(caller, input).await;
        let id = created.as_ref().ok().map(|t| t.id.clone());
        let created = self
            .audited(caller.actor(), &addr, "token.create", id, created, None)
            .await?;
        if request_now {
            self.request(caller, &created.id, addr).await
        } else {
            self.tokens.view(&created, None).await
        }
    }

    async fn insert(&self, caller: &Caller, input: TokenInput) -> Result<token::Model, AppError> {
        let name = clean(input.name.clone()).ok_or_else(|| invalid("name", "is required"))?;
        if name.chars().count() > 100 {
            return Err(invalid("name", "must be at most 100 characters"));
        }
        let provider_id = clean(input.provider_id.clone())
            .ok_or_else(|| invalid("provider_id", "is required"))?;
        let provider = self
            .providers
            .open(&provider_id)
            .await
            .map_err(|e| match e {
                AppError::NotFound(_) => invalid("provider_id", "no provider has this id"),
                other => other,
            })?;
        let flow: Flow = clean(input.flow.clone())
            .ok_or_else(|| invalid("flow", "is required"))?
            .parse()?;
        let now = self.now();
        let id = uuid::Uuid::new_v4().to_string();
        let mut active = token::ActiveModel {
            id: Set(id.clone()),
            name: Set(name),
            owner_id: Set(caller.user.id.clone()),
            provider_id: Set(provider_id),
            flow: Set(flow.as_str().to_owned()),
            status: Set(status::FAILED.to_owned()),
            additional_values: Set("{}".into()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        self.apply_settings(&id, &mut active, &provider, flow, &input, true)?;
        let model = active.insert(&self.tokens.db).await.map_err(db_error)?;
        Ok(model)
    }

    /// Checks and applies the settings of `input` (absent keeps).
    fn apply_settings(
        &self,
        id: &str,
        active: &mut token::ActiveModel,
        provider: &OpenedProvider,
        flow: Flow,
        input: &TokenInput,
        creating: bool,
    ) -> Result<(), AppError> {
        let method = ClientAuthMethod::parse(&provider.model.client_auth_method)
            .unwrap_or(ClientAuthMethod::ClientSecretBasic);
        if method == ClientAuthMethod::PrivateKeyJwt && flow != Flow::ClientCredentials {
            return Err(invalid(
                "flow",
                "this provider uses Private Key JWT, which works only with the Client Credentials flow",
            ));
        }
        if flow.is_interactive() && provider.model.authorization_endpoint.is_none() {
            return Err(invalid(
                "flow",
                "this flow needs a browser, but the provider has no authorization endpoint",
            ));
        }
        if flow == Flow::OidcHybrid && provider.model.jwks_uri.is_none() {
            return Err(invalid(
                "flow",
                "OIDC Hybrid needs the provider's JWKS URI to check id_tokens",
            ));
        }
        if let Some(v) = input.use_default_keys {
            active.use_default_keys = Set(v);
        } else if creating {
            active.use_default_keys = Set(true);
        }
        let use_default = active.use_default_keys.clone().unwrap();
        if let Some(v) = input.client_id.clone() {
            active.client_id = Set(clean(Some(v)));
        }
        if let Some(v) = input.client_secret.clone() {
            active.client_secret = Set(clean(Some(v)).map(|s| self.seal(id, "client_secret", &s)));
        }
        let needs_secret = matches!(
            method,
            ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost
        );
        if use_default {
            if provider.model.client_id.is_none() {
                return Err(invalid(
                    "use_default_keys",
                    "the provider has no default Consumer Key (client id); enter the token's own keys",
                ));
            }
            if needs_secret && provider.client_secret.is_none() {
                return Err(invalid(
                    "use_default_keys",
                    "the provider has no default Secret Key; enter the token's own keys",
                ));
            }
        } else {
            if !has_value(&active.client_id) {
                return Err(invalid(
                    "client_id",
                    "is required when Use Default Keys is off",
                ));
            }
            if needs_secret && !has_value(&active.client_secret) {
                return Err(invalid(
                    "client_secret",
                    "is required when Use Default Keys is off",
                ));
            }
        }
        if let Some(v) = input.username.clone() {
            active.username = Set(clean(Some(v)));
        }
        if let Some(v) = input.password.clone() {
            active.password = Set((!v.is_empty()).then(|| self.seal(id, "password", &v)));
        }
        if flow == Flow::Password {
            if !has_value(&active.username) {
                return Err(invalid("username", "is required for the Password flow"));
            }
            if !has_value(&active.password) {
                return Err(invalid("password", "is required for the Password flow"));
            }
        }
        if let Some(v) = input.resource.clone() {
            let v = clean(Some(v));
            if let Some(r) = &v {
                Url::parse(r)
                    .map_err(|_| invalid("resource", "must be an absolute URI (RFC 8707)"))?;
            }
            active.resource = Set(v);
        }
        if let Some(v) = input.scope.clone() {
            active.scope = Set(clean(Some(v)));
        }
        if let Some(margin) = input.refresh_margin_seconds {
            if !(0..=86_400).contains(&margin) {
                return Err(invalid(
                    "refresh_margin_seconds",
                    "must be between 0 and 86400",
                ));
            }
            active.refresh_margin_secs = Set(margin as i32);
        } else if creating {
            active.refresh_margin_secs = Set(60);
        }
        if let Some(on) = input.auto_refresh {
            active.auto_refresh = Set(on);
        } else if creating {
            active.auto_refresh = Set(true);
        }
        if let Some(lead) = input.refresh_lead_seconds {
            if !(0..=604_800).contains(&lead) {
                return Err(invalid(
                    "refresh_lead_seconds",
                    "must be between 0 and 604800 (a week)",
                ));
            }
            active.refresh_lead_secs = Set(lead as i32);
        } else if creating {
            active.refresh_lead_secs = Set(DEFAULT_LEAD_SECS);
        }
        if creating {
            active.failure_count = Set(0);
            active.refresh_due_at = Set(None);
        }
        if let Some(map) = &input.additional_values {
            if map.keys().any(|k| k.trim().is_empty()) {
                return Err(invalid("additional_values", "has an empty key"));
            }
            active.additional_values =
                Set(serde_json::to_string(map).unwrap_or_else(|_| "{}".into()));
        }
        Ok(())
    }

    /// Renames and edits a token.
    pub async fn update(
        &self,
        caller: &Caller,
        id: &str,
        input: TokenInput,
        addr: Option<String>,
    ) -> Result<TokenView, AppError> {
        let result = async {
            let existing = self.tokens.visible(caller, id).await?;
            if input
                .provider_id
                .as_deref()
                .is_some_and(|p| p != existing.provider_id)
            {
                return Err(invalid(
                    "provider_id",
                    "cannot be changed; create a new token",
                ));
            }
            let flow: Flow = match clean(input.flow.clone()) {
                Some(f) => f.parse()?,
                None => existing.flow.parse()?,
            };
            let provider = self.providers.open(&existing.provider_id).await?;
            let mut active: token::ActiveModel = existing.into();
            if let Some(name) = input.name.as_deref().map(str::trim) {
                if name.is_empty() || name.chars().count() > 100 {
                    return Err(invalid("name", "must be 1 to 100 characters"));
                }
                active.name = Set(name.to_owned());
            }
            active.flow = Set(flow.as_str().to_owned());
            self.apply_settings(id, &mut active, &provider, flow, &input, false)?;
            active.updated_at = Set(self.now());
            let mut model = active.update(&self.tokens.db).await.map_err(db_error)?;
            // New auto-refresh settings move the next renewal, unless the
            // token is backing off after failures.
            let due = if model.failure_count == 0 || !model.auto_refresh {
                due::next_due(&model, self.config.idle_refresh_interval)
            } else {
                model.refresh_due_at
            };
            if due != model.refresh_due_at {
                let mut active: token::ActiveModel = model.into();
                active.refresh_due_at = Set(due);
                model = active.update(&self.tokens.db).await.map_err(db_error)?;
            }
            self.tokens.view(&model, None).await
        }
        .await;
        let action = if input.name.is_some()
            && input
                == (TokenInput {
                    name: input.name.clone(),
                    ..Default::default()
                }) {
            "token.rename"
        } else {
            "token.update"
        };
        self.audited(
            caller.actor(),
            &addr,
            action,
            Some(id.to_owned()),
            result,
            None,
        )
        .await
    }

    /// The client authentication for a token.
    fn client_auth(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
    ) -> Result<ClientAuth, AppError> {
        let method = ClientAuthMethod::parse(&provider.model.client_auth_method)
            .unwrap_or(ClientAuthMethod::ClientSecretBasic);
        let (client_id, client_secret) = if t.use_default_keys {
            (
                provider.model.client_id.clone().unwrap_or_default(),
                provider.client_secret.clone(),
            )
        } else {
            (
                t.client_id.clone().unwrap_or_default(),
                open_secret(
                    &self.tokens.sealer,
                    &t.id,
                    "client_secret",
                    &t.client_secret,
                )?,
            )
        };
        let audience = provider
            .model
            .assertion_audience
            .clone()
            .or_else(|| provider.model.issuer.clone())
            .unwrap_or_else(|| provider.model.token_endpoint.clone());
        Ok(ClientAuth {
            method,
            client_id,
            client_secret,
            key: provider.key.clone(),
            audience,
        })
    }

    fn http_client(&self, provider: &OpenedProvider) -> (reqwest::Client, u64) {
        let connect = u64::try_from(provider.model.connect_timeout_ms).unwrap_or(5_000);
        let total = u64::try_from(provider.model.timeout_ms).unwrap_or(30_000);
        (self.http.get(connect, total), total)
    }

    fn values(t: &token::Model) -> RequestValues {
        RequestValues {
            scope: t.scope.clone(),
            resource: t.resource.clone(),
            additional: serde_json::from_str(&t.additional_values).unwrap_or_default(),
        }
    }

    fn scope_param(provider: &OpenedProvider, scope: &str) -> String {
        scope
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(&provider.model.scope_separator)
    }

    /// Sends a grant to the token (or refresh) endpoint.
    async fn call(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
        mut grant: Vec<(String, String)>,
        values: &RequestValues,
        refresh: bool,
    ) -> Result<TokenSet, GrantError> {
        if let Some(scope) = &values.scope {
            grant.push(("scope".into(), Self::scope_param(provider, scope)));
        }
        if let Some(resource) = &values.resource {
            grant.push(("resource".into(), resource.clone()));
        }
        for (k, v) in &values.additional {
            if !grant.iter().any(|(key, _)| key == k) {
                grant.push((k.clone(), v.clone()));
            }
        }
        let auth = self.client_auth(t, provider).map_err(|e| {
            GrantError::ClientAuth(crate::oauth::client_auth::ClientAuthError::Sign(
                e.to_string(),
            ))
        })?;
        let url_text = if refresh {
            provider
                .model
                .refresh_endpoint
                .clone()
                .unwrap_or_else(|| provider.model.token_endpoint.clone())
        } else {
            provider.model.token_endpoint.clone()
        };
        let url = Url::parse(&url_text)
            .map_err(|e| GrantError::Outbound(OutboundError::Refused(e.to_string())))?;
        let (client, timeout_ms) = self.http_client(provider);
        let extra: Vec<(String, String)> = params_map(&provider.model.token_params)
            .into_iter()
            .collect();
        TokenEndpoint {
            url: &url,
            client: &client,
            timeout_ms,
            auth: &auth,
            extra: &extra,
            expires_in_millis: provider.model.expires_in_millis,
        }
        .request(grant, self.now())
        .await
    }

    /// Stores a successful response in one update.
    async fn store_success(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
        set: TokenSet,
        values: &RequestValues,
        guard: Guard,
    ) -> Result<token::Model, AppError> {
        let now = self.now();
        let lifetime = set.expires_in.or_else(|| {
            provider
                .model
                .default_lifetime_secs
                .map(chrono::Duration::seconds)
        });
        let mut active: token::ActiveModel = t.clone().into();
        active.access_token = Set(Some(self.seal(
            &t.id,
            "access_token",
            set.access_token.expose(),
        )));
        if let Some(refresh) = &set.refresh_token {
            // Rotation: the new refresh token replaces the old; when the
            // response has none, the old one is kept.
            active.refresh_token = Set(Some(self.seal(&t.id, "refresh_token", refresh.expose())));
        }
        active.token_type = Set(Some(set.token_type.clone()));
        active.expires_at = Set(lifetime.map(|l| now + l));
        active.granted_scope = Set(set.scope.clone().or_else(|| values.scope.clone()));
        active.status = Set(status::ACTIVE.to_owned());
        active.last_error = Set(None);
        active.failure_count = Set(0);
        // Completing the refresh and releasing its lease is one update.
        active.lease_owner = Set(None);
        active.lease_until = Set(None);
        active.last_refreshed_at = Set(Some(now));
        active.updated_at = Set(now);
        let mut after = t.clone();
        after.expires_at = lifetime.map(|l| now + l);
        after.last_refreshed_at = Some(now);
        after.status = status::ACTIVE.to_owned();
        after.access_token = Some(String::new());
        if set.refresh_token.is_some() {
            after.refresh_token = Some(String::new());
        }
        active.refresh_due_at = Set(due::next_due(&after, self.config.idle_refresh_interval));
        let recovered = t.status == status::FAILED && t.failure_count > 0;
        let stored = self.store_guarded(t, active, guard).await?;
        if recovered {
            self.events
                .raise(
                    EventKind::TokenRecovered,
                    Some(&t.id),
                    None,
                    format!("Token {} works again", t.name),
                    serde_json::json!({"token_name": t.name}),
                )
                .await;
        }
        Ok(stored)
    }

    /// Writes `active` unless another caller stored a newer result since
    /// `t` was read (compare-and-set on `last_refreshed_at`): a slow
    /// replica whose lease lapsed never overwrites a rotated refresh token.
    /// When it lost, answers with the stored row.
    async fn store_guarded(
        &self,
        t: &token::Model,
        active: token::ActiveModel,
        guard: Guard,
    ) -> Result<token::Model, AppError> {
        if guard == Guard::None {
            return active.update(&self.tokens.db).await.map_err(db_error);
        }
        let version = match t.last_refreshed_at {
            Some(v) => token::Column::LastRefreshedAt.eq(v),
            None => token::Column::LastRefreshedAt.is_null(),
        };
        let statement = token::Entity::update_many()
            .set(active.clone())
            .filter(token::Column::Id.eq(t.id.clone()))
            .filter(version)
            .build(self.tokens.db.get_database_backend());
        let written = self.tokens.writes.execute(statement).await;
        match written {
            Ok(r) if r.rows_affected == 1 => active.try_into_model().map_err(db_error),
            Ok(_) => {
                tracing::warn!(
                    token = %t.id,
                    "another caller stored a newer result while this one waited for the provider; keeping theirs"
                );
                token::Entity::find_by_id(t.id.clone())
                    .one(&self.tokens.db)
                    .await
                    .map_err(db_error)?
                    .ok_or_else(|| AppError::NotFound("the token".into()))
            }
            Err(e) => Err(db_error(e)),
        }
    }

    /// Records a failure; the stored access and refresh tokens stay. The
    /// next background attempt waits (exponential backoff with jitter, at
    /// least the provider's `Retry-After`). A failure asked for by someone
    /// marks the token `failed` at once; background failures do so after
    /// `QUIVER_REFRESH_MAX_FAILURES` in a row, or at once when a person
    /// must authorize again. Entering `failed` raises an event.
    async fn store_failure(
        &self,
        t: &token::Model,
        error: &GrantError,
        mode: Mode,
    ) -> Result<token::Model, AppError> {
        let now = self.now();
        let stored_error = token_error(error);
        let failures = u32::try_from(t.failure_count)
            .unwrap_or(0)
            .saturating_add(1);
        let interactive = t.flow.parse::<Flow>().is_ok_and(Flow::is_interactive);
        let needs_person = interactive && stored_error.error == "invalid_grant";
        let give_up =
            mode == Mode::Asked || needs_person || failures >= self.config.refresh_max_failures;
        let mut active: token::ActiveModel = t.clone().into();
        if give_up {
            active.status = Set(status::FAILED.to_owned());
        }
        active.last_error = Set(Some(
            serde_json::to_string(&stored_error).unwrap_or_default(),
        ));
        active.failure_count = Set(i32::try_from(failures).unwrap_or(i32::MAX));
        active.refresh_due_at = Set(if needs_person || !t.auto_refresh {
            None
        } else {
            Some(
                now + due::backoff(
                    failures,
                    stored_error.retry_after_seconds,
                    &mut rand::thread_rng(),
                ),
            )
        });
        active.lease_owner = Set(None);
        active.lease_until = Set(None);
        active.updated_at = Set(now);
        let stored = self.store_guarded(t, active, Guard::Version).await?;
        if give_up && t.status != status::FAILED && stored.status == status::FAILED {
            let (kind, message) = if needs_person {
                (
                    EventKind::ReauthorizationNeeded,
                    format!("Token {} must be authorized again", t.name),
                )
            } else {
                (
                    EventKind::TokenFailed,
                    format!("Token {} could not be renewed", t.name),
                )
            };
            self.events
                .raise(
                    kind,
                    Some(&t.id),
                    None,
                    message,
                    serde_json::json!({
                        "token_name": t.name,
                        "failures": failures,
                        "error": stored_error,
                    }),
                )
                .await;
        }
        Ok(stored)
    }

    /// Exchanges an authorization code (no scope or resource: the grant has them).
    pub(crate) async fn exchange_code(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
        grant: Vec<(String, String)>,
    ) -> Result<TokenSet, GrantError> {
        let values = RequestValues {
            scope: None,
            resource: None,
            additional: BTreeMap::new(),
        };
        self.call(t, provider, grant, &values, false).await
    }

    /// Stores the result of a code exchange.
    pub(crate) async fn store_exchanged(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
        set: TokenSet,
    ) -> Result<token::Model, AppError> {
        self.store_success(t, provider, set, &Self::values(t), Guard::None)
            .await
    }

    /// The token if the caller may see it; otherwise the refusal is audited.
    async fn visible_or_audit(
        &self,
        caller: &Caller,
        addr: &Option<String>,
        action: &'static str,
        id: &str,
    ) -> Result<token::Model, AppError> {
        match self.tokens.visible(caller, id).await {
            Ok(t) => Ok(t),
            Err(e) => {
                self.audited(
                    caller.actor(),
                    addr,
                    action,
                    Some(id.to_owned()),
                    Err(e),
                    None,
                )
                .await
            }
        }
    }

    /// Stores the outcome of a provider call: the new tokens, or the
    /// failure (keeping the last good tokens); returns the audit detail.
    async fn settle(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
        outcome: Result<TokenSet, GrantError>,
        values: &RequestValues,
        mode: Mode,
    ) -> Result<(token::Model, Option<String>), AppError> {
        match outcome {
            Ok(set) => Ok((
                self.store_success(t, provider, set, values, Guard::Version)
                    .await?,
                None,
            )),
            Err(e) => Ok((
                self.store_failure(t, &e, mode).await?,
                Some(format!("failed: {e}")),
            )),
        }
    }

    /// Obtains a token with the flow's own grant (not a refresh).
    async fn obtain(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
        values: &RequestValues,
    ) -> Result<TokenSet, GrantError> {
        let flow: Flow = t.flow.parse().map_err(|_| {
            GrantError::ClientAuth(crate::oauth::client_auth::ClientAuthError::Sign(
                "unknown flow".into(),
            ))
        })?;
        let grant = match flow {
            Flow::ClientCredentials => vec![("grant_type".into(), "client_credentials".into())],
            Flow::Password => {
                let password = open_secret(&self.tokens.sealer, &t.id, "password", &t.password)
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| SecretString::new(""));
                vec![
                    ("grant_type".into(), "password".into()),
                    ("username".into(), t.username.clone().unwrap_or_default()),
                    ("password".into(), password.expose().to_owned()),
                ]
            }
            Flow::AuthorizationCode | Flow::OidcHybrid => {
                unreachable!("interactive flows go through the auth link")
            }
        };
        self.call(t, provider, grant, values, false).await
    }

    /// Requests the token anew: Client Credentials and Password obtain one;
    /// the interactive flows answer with the link to authorize.
    pub async fn request(
        &self,
        caller: &Caller,
        id: &str,
        addr: Option<String>,
    ) -> Result<TokenView, AppError> {
        let t = self
            .visible_or_audit(caller, &addr, "token.request", id)
            .await?;
        let flow: Flow = t.flow.parse()?;
        if flow.is_interactive() {
            // Requesting an interactive token means: here is where a
            // person authorizes it.
            let link = self.make_link(caller, id).await;
            let result = match link {
                Ok(url) => {
                    let t = self.tokens.visible(caller, id).await?;
                    self.tokens.view(&t, Some(url)).await
                }
                Err(e) => Err(e),
            };
            return self
                .audited(
                    caller.actor(),
                    &addr,
                    "token.request",
                    Some(id.to_owned()),
                    result,
                    Some("auth link issued".into()),
                )
                .await;
        }
        let provider = self.providers.open(&t.provider_id).await?;
        let values = Self::values(&t);
        let outcome = self.obtain(&t, &provider, &values).await;
        let (model, detail) = self
            .settle(&t, &provider, outcome, &values, Mode::Asked)
            .await?;
        let view = self.tokens.view(&model, None).await;
        self.audited(
            caller.actor(),
            &addr,
            "token.request",
            Some(id.to_owned()),
            view,
            detail,
        )
        .await
    }

    /// Refreshes: the refresh_token grant when there is a refresh token
    /// (Password falls back to its saved credentials when that fails with
    /// `invalid_grant`); Client Credentials and Password without one
    /// request anew.
    pub async fn refresh(
        &self,
        caller: &Caller,
        id: &str,
        addr: Option<String>,
    ) -> Result<TokenView, AppError> {
        let t = self
            .visible_or_audit(caller, &addr, "token.refresh", id)
            .await?;
        self.refresh_as(caller.actor(), t, addr, Mode::Asked).await
    }

    /// Renews `t` for `actor`, counted in the metrics.
    pub(crate) async fn refresh_as(
        &self,
        actor: Actor,
        t: token::Model,
        addr: Option<String>,
        mode: Mode,
    ) -> Result<TokenView, AppError> {
        let started = std::time::Instant::now();
        let trigger = match mode {
            Mode::Asked => "asked",
            Mode::Background => "background",
        };
        // Opened once here: the renewal uses it and the metric is labelled
        // with its name.
        let provider = match self.providers.open(&t.provider_id).await {
            Ok(p) => p,
            Err(e) => {
                self.metrics
                    .refresh(&t.provider_id, false, trigger, started.elapsed());
                return Err(e);
            }
        };
        self.refresh_with(actor, t, addr, mode, &provider, None)
            .await
    }

    /// Renews `t` for `actor` with its provider already opened (the
    /// scheduler opens each provider once per pass), counted in the metrics.
    /// `slot`, a place in the provider's concurrency limit, is given back
    /// as soon as the provider has answered, before the outcome is stored.
    pub(crate) async fn refresh_with(
        &self,
        actor: Actor,
        t: token::Model,
        addr: Option<String>,
        mode: Mode,
        provider: &OpenedProvider,
        slot: Option<OwnedSemaphorePermit>,
    ) -> Result<TokenView, AppError> {
        let started = std::time::Instant::now();
        let trigger = match mode {
            Mode::Asked => "asked",
            Mode::Background => "background",
        };
        let result = self.renew(actor, t, addr, mode, provider, slot).await;
        let ok = matches!(&result, Ok(view) if view.error.is_none());
        self.metrics
            .refresh(&provider.model.name, ok, trigger, started.elapsed());
        result
    }

    /// Renews `t` for `actor` (a person, a key, or the scheduler).
    async fn renew(
        &self,
        actor: Actor,
        t: token::Model,
        addr: Option<String>,
        mode: Mode,
        provider: &OpenedProvider,
        slot: Option<OwnedSemaphorePermit>,
    ) -> Result<TokenView, AppError> {
        let id = t.id.as_str();
        let flow: Flow = t.flow.parse()?;
        let values = Self::values(&t);
        let refresh_token = open_secret(
            &self.tokens.sealer,
            &t.id,
            "refresh_token",
            &t.refresh_token,
        )?;
        let outcome = match refresh_token {
            Some(refresh) => {
                let grant = vec![
                    ("grant_type".into(), "refresh_token".into()),
                    ("refresh_token".into(), refresh.expose().to_owned()),
                ];
                // Scope is not re-sent on refresh: the grant keeps it.
                let refresh_values = RequestValues {
                    scope: None,
                    resource: values.resource.clone(),
                    additional: values.additional.clone(),
                };
                match self.call(&t, provider, grant, &refresh_values, true).await {
                    Err(GrantError::Provider(ProviderFault::Refused { ref error, .. }))
                        if error == "invalid_grant" && flow == Flow::Password =>
                    {
                        self.obtain(&t, provider, &values).await
                    }
                    other => other,
                }
            }
            None if !flow.is_interactive() => self.obtain(&t, provider, &values).await,
            None => {
                if mode == Mode::Background {
                    self.needs_person(&t).await?;
                }
                return self
                    .audited(
                        actor,
                        &addr,
                        "token.refresh",
                        Some(id.to_owned()),
                        Err(AppError::invalid(
                            "refresh_token",
                            "this token has no refresh token; authorize it again with its auth link",
                        )),
                        None,
                    )
                    .await;
            }
        };
        // The provider is done with: the next renewal may call it while
        // this one is stored.
        drop(slot);
        let (model, detail) = self.settle(&t, provider, outcome, &values, mode).await?;
        // The scheduler only reads the outcome: no names to look up.
        let view = match mode {
            Mode::Asked => self.tokens.view(&model, None).await,
            Mode::Background => {
                Ok(self
                    .tokens
                    .view_with(&model, String::new(), String::new(), None))
            }
        };
        self.audited(
            actor,
            &addr,
            "token.refresh",
            Some(id.to_owned()),
            view,
            detail,
        )
        .await
    }

    /// The scheduler found an interactive token it cannot renew: it stops
    /// trying and says that a person must authorize it again.
    async fn needs_person(&self, t: &token::Model) -> Result<(), AppError> {
        let mut active: token::ActiveModel = t.clone().into();
        active.refresh_due_at = Set(None);
        active.lease_owner = Set(None);
        active.lease_until = Set(None);
        self.store_guarded(t, active, Guard::Version).await?;
        self.events
            .raise(
                EventKind::ReauthorizationNeeded,
                Some(&t.id),
                None,
                format!("Token {} must be authorized again", t.name),
                serde_json::json!({"token_name": t.name, "reason": "no refresh token"}),
            )
            .await;
        Ok(())
    }

    /// Revokes the token's refresh and access tokens at the provider.
    async fn revoke_at_provider(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
    ) -> (String, Option<String>) {
        let Some(endpoint) = provider.model.revocation_endpoint.as_deref() else {
            return ("not_supported".into(), None);
        };
        let refresh = open_secret(
            &self.tokens.sealer,
            &t.id,
            "refresh_token",
            &t.refresh_token,
        )
        .ok()
        .flatten();
        let access = open_secret(&self.tokens.sealer, &t.id, "access_token", &t.access_token)
            .ok()
            .flatten();
        if refresh.is_none() && access.is_none() {
            return ("nothing_to_revoke".into(), None);
        }
        let Ok(url) = Url::parse(endpoint) else {
            return (
                "failed".into(),
                Some("the revocation endpoint is not a URL".into()),
            );
        };
        let auth = match self.client_auth(t, provider) {
            Ok(a) => a,
            Err(e) => return ("failed".into(), Some(e.to_string())),
        };
        let (client, timeout_ms) = self.http_client(provider);
        let endpoint = TokenEndpoint {
            url: &url,
            client: &client,
            timeout_ms,
            auth: &auth,
            extra: &[],
            expires_in_millis: false,
        };
        for (token, hint) in [(refresh, "refresh_token"), (access, "access_token")] {
            if let Some(token) = token
                && let Err(e) = endpoint
                    .revoke(&url, token.expose(), hint, self.now())
                    .await
            {
                return ("failed".into(), Some(e.to_string()));
            }
        }
        ("revoked".into(), None)
    }

    /// Deletes a token, revoking it at the provider first when the provider
    /// has a revocation endpoint; deletes it anyway when revocation fails,
    /// and says so.
    pub async fn delete(
        &self,
        caller: &Caller,
        id: &str,
        addr: Option<String>,
    ) -> Result<DeleteOutcome, AppError> {
        let result = async {
            let t = self.tokens.visible(caller, id).await?;
            let provider = self.providers.open(&t.provider_id).await?;
            let (revocation, revocation_error) = self.revoke_at_provider(&t, &provider).await;
            token::Entity::delete_by_id(t.id.clone())
                .exec(&self.tokens.db)
                .await
                .map_err(db_error)?;
            Ok(DeleteOutcome {
                id: t.id,
                revocation,
                revocation_error,
            })
        }
        .await;
        let detail = result.as_ref().ok().map(|o| {
            format!(
                "revocation: {}{}",
                o.revocation,
                o.revocation_error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )
        });
        self.audited(
            caller.actor(),
            &addr,
            "token.delete",
            Some(id.to_owned()),
            result,
            detail,
        )
        .await
    }

    /// Deletes a provider. While tokens use it this is refused unless
    /// `force` (admins only), and then each token is revoked at the provider
    /// and deleted first. Answers how many tokens went and what revocation did.
    pub async fn delete_provider(
        &self,
        caller: &Caller,
        id: &str,
        force: bool,
        addr: Option<String>,
    ) -> Result<(u64, Vec<DeleteOutcome>), AppError> {
        let mut revocations = Vec::new();
        if force && caller.is_admin() {
            for token_id in self.providers.token_ids(id).await? {
                if let Ok(outcome) = self.delete(caller, &token_id, addr.clone()).await {
                    revocations.push(outcome);
                }
            }
        }
        let rest = self.providers.delete(caller, id, force, addr).await?;
        Ok((rest + revocations.len() as u64, revocations))
    }

    /// Reset Client Credentials: revoke the current token, then issue a new
    /// one; given overrides replace the token's scope, resource and
    /// additional values, absent or `null` ones keep them.
    pub async fn reset(
        &self,
        caller: &Caller,
        id: &str,
        overrides: ResetInput,
        addr: Option<String>,
    ) -> Result<TokenView, AppError> {
        let t = self
            .visible_or_audit(caller, &addr, "token.reset", id)
            .await?;
        self.reset_as(caller.actor(), t, overrides, addr).await
    }

    /// Resets `t` for `actor` (a person, a key, or a scheduled job).
    pub(crate) async fn reset_as(
        &self,
        actor: Actor,
        t: token::Model,
        overrides: ResetInput,
        addr: Option<String>,
    ) -> Result<TokenView, AppError> {
        let id = t.id.clone();
        let id = id.as_str();
        if t.flow != Flow::ClientCredentials.as_str() {
            return self
                .audited(
                    actor,
                    &addr,
                    "token.reset",
                    Some(id.to_owned()),
                    Err(invalid(
                        "flow",
                        "Reset Client Credentials applies to Client Credentials tokens only",
                    )),
                    None,
                )
                .await;
        }
        let provider = self.providers.open(&t.provider_id).await?;
        let mut t = t;
        if overrides.scope.is_some()
            || overrides.resource.is_some()
            || overrides.additional_values.is_some()
        {
            let input = TokenInput {
                scope: overrides.scope.clone(),
                resource: overrides.resource.clone(),
                additional_values: overrides.additional_values.clone(),
                ..Default::default()
            };
            let mut active: token::ActiveModel = t.clone().into();
            self.apply_settings(
                id,
                &mut active,
                &provider,
                Flow::ClientCredentials,
                &input,
                false,
            )?;
            t = active.update(&self.tokens.db).await.map_err(db_error)?;
        }
        let (revocation, revocation_error) = self.revoke_at_provider(&t, &provider).await;
        let values = Self::values(&t);
        let outcome = self.obtain(&t, &provider, &values).await;
        let (model, failed) = self
            .settle(&t, &provider, outcome, &values, Mode::Asked)
            .await?;
        let mut detail = failed.map(|f| format!("{f}; ")).unwrap_or_default();
        detail.push_str(&format!(
            "revocation: {revocation}{}",
            revocation_error
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ));
        let view = self.tokens.view(&model, None).await;
        self.audited(
            actor,
            &addr,
            "token.reset",
            Some(id.to_owned()),
            view,
            Some(detail),
        )
        .await
    }
}
