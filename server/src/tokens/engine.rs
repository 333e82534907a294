//! The token lifecycle: create, request, refresh, reset, delete (with
//! revocation), rename and edit. Results are stored in one update; a
//! provider failure records the provider's words and never loses the
//! last good access and refresh tokens.

use std::collections::BTreeMap;
use std::sync::Arc;

use app::error::AppError;
use app::tokens::{DeleteOutcome, ResetInput, TokenError, TokenInput, TokenView};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use url::Url;

use super::renewal::{Need, Renewal, Renewed, refusal};
use super::{Flow, TokenStatus, Tokens, db_error, open_secret};
use crate::audit::{Actor, Audit, AuditEvent, Outcome};
use crate::auth::Caller;
use crate::config::Config;
use crate::db::entity::token;
use crate::events::Events;
use crate::oauth::client_auth::{ClientAuth, ClientAuthMethod};
use crate::oauth::grant::{GrantError, TokenEndpoint};
use crate::oauth::outbound::{self, OutboundError};
use crate::oauth::params;
use crate::oauth::token_response::{ProviderFault, TokenSet};
use crate::providers::{OpenedProvider, Providers, has_value, params_map};
use crate::schedule::due;
use crate::seal::SealSlot;

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
    pub flights: Arc<super::renewal::Flights>,
    /// This process's name in job leases and job runs (renewal claims
    /// name a random claim id instead).
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

/// What to send besides the grant: scope, resource, additional values.
pub(super) struct RequestValues {
    pub(super) scope: Option<String>,
    pub(super) resource: Option<String>,
    pub(super) additional: BTreeMap<String, String>,
}

/// What Refresh, Request again and Reset answer: the token as stored
/// afterwards and, when the provider refused or did not answer, the error
/// to report (the UI shows the token's stored error instead).
#[derive(Debug, Clone)]
pub struct Answer {
    /// The token.
    pub view: TokenView,
    /// Why it was not renewed, when it was not.
    pub refusal: Option<AppError>,
}

