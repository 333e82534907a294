//! OAuth providers (admin only): validation, sealed secrets and keys,
//! discovery, the public JWKS, and the guard on deleting a provider that
//! tokens use. Every change is audited.

pub mod secrets;
pub mod templates;

use crate::db::db_error;
use std::collections::BTreeMap;
use std::sync::Arc;

use app::error::AppError;
use app::providers::{CertificateView, ProviderInput, ProviderView};
use app::tokens::{ProviderChoice, ProviderName};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
};

use crate::account::ops::{require_admin, rfc3339};
use crate::audit::{Audit, AuditEvent, Outcome};
use crate::auth::Caller;
use crate::clock::SharedClock;
use crate::db::entity::{provider, token};
use crate::oauth::certificate::Certificate;
use crate::oauth::client_auth::ClientAuthMethod;
use crate::oauth::discovery::{self, Discovered};
use crate::oauth::signing_key::{SigningAlg, SigningKey};
use crate::oauth::{outbound, params, url_policy};
use crate::seal::{SealSlot, Sealer};
use crate::secret::SecretString;

/// Default connect timeout for provider calls.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u32 = 5_000;
/// Default total timeout for provider calls.
pub const DEFAULT_TIMEOUT_MS: u32 = 30_000;
/// Default background refreshes at once against one provider (per replica).
pub const DEFAULT_REFRESH_CONCURRENCY: u32 = 4;
/// Default background refreshes started per minute (per replica).
pub const DEFAULT_REFRESH_RATE_PER_MINUTE: u32 = 600;

/// The provider service.
#[derive(Clone)]
pub struct Providers {
    db: DatabaseConnection,
    sealer: Arc<Sealer>,
    clock: SharedClock,
    settings: ProviderSettings,
    audit: Audit,
}

/// The settings the provider service works with.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// The instance's public URL, without a trailing slash: the base of
    /// each provider's JWKS URL.
    pub public_url: String,
    /// Provider URLs on loopback hosts may use plain http.
    pub allow_insecure_loopback: bool,
    /// How provider calls leave (proxy, extra trusted roots).
    pub outbound: outbound::Outbound,
}

/// Whose words a rule's message is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wording {
    /// The REST API and the pages: settings as the forms label them.
    Form,
    /// An export bundle: fields and values as the bundle spells them.
    Bundle,
    /// An export bundle whose entry meets a provider already here.
    ExistingProvider,
}

/// One setting's problem: the field it is about and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field, in the caller's words ([`Wording`]).
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl FieldError {
    /// The problem of `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl From<FieldError> for AppError {
    fn from(e: FieldError) -> Self {
        AppError::invalid(e.field, e.message)
    }
}

/// Longest provider (and token) name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A provider's (or token's) name, trimmed: 1 to [`MAX_NAME_CHARS`].
pub fn check_name(name: &str) -> Result<(), FieldError> {
    let n = name.trim().chars().count();
    if n == 0 || n > MAX_NAME_CHARS {
        return Err(FieldError::new("name", "must be 1 to 100 characters"));
    }
    Ok(())
}

/// What joins scopes: 1 to 3 characters.
pub fn check_scope_separator(sep: &str) -> Result<(), FieldError> {
    if !(1..=3).contains(&sep.chars().count()) {
        return Err(FieldError::new(
            "scope_separator",
            "must be 1 to 3 characters",
        ));
    }
    Ok(())
}

/// The lifetime assumed when a provider states none: positive.
pub fn check_default_lifetime(secs: i64, words: Wording) -> Result<(), FieldError> {
    if secs <= 0 {
        let field = match words {
            Wording::Form => "default_lifetime_seconds",
            Wording::Bundle | Wording::ExistingProvider => "default_lifetime_secs",
        };
        return Err(FieldError::new(
            field,
            "must be a positive number of seconds",
        ));
    }
    Ok(())
}

/// A connection test URL: a URL Quiver may reach (https; http on
/// loopback when allowed).
pub fn check_test_request_url(url: &str, allow_insecure_loopback: bool) -> Result<(), FieldError> {
    crate::oauth::url_policy::check_url(url, allow_insecure_loopback)
        .map(|_| ())
        .map_err(|why| FieldError::new("test_request_url", why))
}

/// A refresh token's assumed lifetime: none (0) or up to twenty years.
pub fn check_refresh_token_lifetime(secs: i64, words: Wording) -> Result<(), FieldError> {
    if !(0..=20 * 365 * 86_400).contains(&secs) {
        let field = match words {
            Wording::Form => "refresh_token_lifetime_seconds",
            Wording::Bundle | Wording::ExistingProvider => "refresh_token_lifetime_secs",
        };
        return Err(FieldError::new(
            field,
            "must be a number of seconds from 0 (not known) to twenty years",
        ));
    }
    Ok(())
}

/// Connect timeout of provider calls: 100 ms to a minute.
pub fn check_connect_timeout_ms(ms: u32) -> Result<(), FieldError> {
    if !(100..=60_000).contains(&ms) {
        return Err(FieldError::new(
            "connect_timeout_ms",
            "must be between 100 and 60000",
        ));
    }
    Ok(())
}

/// Total timeout of provider calls: half a second to five minutes.
pub fn check_timeout_ms(ms: u32) -> Result<(), FieldError> {
    if !(500..=300_000).contains(&ms) {
        return Err(FieldError::new(
            "timeout_ms",
            "must be between 500 and 300000",
        ));
    }
    Ok(())
}

/// Background refreshes at once against one provider: 1 to 64.
pub fn check_refresh_concurrency(n: u32) -> Result<(), FieldError> {
    if !(1..=64).contains(&n) {
        return Err(FieldError::new(
            "refresh_concurrency",
            "must be between 1 and 64",
        ));
    }
    Ok(())
}

/// Background refreshes started per minute: 0 (no limit) to 100000.
pub fn check_refresh_rate_per_minute(n: u32) -> Result<(), FieldError> {
    if n > 100_000 {
        return Err(FieldError::new(
            "refresh_rate_per_minute",
            "must be between 0 (no limit) and 100000",
        ));
    }
    Ok(())
}

/// Longest token response path, in characters.
const MAX_RESPONSE_PATH_CHARS: usize = 100;
/// Most extra answer fields kept per provider.
pub const MAX_KEPT_FIELDS: usize = 20;

/// Whether `name` is a plain JSON member name: letters, digits, `_`, `-`, `.`-free.
fn is_member_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Where the token fields sit in an answer: member names joined by dots
/// (`authed_user`, `data.token`).
pub fn check_token_response_path(path: &str) -> Result<(), FieldError> {
    let ok = path.chars().count() <= MAX_RESPONSE_PATH_CHARS && path.split('.').all(is_member_name);
    if !ok {
        return Err(FieldError::new(
            "token_response_path",
            "must be member names joined by dots, such as authed_user or data.token",
        ));
    }
    Ok(())
}

/// The extra answer fields kept with a token: plain member names, at most
/// [`MAX_KEPT_FIELDS`], none of the token fields Quiver reads (and seals)
/// itself.
pub fn check_keep_response_fields(fields: &[String]) -> Result<(), FieldError> {
    const OWN: &[&str] = &[
        "access_token",
        "refresh_token",
        "id_token",
        "token_type",
        "expires_in",
        "scope",
        "error",
        "error_description",
    ];
    let field = "keep_response_fields";
    if fields.len() > MAX_KEPT_FIELDS {
        return Err(FieldError::new(field, "may name at most 20 fields"));
    }
    for name in fields {
        let name = name.trim();
        if !is_member_name(name) {
            return Err(FieldError::new(
                field,
                format!("{name:?} is not a field name (letters, digits, _ and -)"),
            ));
        }
        if OWN.iter().any(|own| own.eq_ignore_ascii_case(name)) {
            return Err(FieldError::new(
                field,
                format!("{name:?} is a token field Quiver reads itself"),
            ));
        }
    }
    Ok(())
}

/// The kept fields as stored: trimmed, without repeats.
pub fn kept_fields_json(fields: &[String]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for f in fields {
        let f = f.trim();
        if !names.contains(&f) {
            names.push(f);
        }
    }
    serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
}