impl TokenEngine {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.tokens.clock.now()
    }

    pub(super) fn seal(&self, id: &str, column: &str, value: &str) -> String {
        self.tokens
            .sealer
            .seal(SealSlot::new("tokens", id, column), value.as_bytes())
    }

    pub(super) async fn audited<T>(
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
            Ok(self.request(caller, &created.id, addr).await?.view)
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
            flow: Set(flow),
            status: Set(TokenStatus::Failed),
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
    pub(super) fn apply_settings(
        &self,
        id: &str,
        active: &mut token::ActiveModel,
        provider: &OpenedProvider,
        flow: Flow,
        input: &TokenInput,
        creating: bool,
    ) -> Result<(), AppError> {
        let method = provider.model.client_auth_method;
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
        if method == ClientAuthMethod::PrivateKeyJwt && input.use_default_keys == Some(false) {
            return Err(invalid(
                "use_default_keys",
                "this provider uses Private Key JWT: its key signs for the provider's client only, so its tokens use the provider's keys",
            ));
        }
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
            params::check(map).map_err(|problem| match problem.key() {
                Some(key) => invalid(
                    &format!("additional_values.{}", key.trim()),
                    problem.message(),
                ),
                None => invalid("additional_values", "has an empty key"),
            })?;
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
                None => existing.flow,
            };
            let provider = self.providers.open(&existing.provider_id).await?;
            let mut active: token::ActiveModel = existing.into();
            if let Some(name) = input.name.as_deref().map(str::trim) {
                if name.is_empty() || name.chars().count() > 100 {
                    return Err(invalid("name", "must be 1 to 100 characters"));
                }
                active.name = Set(name.to_owned());
            }
            active.flow = Set(flow);
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
        let method = provider.model.client_auth_method;
        // The provider's key signs for the provider's client only: a token
        // cannot make Quiver sign an assertion for another client (rows
        // stored before this was refused are sent as the provider's client).
        let provider_keys = t.use_default_keys || method == ClientAuthMethod::PrivateKeyJwt;
        let (client_id, client_secret) = if provider_keys {
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

    pub(super) fn http_client(&self, provider: &OpenedProvider) -> reqwest::Client {
        self.http_for(&provider.model)
    }

    /// The reused HTTP client for a provider's timeouts.
    pub(super) fn http_for(&self, model: &crate::db::entity::provider::Model) -> reqwest::Client {
        let connect = u64::try_from(model.connect_timeout_ms).unwrap_or(5_000);
        let total = u64::try_from(model.timeout_ms).unwrap_or(30_000);
        self.http.get(connect, total)
    }

    pub(super) fn values(t: &token::Model) -> RequestValues {
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
    pub(super) async fn call(
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
        let client = self.http_client(provider);
        let provider_params = params_map(&provider.model.token_params);
        for (source, name) in params::stored_reserved(&provider_params, &values.additional) {
            tracing::warn!(
                token = %t.id,
                provider = %provider.model.id,
                source,
                parameter = name,
                "an extra value named like a parameter Quiver sets itself is not sent; remove it"
            );
        }
        TokenEndpoint {
            url: &url,
            client: &client,
            auth: &auth,
            provider_params: &provider_params,
            token_params: &values.additional,
            expires_in_millis: provider.model.expires_in_millis,
        }
        .request(grant, self.now())
        .await
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

    /// Stores the result of a code exchange. A new authorization replaces
    /// whatever was there, and supersedes a renewal in flight: the lease is
    /// cleared, so that renewal's store (guarded by its claim) keeps this.
    pub(crate) async fn store_exchanged(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
        set: TokenSet,
    ) -> Result<token::Model, AppError> {
        self.success_row(t, provider, set, &Self::values(t))
            .update(&self.tokens.db)
            .await
            .map_err(db_error)
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

    /// Revokes the token's refresh and access tokens at the provider.
    pub(super) async fn revoke_at_provider(
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
        let client = self.http_client(provider);
        let none = BTreeMap::new();
        let endpoint = TokenEndpoint {
            url: &url,
            client: &client,
            auth: &auth,
            provider_params: &none,
            token_params: &none,
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

    /// Requests the token anew: Client Credentials and Password obtain one;
    /// the interactive flows answer with the link to authorize.
    pub async fn request(
        &self,
        caller: &Caller,
        id: &str,
        addr: Option<String>,
    ) -> Result<Answer, AppError> {
        let t = self
            .visible_or_audit(caller, &addr, "token.request", id)
            .await?;
        let flow = t.flow;
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
            let view = self
                .audited(
                    caller.actor(),
                    &addr,
                    "token.request",
                    Some(id.to_owned()),
                    result,
                    Some("auth link issued".into()),
                )
                .await?;
            return Ok(Answer {
                view,
                refusal: None,
            });
        }
        let outcome = self
            .renew(
                &t,
                Renewal::Request,
                Need::Always,
                caller.actor(),
                addr.clone(),
                Mode::Asked,
            )
            .await;
        self.answer(caller.actor(), &addr, &t, Renewal::Request, outcome)
            .await
    }

    /// Refreshes: the refresh_token grant when there is a refresh token
    /// (Password falls back to its saved credentials when that fails with
    /// `invalid_grant`); Client Credentials and Password without one
    /// request anew. A refresh asked for while a renewal of the token is in
    /// flight answers that renewal's result.
    pub async fn refresh(
        &self,
        caller: &Caller,
        id: &str,
        addr: Option<String>,
    ) -> Result<Answer, AppError> {
        let t = self
            .visible_or_audit(caller, &addr, "token.refresh", id)
            .await?;
        let need = Need::Since {
            seen: t.last_refreshed_at,
            asked: self.now(),
        };
        let outcome = self
            .renew(
                &t,
                Renewal::Refresh,
                need,
                caller.actor(),
                addr.clone(),
                Mode::Asked,
            )
            .await;
        self.answer(caller.actor(), &addr, &t, Renewal::Refresh, outcome)
            .await
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
    ) -> Result<Answer, AppError> {
        let t = self
            .visible_or_audit(caller, &addr, "token.reset", id)
            .await?;
        self.reset_as(caller.actor(), t, overrides, addr, Mode::Asked)
            .await
    }

    /// Resets `t` for `actor` (a person, a key, or a scheduled job).
    pub(crate) async fn reset_as(
        &self,
        actor: Actor,
        t: token::Model,
        overrides: ResetInput,
        addr: Option<String>,
        mode: Mode,
    ) -> Result<Answer, AppError> {
        if t.flow != Flow::ClientCredentials {
            return self
                .audited(
                    actor,
                    &addr,
                    "token.reset",
                    Some(t.id.clone()),
                    Err(invalid(
                        "flow",
                        "Reset Client Credentials applies to Client Credentials tokens only",
                    )),
                    None,
                )
                .await;
        }
        let renewal = Renewal::Reset(overrides);
        let outcome = self
            .renew(
                &t,
                renewal.clone(),
                Need::Always,
                actor.clone(),
                addr.clone(),
                mode,
            )
            .await;
        self.answer(actor, &addr, &t, renewal, outcome).await
    }

    /// Refreshes `t` for a scheduled job: answered by any renewal stored
    /// since the job read the token.
    pub(crate) async fn refresh_for_job(
        &self,
        actor: Actor,
        t: token::Model,
        asked: chrono::DateTime<chrono::Utc>,
    ) -> Result<Answer, AppError> {
        let need = Need::Since {
            seen: t.last_refreshed_at,
            asked,
        };
        let outcome = self
            .renew(
                &t,
                Renewal::Refresh,
                need,
                actor.clone(),
                None,
                Mode::Background,
            )
            .await;
        self.answer(actor, &None, &t, Renewal::Refresh, outcome)
            .await
    }

    /// The answer to a renewal someone asked for. A renewal that called the
    /// provider was audited when it was stored; one answered by another
    /// caller's renewal is audited here, as the asker's action.
    async fn answer(
        &self,
        actor: Actor,
        addr: &Option<String>,
        t: &token::Model,
        renewal: Renewal,
        outcome: Result<(Renewed, bool), AppError>,
    ) -> Result<Answer, AppError> {
        match outcome {
            Ok((renewed, joined)) => {
                if joined || !renewed.called {
                    let detail = match &renewed.failure {
                        Some(e) => format!("failed: answered by a renewal in flight ({})", e.error),
                        None => "answered by a renewal in flight".to_owned(),
                    };
                    self.audited(
                        actor,
                        addr,
                        renewal.action(),
                        Some(t.id.clone()),
                        Ok(()),
                        Some(detail),
                    )
                    .await?;
                }
                let refusal = renewed
                    .failure
                    .as_ref()
                    .map(|e| refusal(&renewed.model, Some(e)));
                Ok(Answer {
                    view: self.tokens.view(&renewed.model, None).await?,
                    refusal,
                })
            }
            // Nothing to renew with: the token as it is, and what to do.
            Err(e @ AppError::NeedsReauthorization { .. }) => {
                let current = self.reload(&t.id).await?;
                Ok(Answer {
                    view: self.tokens.view(&current, None).await?,
                    refusal: Some(e),
                })
            }
            Err(e) => Err(e),
        }
    }
}