/// Parses the stored kept fields.
pub fn kept_fields(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

fn invalid(field: &str, message: impl Into<String>) -> AppError {
    AppError::invalid(field, message)
}

/// Trims a text; empty means none.
fn clean(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

pub fn params_json(map: &BTreeMap<String, String>) -> String {
    serde_json::to_string(map).unwrap_or_else(|_| "{}".into())
}

/// Parses a stored parameter map.
pub fn params_map(text: &str) -> BTreeMap<String, String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// Whether an optional column holds a value (set now or unchanged).
pub(crate) fn has_value(v: &sea_orm::ActiveValue<Option<String>>) -> bool {
    matches!(
        v,
        sea_orm::ActiveValue::Set(Some(_)) | sea_orm::ActiveValue::Unchanged(Some(_))
    )
}

/// How many days before a provider's certificate expires it is announced.
pub const CERTIFICATE_WARNING_DAYS: i64 = 30;

/// A certificate as shown.
pub(crate) fn certificate_view(c: &Certificate) -> CertificateView {
    CertificateView {
        pem: c.pem.clone(),
        subject: c.subject.clone(),
        issuer: c.issuer.clone(),
        not_before: rfc3339(c.not_before),
        not_after: rfc3339(c.not_after),
        x5t_s256: c.x5t_s256(),
        x5t: c.x5t(),
        sha1_thumbprint: c.sha1_hex(),
    }
}

/// A provider with its secrets opened, for the flows.
pub struct OpenedProvider {
    /// The row.
    pub model: provider::Model,
    /// The default client secret.
    pub client_secret: Option<SecretString>,
    /// The secret that replaces it at the next rotation.
    pub next_client_secret: Option<SecretString>,
    /// The signing key.
    pub key: Option<SigningKey>,
}

impl Providers {
    /// Whether provider URLs on loopback hosts may use plain http.
    pub fn allows_insecure_loopback(&self) -> bool {
        self.settings.allow_insecure_loopback
    }

    /// Builds the service.
    pub fn new(
        db: DatabaseConnection,
        sealer: Arc<Sealer>,
        clock: SharedClock,
        settings: ProviderSettings,
        audit: Audit,
    ) -> Self {
        Self {
            db,
            sealer,
            clock,
            settings,
            audit,
        }
    }

    fn check_url(&self, field: &str, value: &str) -> Result<String, AppError> {
        // Stored as typed (trimmed): normalising would add a trailing slash
        // to a bare issuer, and the issuer must match what the provider says.
        url_policy::check_url(value, self.settings.allow_insecure_loopback)
            .map(|_| value.trim().to_owned())
            .map_err(|e| invalid(field, format!("{field} {e}")))
    }

    fn open_key(&self, m: &provider::Model) -> Option<SigningKey> {
        let sealed = m.private_key.as_deref()?;
        let pem = self
            .sealer
            .open(SealSlot::new("providers", &m.id, "private_key"), sealed)
            .ok()?
            .into_secret_string()
            .ok()?;
        let key = SigningKey::from_pem(
            pem.expose(),
            m.signing_alg.as_deref().and_then(SigningAlg::parse),
            m.key_id.as_deref(),
        )
        .ok()?;
        // A stored certificate was checked against this key when it was set.
        match m.certificate.as_deref().map(Certificate::from_pem) {
            Some(Ok(certificate)) => key
                .clone()
                .with_certificate(certificate, m.send_sha1_thumbprint)
                .ok()
                .or(Some(key)),
            Some(Err(e)) => {
                tracing::error!(provider = %m.id, error = %e, "a stored certificate cannot be read");
                Some(key)
            }
            None => Some(key),
        }
    }

    /// A provider's signing key (with its certificate), opened.
    pub fn key_of(&self, m: &provider::Model) -> Option<SigningKey> {
        self.open_key(m)
    }

    /// A provider's name, for metrics and messages.
    pub async fn name_of(&self, id: &str) -> Option<String> {
        provider::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .ok()
            .flatten()
            .map(|p| p.name)
    }

    /// A provider with its secrets opened.
    pub async fn open(&self, id: &str) -> Result<OpenedProvider, AppError> {
        let model = provider::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(db_error)?
            .ok_or_else(|| AppError::NotFound("the provider".into()))?;
        let client_secret = self.open_column(&model, "client_secret", &model.client_secret)?;
        let next_client_secret =
            self.open_column(&model, "next_client_secret", &model.next_client_secret)?;
        let key = self.open_key(&model);
        Ok(OpenedProvider {
            model,
            client_secret,
            next_client_secret,
            key,
        })
    }

    /// A sealed column of `model`, opened.
    fn open_column(
        &self,
        model: &provider::Model,
        column: &str,
        sealed: &Option<String>,
    ) -> Result<Option<SecretString>, AppError> {
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        self.sealer
            .open(SealSlot::new("providers", &model.id, column), sealed)
            .map_err(|e| {
                tracing::error!(provider = %model.id, column, error = %e, "cannot open a sealed provider column");
                AppError::Internal
            })?
            .into_secret_string()
            .map(Some)
            .map_err(|_| AppError::Internal)
    }

    /// Makes the next client secret the current one (with its expiry), as
    /// an admin does once the provider retired the old secret.
    pub async fn promote_secret(
        &self,
        caller: &Caller,
        id: &str,
        addr: Option<String>,
    ) -> Result<ProviderView, AppError> {
        let result = async {
            require_admin(caller)?;
            let existing = provider::Entity::find_by_id(id.to_owned())
                .one(&self.db)
                .await
                .map_err(db_error)?
                .ok_or_else(|| AppError::NotFound("the provider".into()))?;
            let next = self
                .open_column(
                    &existing,
                    "next_client_secret",
                    &existing.next_client_secret,
                )?
                .ok_or_else(|| {
                    invalid(
                        "next_client_secret",
                        "is not set: there is no next secret to promote",
                    )
                })?;
            let mut active: provider::ActiveModel = existing.clone().into();
            active.client_secret = Set(Some(self.sealer.seal(
                SealSlot::new("providers", id, "client_secret"),
                next.expose().as_bytes(),
            )));
            active.client_secret_expires_at = Set(existing.next_client_secret_expires_at);
            active.secret_expiry_announced_for = Set(existing.next_secret_expiry_announced_for);
            active.next_client_secret = Set(None);
            active.next_client_secret_expires_at = Set(None);
            active.next_secret_expiry_announced_for = Set(None);
            active.secret_in_use = Set(None);
            active.secret_in_use_since = Set(None);
            active.updated_at = Set(self.clock.now());
            let model = active.update(&self.db).await.map_err(db_error)?;
            self.view(&model).await
        }
        .await;
        self.audited(
            caller,
            addr,
            "provider.promote_secret",
            Some(id.to_owned()),
            result,
        )
        .await
    }

    async fn token_count(&self, id: &str) -> Result<u64, AppError> {
        token::Entity::find()
            .filter(token::Column::ProviderId.eq(id))
            .count(&self.db)
            .await
            .map_err(db_error)
    }

    async fn view(&self, m: &provider::Model) -> Result<ProviderView, AppError> {
        let key = self.open_key(m);
        Ok(ProviderView {
            id: m.id.clone(),
            name: m.name.clone(),
            issuer: m.issuer.clone(),
            authorization_endpoint: m.authorization_endpoint.clone(),
            token_endpoint: m.token_endpoint.clone(),
            refresh_endpoint: m.refresh_endpoint.clone(),
            revocation_endpoint: m.revocation_endpoint.clone(),
            jwks_uri: m.jwks_uri.clone(),
            client_id: m.client_id.clone(),
            has_client_secret: m.client_secret.is_some(),
            rotation: secrets::RotationColumns::from(m).view(),
            client_auth_method: m.client_auth_method,
            has_private_key: m.private_key.is_some(),
            key_id: m.key_id.clone(),
            signing_alg: m.signing_alg.clone(),
            jwks_url: key
                .as_ref()
                .map(|_| format!("{}/oauth/jwks/{}", self.settings.public_url, m.id)),
            certificate: key
                .as_ref()
                .and_then(|k| k.certificate.as_ref())
                .map(certificate_view),
            send_sha1_thumbprint: m.send_sha1_thumbprint,
            public_jwk: key.map(|k| k.public_jwk),
            assertion_audience: m.assertion_audience.clone(),
            pkce: m.pkce,
            scope_separator: m.scope_separator.clone(),
            default_lifetime_seconds: m.default_lifetime_secs,
            expires_in_unit: if m.expires_in_millis {
                "milliseconds"
            } else {
                "seconds"
            }
            .into(),
            authorize_params: params_map(&m.authorize_params),
            token_params: params_map(&m.token_params),
            connect_timeout_ms: u32::try_from(m.connect_timeout_ms)
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS),
            timeout_ms: u32::try_from(m.timeout_ms).unwrap_or(DEFAULT_TIMEOUT_MS),
            refresh_concurrency: u32::try_from(m.refresh_concurrency).unwrap_or(1),
            refresh_rate_per_minute: u32::try_from(m.refresh_rate_per_minute).unwrap_or(0),
            iss_parameter_supported: m.iss_parameter_supported,
            template: m.template.clone(),
            default_scope: m.default_scope.clone(),
            required_scope: m.required_scope.clone(),
            token_response_path: m.token_response_path.clone(),
            keep_response_fields: kept_fields(&m.keep_response_fields),
            refresh_token_rotates: m.refresh_token_rotates,
            omit_scope_on_refresh: m.omit_scope_on_refresh,
            omit_code_on_refresh: m.omit_code_on_refresh,
            url_encode_refresh_token: m.url_encode_refresh_token,
            send_client_id_in_body: m.send_client_id_in_body,
            pushed_authorization_request_endpoint: m.pushed_authorization_request_endpoint.clone(),
            device_authorization_endpoint: m.device_authorization_endpoint.clone(),
            refresh_token_lifetime_seconds: m.refresh_token_lifetime_secs,
            refresh_token_lifetime_sliding: m.refresh_token_lifetime_sliding,
            test_request_url: m.test_request_url.clone(),
            test_request_method: m.test_request_method.unwrap_or_default(),
            revocation_format: m.revocation_format,
            test_after_renewal: m.test_after_renewal,
            token_count: self.token_count(&m.id).await?,
            created_at: rfc3339(m.created_at),
            updated_at: rfc3339(m.updated_at),
        })
    }

    /// Any signed-in user may list providers (to create tokens); only
    /// admins change them.
    pub async fn list(&self, _caller: &Caller) -> Result<Vec<ProviderView>, AppError> {
        let models = provider::Entity::find()
            .order_by_asc(provider::Column::Name)
            .all(&self.db)
            .await
            .map_err(db_error)?;
        let mut views = Vec::with_capacity(models.len());
        for m in &models {
            views.push(self.view(m).await?);
        }
        Ok(views)
    }

    /// What the token form offers of each provider, by name: read from the
    /// rows alone (no key is opened, unlike [`Self::list`]).
    pub async fn choices(&self, _caller: &Caller) -> Result<Vec<ProviderChoice>, AppError> {
        let models = provider::Entity::find()
            .order_by_asc(provider::Column::Name)
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(models
            .into_iter()
            .map(|p| ProviderChoice {
                has_default_client_id: p.client_id.is_some(),
                interactive: p.authorization_endpoint.is_some(),
                device: p.device_authorization_endpoint.is_some(),
                default_scope: p.default_scope,
                id: p.id,
                name: p.name,
                client_auth_method: p.client_auth_method,
            })
            .collect())
    }

    /// Every provider's id and name, by name.
    pub async fn names(&self, _caller: &Caller) -> Result<Vec<ProviderName>, AppError> {
        provider::Entity::find()
            .select_only()
            .column(provider::Column::Id)
            .column(provider::Column::Name)
            .order_by_asc(provider::Column::Name)
            .into_tuple::<(String, String)>()
            .all(&self.db)
            .await
            .map_err(db_error)
            .map(|rows| {
                rows.into_iter()
                    .map(|(id, name)| ProviderName { id, name })
                    .collect()
            })
    }

    /// One provider.
    pub async fn get(&self, _caller: &Caller, id: &str) -> Result<ProviderView, AppError> {
        let m = provider::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(db_error)?
            .ok_or_else(|| AppError::NotFound("the provider".into()))?;
        self.view(&m).await
    }

    /// The public JWKS of a provider's key (public, for registration).
    pub async fn jwks(&self, id: &str) -> Result<serde_json::Value, AppError> {
        let m = provider::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(db_error)?
            .ok_or_else(|| AppError::NotFound("the provider".into()))?;
        let key = self
            .open_key(&m)
            .ok_or_else(|| AppError::NotFound("a key for this provider".into()))?;
        Ok(serde_json::json!({ "keys": [key.public_jwk] }))
    }

    /// Reads the discovery document of an issuer.
    pub async fn discover(&self, caller: &Caller, issuer: &str) -> Result<Discovered, AppError> {
        require_admin(caller)?;
        let client = outbound::client(
            std::time::Duration::from_millis(u64::from(DEFAULT_CONNECT_TIMEOUT_MS)),
            std::time::Duration::from_millis(u64::from(DEFAULT_TIMEOUT_MS)),
            &self.settings.outbound,
            None,
        );
        discovery::discover(
            &client,
            issuer.trim(),
            self.settings.allow_insecure_loopback,
        )
        .await
        .map_err(|e| invalid("issuer", format!("discovery failed: {e}")))
    }

    async fn audited<T>(
        &self,
        caller: &Caller,
        addr: Option<String>,
        action: &'static str,
        id: Option<String>,
        result: Result<T, AppError>,
    ) -> Result<T, AppError> {
        let event = AuditEvent::new(caller.actor(), action, "provider", Outcome::Success)
            .from_addr(addr)
            .maybe_object(id);
        self.audit.record_result(event, result).await
    }

    /// Creates a provider.
    pub async fn create(
        &self,
        caller: &Caller,
        input: ProviderInput,
        addr: Option<String>,
    ) -> Result<ProviderView, AppError> {
        let result = async {
            require_admin(caller)?;
            let input = match clean(input.template.clone()) {
                Some(name) => {
                    let template = templates::find(&name).ok_or_else(|| {
                        invalid(
                            "template",
                            format!(
                                "there is no template {name:?}; GET /api/v1/provider-templates lists them"
                            ),
                        )
                    })?;
                    let inputs = input.template_inputs.clone().unwrap_or_default();
                    templates::overlay(templates::settings(template, &inputs)?, input)
                }
                None if input.template_inputs.is_some() => {
                    return Err(invalid(
                        "template_inputs",
                        "are for a template: name one in template",
                    ));
                }
                None => input,
            };
            let now = self.clock.now();
            let id = uuid::Uuid::new_v4().to_string();
            let mut active = provider::ActiveModel {
                id: Set(id.clone()),
                created_at: Set(now),
                updated_at: Set(now),
                client_auth_method: Set(ClientAuthMethod::ClientSecretBasic),
                pkce: Set(true),
                scope_separator: Set(" ".into()),
                expires_in_millis: Set(false),
                authorize_params: Set("{}".into()),
                token_params: Set("{}".into()),
                connect_timeout_ms: Set(DEFAULT_CONNECT_TIMEOUT_MS as i32),
                timeout_ms: Set(DEFAULT_TIMEOUT_MS as i32),
                refresh_concurrency: Set(DEFAULT_REFRESH_CONCURRENCY as i32),
                refresh_rate_per_minute: Set(DEFAULT_REFRESH_RATE_PER_MINUTE as i32),
                iss_parameter_supported: Set(false),
                send_sha1_thumbprint: Set(false),
                keep_response_fields: Set("[]".into()),
                refresh_token_rotates: Set(false),
                omit_scope_on_refresh: Set(true),
                omit_code_on_refresh: Set(true),
                url_encode_refresh_token: Set(false),
                send_client_id_in_body: Set(false),
                refresh_token_lifetime_sliding: Set(false),
                test_after_renewal: Set(false),
                revocation_format: Set(app::providers::RevocationFormat::Form),
                ..Default::default()
            };
            let model = self.apply(&id, &mut active, None, input).await?;
            self.view(&model).await
        }
        .await;
        let id = result.as_ref().ok().map(|v| v.id.clone());
        self.audited(caller, addr, "provider.create", id, result)
            .await
    }

    /// Changes a provider.
    pub async fn update(
        &self,
        caller: &Caller,
        id: &str,
        input: ProviderInput,
        addr: Option<String>,
    ) -> Result<ProviderView, AppError> {
        let result = async {
            require_admin(caller)?;
            let existing = provider::Entity::find_by_id(id.to_owned())
                .one(&self.db)
                .await
                .map_err(db_error)?
                .ok_or_else(|| AppError::NotFound("the provider".into()))?;
            let mut active: provider::ActiveModel = existing.clone().into();
            active.updated_at = Set(self.clock.now());
            let model = self.apply(id, &mut active, Some(&existing), input).await?;
            self.view(&model).await
        }
        .await;
        self.audited(caller, addr, "provider.update", Some(id.to_owned()), result)
            .await
    }

    /// Validates `input` onto `active` and saves it.
    async fn apply(
        &self,
        id: &str,
        active: &mut provider::ActiveModel,
        existing: Option<&provider::Model>,
        input: ProviderInput,
    ) -> Result<provider::Model, AppError> {
        let creating = existing.is_none();
        if let Some(name) = input.name.as_deref().map(str::trim) {
            check_name(name)?;
            active.name = Set(name.to_owned());
        } else if creating {
            return Err(invalid("name", "is required"));
        }
        // Optional URLs: absent keeps, empty clears.
        let mut origins_changed = false;
        let old_origins: Vec<Option<String>> = existing
            .map(|e| {
                vec![
                    e.issuer.clone(),
                    e.authorization_endpoint.clone(),
                    Some(e.token_endpoint.clone()),
                    e.refresh_endpoint.clone(),
                    e.revocation_endpoint.clone(),
                    e.pushed_authorization_request_endpoint.clone(),
                    e.device_authorization_endpoint.clone(),
                ]
                .into_iter()
                .map(|u| u.and_then(|u| url_policy::origin(&u)))
                .collect()
            })
            .unwrap_or_default();
        macro_rules! url_field {
            ($field:ident, $name:literal) => {
                if let Some(value) = input.$field.clone() {
                    let value = clean(Some(value));
                    let checked = match value {
                        Some(v) => Some(self.check_url($name, &v)?),
                        None => None,
                    };
                    active.$field = Set(checked);
                }
            };
        }
        url_field!(issuer, "issuer");
        url_field!(authorization_endpoint, "authorization_endpoint");
        url_field!(refresh_endpoint, "refresh_endpoint");
        url_field!(revocation_endpoint, "revocation_endpoint");
        url_field!(jwks_uri, "jwks_uri");
        url_field!(
            pushed_authorization_request_endpoint,
            "pushed_authorization_request_endpoint"
        );
        url_field!(
            device_authorization_endpoint,
            "device_authorization_endpoint"
        );
        match clean(input.token_endpoint.clone()) {
            Some(v) => active.token_endpoint = Set(self.check_url("token_endpoint", &v)?),
            None if input.token_endpoint.is_some() || creating => {
                return Err(invalid("token_endpoint", "is required"));
            }
            None => {}
        }
        if existing.is_some() {
            let now_origins: Vec<Option<String>> = [
                active.issuer.clone().unwrap(),
                active.authorization_endpoint.clone().unwrap(),
                Some(active.token_endpoint.clone().unwrap()),
                active.refresh_endpoint.clone().unwrap(),
                active.revocation_endpoint.clone().unwrap(),
                active
                    .pushed_authorization_request_endpoint
                    .clone()
                    .unwrap(),
                active.device_authorization_endpoint.clone().unwrap(),
            ]
            .into_iter()
            .map(|u| u.and_then(|u| url_policy::origin(&u)))
            .collect();
            let old: std::collections::BTreeSet<_> = old_origins.iter().flatten().collect();
            origins_changed = now_origins.iter().flatten().any(|o| !old.contains(o));
        }
        if let Some(client_id) = input.client_id.clone() {
            active.client_id = Set(clean(Some(client_id)));
        }
        let secret_given = input.client_secret.is_some();
        if let Some(secret) = input.client_secret.clone() {
            active.client_secret = Set(clean(Some(secret)).map(|s| {
                self.sealer.seal(
                    SealSlot::new("providers", id, "client_secret"),
                    s.as_bytes(),
                )
            }));
        }
        let next_given = input.next_client_secret.is_some();
        if let Some(next) = input.next_client_secret.clone() {
            active.next_client_secret = Set(clean(Some(next)).map(|s| {
                self.sealer.seal(
                    SealSlot::new("providers", id, "next_client_secret"),
                    s.as_bytes(),
                )
            }));
        }
        if let Some(text) = input.client_secret_expires_at.as_deref() {
            active.client_secret_expires_at =
                Set(secrets::parse_expiry("client_secret_expires_at", text)?);
        }
        if let Some(text) = input.next_client_secret_expires_at.as_deref() {
            active.next_client_secret_expires_at = Set(secrets::parse_expiry(
                "next_client_secret_expires_at",
                text,
            )?);
        }
        // New secrets: which one the provider accepts is not known yet.
        if secret_given || next_given {
            active.secret_in_use = Set(None);
            active.secret_in_use_since = Set(None);
        }
        let method = match input.client_auth_method.as_deref() {
            Some(m) => m.parse::<ClientAuthMethod>()?,
            None => existing
                .map(|e| e.client_auth_method)
                .unwrap_or(ClientAuthMethod::ClientSecretBasic),
        };
        active.client_auth_method = Set(method);
        let alg = match clean(input.signing_alg.clone()) {
            Some(a) => Some(
                SigningAlg::parse(&a)
                    .ok_or_else(|| invalid("signing_alg", "must be RS256, PS256 or ES256"))?,
            ),
            None => existing.and_then(|e| e.signing_alg.as_deref().and_then(SigningAlg::parse)),
        };
        let key_id =
            clean(input.key_id.clone()).or_else(|| existing.and_then(|e| e.key_id.clone()));
        let new_key = if input.generate_key == Some(true) {
            Some(SigningKey::generate(key_id.as_deref()))
        } else if let Some(pem) = clean(input.private_key_pem.clone()) {
            Some(
                SigningKey::from_pem(&pem, alg, clean(input.key_id.clone()).as_deref())
                    .map_err(|e| invalid("private_key_pem", format!("the private key {e}")))?,
            )
        } else {
            None
        };
        let key_given = new_key.is_some();
        if let Some(key) = &new_key {
            active.private_key = Set(Some(self.sealer.seal(
                SealSlot::new("providers", id, "private_key"),
                key.pem.expose().as_bytes(),
            )));
            active.key_id = Set(Some(key.key_id.clone()));
            active.signing_alg = Set(Some(key.alg.as_str().to_owned()));
        } else if input.private_key_pem.as_deref() == Some("") {
            active.private_key = Set(None);
            active.key_id = Set(None);
            active.signing_alg = Set(None);
        }
        // Endpoints moved to another origin: the secret and key were meant
        // for the old server and are dropped unless given again now.
        if origins_changed {
            if !secret_given {
                active.client_secret = Set(None);
            }
            if !next_given {
                active.next_client_secret = Set(None);
            }
            if !key_given {
                active.private_key = Set(None);
                active.key_id = Set(None);
                active.signing_alg = Set(None);
            }
        }
        self.apply_certificate(active, existing, new_key.as_ref(), &input)?;
        if method.uses_provider_key() && !has_value(&active.private_key) {
            return Err(invalid(
                "private_key_pem",
                format!("{method} needs a private key: upload a PEM or set generate_key"),
            ));
        }
        if method.is_mutual_tls() && !has_value(&active.certificate) {
            return Err(invalid(
                "certificate_pem",
                format!(
                    "{method} presents the key's certificate: upload it, or set generate_certificate for a self-signed one"
                ),
            ));
        }
        if let Some(aud) = input.assertion_audience.clone() {
            active.assertion_audience = Set(clean(Some(aud)));
        }
        if let Some(pkce) = input.pkce {
            active.pkce = Set(pkce);
        }
        if let Some(sep) = input.scope_separator.clone() {
            check_scope_separator(&sep)?;
            active.scope_separator = Set(sep);
        }
        if let Some(secs) = input.default_lifetime_seconds {
            check_default_lifetime(secs, Wording::Form)?;
            active.default_lifetime_secs = Set(Some(secs));
        }
        if let Some(unit) = input.expires_in_unit.as_deref() {
            active.expires_in_millis = Set(match unit {
                "seconds" => false,
                "milliseconds" => true,
                _ => {
                    return Err(invalid(
                        "expires_in_unit",
                        "must be seconds or milliseconds",
                    ));
                }
            });
        }
        for (field, map) in [
            ("authorize_params", &input.authorize_params),
            ("token_params", &input.token_params),
        ] {
            if let Some(map) = map {
                params::check(map).map_err(|problem| match problem.key() {
                    Some(key) => invalid(&format!("{field}.{}", key.trim()), problem.message()),
                    None => invalid(field, problem.message()),
                })?;
                let json = params_json(map);
                if field == "authorize_params" {
                    active.authorize_params = Set(json);
                } else {
                    active.token_params = Set(json);
                }
            }
        }
        if let Some(v) = input.iss_parameter_supported {
            active.iss_parameter_supported = Set(v);
        }
        if let Some(ms) = input.connect_timeout_ms {
            check_connect_timeout_ms(ms)?;
            active.connect_timeout_ms = Set(ms as i32);
        }
        if let Some(ms) = input.timeout_ms {
            check_timeout_ms(ms)?;
            active.timeout_ms = Set(ms as i32);
        }
        if let Some(n) = input.refresh_concurrency {
            check_refresh_concurrency(n)?;
            active.refresh_concurrency = Set(n as i32);
        }
        if let Some(n) = input.refresh_rate_per_minute {
            check_refresh_rate_per_minute(n)?;
            active.refresh_rate_per_minute = Set(n as i32);
        }
        Self::apply_quirks(active, &input, self.settings.allow_insecure_loopback)?;
        if creating {
            active.template = Set(clean(input.template.clone()));
        } else if input.template.is_some() || input.template_inputs.is_some() {
            return Err(invalid(
                "template",
                "a template makes a new provider; change this one's settings instead",
            ));
        }
        let result = if creating {
            active.clone().insert(&self.db).await
        } else {
            active.clone().update(&self.db).await
        };
        result.map_err(|e| match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => {
                invalid("name", "another provider already has this name")
            }
            _ => db_error(e),
        })
    }

    /// The settings for providers that depart from the standard.
    fn apply_quirks(
        active: &mut provider::ActiveModel,
        input: &ProviderInput,
        allow_insecure_loopback: bool,
    ) -> Result<(), AppError> {
        let scope_text = |field: &str, scope: Option<String>| match scope {
            Some(s) if s.chars().count() > 2_000 => {
                Err(invalid(field, "must be at most 2000 characters"))
            }
            scope => Ok(scope),
        };
        if let Some(scope) = input.default_scope.clone() {
            active.default_scope = Set(scope_text("default_scope", clean(Some(scope)))?);
        }
        if let Some(scope) = input.required_scope.as_deref() {
            let scope = params::with_required(None, Some(scope));
            active.required_scope = Set(scope_text("required_scope", scope)?);
        }
        if let Some(path) = input.token_response_path.clone() {
            let path = clean(Some(path));
            if let Some(p) = &path {
                check_token_response_path(p)?;
            }
            active.token_response_path = Set(path);
        }
        if let Some(fields) = &input.keep_response_fields {
            let fields: Vec<String> = fields
                .iter()
                .map(|f| f.trim().to_owned())
                .filter(|f| !f.is_empty())
                .collect();
            check_keep_response_fields(&fields)?;
            active.keep_response_fields = Set(kept_fields_json(&fields));
        }
        for (value, column) in [
            (
                input.refresh_token_rotates,
                &mut active.refresh_token_rotates,
            ),
            (
                input.omit_scope_on_refresh,
                &mut active.omit_scope_on_refresh,
            ),
            (input.omit_code_on_refresh, &mut active.omit_code_on_refresh),
            (
                input.url_encode_refresh_token,
                &mut active.url_encode_refresh_token,
            ),
            (
                input.send_client_id_in_body,
                &mut active.send_client_id_in_body,
            ),
            (
                input.refresh_token_lifetime_sliding,
                &mut active.refresh_token_lifetime_sliding,
            ),
            (input.test_after_renewal, &mut active.test_after_renewal),
        ] {
            if let Some(v) = value {
                *column = Set(v);
            }
        }
        if let Some(url) = input.test_request_url.clone() {
            let url = clean(Some(url));
            if let Some(u) = &url {
                check_test_request_url(u, allow_insecure_loopback)?;
            }
            active.test_request_url = Set(url);
        }
        if let Some(method) = input.test_request_method.as_deref().map(str::trim) {
            active.test_request_method = Set(if method.is_empty() {
                None
            } else {
                Some(method.parse::<app::tokens::TestMethod>()?)
            });
        }
        if let Some(format) = input.revocation_format.as_deref().map(str::trim) {
            active.revocation_format = Set(if format.is_empty() {
                app::providers::RevocationFormat::default()
            } else {
                format.parse::<app::providers::RevocationFormat>()?
            });
        }
        if let Some(secs) = input.refresh_token_lifetime_seconds {
            check_refresh_token_lifetime(secs, Wording::Form)?;
            active.refresh_token_lifetime_secs = Set((secs > 0).then_some(secs));
        }
        Ok(())
    }

    /// The key's certificate: uploaded, made here for the key, kept while
    /// the key stays, dropped with the key it was for.
    fn apply_certificate(
        &self,
        active: &mut provider::ActiveModel,
        existing: Option<&provider::Model>,
        new_key: Option<&SigningKey>,
        input: &ProviderInput,
    ) -> Result<(), AppError> {
        let key = match new_key {
            Some(key) => Some(key.clone()),
            None if has_value(&active.private_key) => existing.and_then(|e| self.open_key(e)),
            None => None,
        };
        let needs_key = |field: &str| {
            invalid(
                field,
                "a certificate is for a private key: upload a PEM or set generate_key",
            )
        };
        let certificate = if input.generate_certificate == Some(true) {
            let key = key
                .as_ref()
                .ok_or_else(|| needs_key("generate_certificate"))?;
            let name = match &active.name {
                sea_orm::ActiveValue::Set(n) | sea_orm::ActiveValue::Unchanged(n) => n.clone(),
                sea_orm::ActiveValue::NotSet => String::new(),
            };
            Some(
                Certificate::self_signed(key, &format!("Quiver {name}"), self.clock.now())
                    .map_err(|e| invalid("generate_certificate", format!("the certificate {e}")))?,
            )
        } else if let Some(pem) = clean(input.certificate_pem.clone()) {
            let key = key.as_ref().ok_or_else(|| needs_key("certificate_pem"))?;
            let certificate = Certificate::from_pem(&pem)
                .and_then(|c| c.check_key(key).map(|()| c))
                .map_err(|e| invalid("certificate_pem", format!("the certificate {e}")))?;
            Some(certificate)
        } else {
            None
        };
        let key_kept = key.is_some() && new_key.is_none();
        match certificate {
            Some(certificate) => {
                active.certificate = Set(Some(certificate.pem));
                active.certificate_expiry_announced = Set(None);
            }
            None if input.certificate_pem.as_deref() == Some("") || !key_kept => {
                active.certificate = Set(None);
                active.certificate_expiry_announced = Set(None);
            }
            None => {}
        }
        if let Some(send) = input.send_sha1_thumbprint {
            active.send_sha1_thumbprint = Set(send);
        }
        Ok(())
    }

    /// Raises `provider.certificate_expiring` once for each certificate that
    /// expires within [`CERTIFICATE_WARNING_DAYS`] (or has expired), so an
    /// admin uploads a new one before the provider refuses the assertions.
    /// Replicas share the work: a certificate is announced by whichever
    /// marks it first. Returns how many were announced.
    pub async fn announce_expiring_certificates(&self, events: &crate::events::Events) -> usize {
        let rows = match provider::Entity::find()
            .filter(provider::Column::Certificate.is_not_null())
            .all(&self.db)
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "could not read provider certificates");
                return 0;
            }
        };
        let now = self.clock.now();
        let mut announced = 0;
        for m in rows {
            let Some(Ok(certificate)) = m.certificate.as_deref().map(Certificate::from_pem) else {
                continue;
            };
            let thumbprint = certificate.x5t_s256();
            if certificate.not_after - now > chrono::Duration::days(CERTIFICATE_WARNING_DAYS)
                || m.certificate_expiry_announced.as_deref() == Some(thumbprint.as_str())
            {
                continue;
            }
            // Marked only where it still holds this certificate unannounced.
            let marked = provider::Entity::update_many()
                .col_expr(
                    provider::Column::CertificateExpiryAnnounced,
                    sea_orm::sea_query::Expr::value(thumbprint.clone()),
                )
                .filter(provider::Column::Id.eq(m.id.clone()))
                .filter(provider::Column::Certificate.eq(m.certificate.clone()))
                .filter(
                    sea_orm::Condition::any()
                        .add(provider::Column::CertificateExpiryAnnounced.is_null())
                        .add(provider::Column::CertificateExpiryAnnounced.ne(thumbprint.clone())),
                )
                .exec(&self.db)
                .await;
            if !matches!(marked, Ok(r) if r.rows_affected == 1) {
                continue;
            }
            // Whole days left, counting a started day: 28 days and 23 hours is 29.
            let days = ((certificate.not_after - now).num_seconds() + 86_399) / 86_400;
            let message = if certificate.not_after <= now {
                format!(
                    "The certificate of provider {} expired on {}: upload a new one here and at the provider.",
                    m.name,
                    certificate.not_after.format("%Y-%m-%d")
                )
            } else {
                format!(
                    "The certificate of provider {} expires in {days} days, on {}: upload a new one here and at the provider.",
                    m.name,
                    certificate.not_after.format("%Y-%m-%d")
                )
            };
            events
                .raise(
                    crate::events::EventKind::CertificateExpiring,
                    None,
                    None,
                    message,
                    serde_json::json!({
                        "provider_id": m.id,
                        "provider_name": m.name,
                        "subject": certificate.subject,
                        "not_after": rfc3339(certificate.not_after),
                        "x5t#S256": thumbprint,
                    }),
                )
                .await;
            announced += 1;
        }
        announced
    }

    /// Deletes a provider. With tokens using it, only when `force` is set,
    /// and then the tokens go too (the caller revokes them first).
    pub async fn delete(
        &self,
        caller: &Caller,
        id: &str,
        force: bool,
        addr: Option<String>,
    ) -> Result<u64, AppError> {
        let result = async {
            require_admin(caller)?;
            provider::Entity::find_by_id(id.to_owned())
                .one(&self.db)
                .await
                .map_err(db_error)?
                .ok_or_else(|| AppError::NotFound("the provider".into()))?;
            let count = self.token_count(id).await?;
            if count > 0 && !force {
                return Err(AppError::Conflict(format!(
                    "{count} tokens use this provider; delete them first, or delete with force=true to delete them too"
                )));
            }
            token::Entity::delete_many()
                .filter(token::Column::ProviderId.eq(id))
                .exec(&self.db)
                .await
                .map_err(db_error)?;
            provider::Entity::delete_by_id(id.to_owned())
                .exec(&self.db)
                .await
                .map_err(db_error)?;
            Ok(count)
        }
        .await;
        self.audited(caller, addr, "provider.delete", Some(id.to_owned()), result)
            .await
    }

    /// The ids of the tokens using a provider.
    pub async fn token_ids(&self, id: &str) -> Result<Vec<String>, AppError> {
        Ok(token::Entity::find()
            .filter(token::Column::ProviderId.eq(id))
            .all(&self.db)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|t| t.id)
            .collect())
    }
}
