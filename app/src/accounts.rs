//! Accounts as the browser and the REST API see them: users, API keys and
//! the audit log. No password hash or key ever appears here, except a new
//! API key or generated password, shown once to whoever created it.

use serde::{Deserialize, Serialize};

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    /// Id.
    pub id: String,
    /// Email.
    pub email: String,
    /// `admin` or `user`.
    pub role: String,
    /// Disabled accounts cannot sign in.
    pub disabled: bool,
    /// RFC 3339.
    pub created_at: String,
}

/// A new account, with its generated password when none was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedUser {
    /// The account.
    pub user: UserView,
    /// Shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_password: Option<String>,
}

/// An API key's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// First characters of the key.
    pub prefix: String,
    /// Owner's email.
    pub owner: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub last_used_at: Option<String>,
    /// RFC 3339.
    pub revoked_at: Option<String>,
    /// Access tokens handed out to this key in the last 24 hours.
    #[serde(default)]
    pub access_tokens_24h: u64,
}

/// A new API key: the key is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedApiKey {
    /// The record.
    pub api_key: ApiKeyView,
    /// The key to send as `Authorization: Bearer <key>`.
    pub key: String,
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntryView {
    /// Id.
    pub id: i64,
    /// RFC 3339.
    pub at: String,
    /// `user`, `api_key`, `system`, `anonymous`.
    pub actor_kind: String,
    /// Actor id.
    pub actor_id: Option<String>,
    /// Actor label.
    pub actor: String,
    /// Action.
    pub action: String,
    /// Object kind.
    pub object_kind: String,
    /// Object id.
    pub object_id: Option<String>,
    /// `success`, `failure`, `denied`.
    pub outcome: String,
    /// Detail.
    pub detail: Option<String>,
    /// Client address.
    pub client_addr: Option<String>,
}

/// Audit filters, as typed on the page or passed as query parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// Actor id or part of its label.
    #[serde(default)]
    pub actor: Option<String>,
    /// Exact action.
    #[serde(default)]
    pub action: Option<String>,
    /// Object id.
    #[serde(default)]
    pub object_id: Option<String>,
    /// Object kind.
    #[serde(default)]
    pub object_kind: Option<String>,
    /// RFC 3339 lower bound.
    #[serde(default)]
    pub since: Option<String>,
    /// RFC 3339 upper bound.
    #[serde(default)]
    pub until: Option<String>,
    /// Page offset.
    #[serde(default)]
    pub offset: Option<u64>,
    /// Page size (at most 500).
    #[serde(default)]
    pub limit: Option<u64>,
}

/// A page of audit entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    /// Entries, newest first.
    pub items: Vec<AuditEntryView>,
    /// How many match in all.
    pub total: u64,
}

/// The server side of this module, provided through Leptos context. Every
/// method checks the caller found in the request.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait AccountsService: Send + Sync + 'static {
    /// Admin: every account.
    async fn list_users(&self, parts: &Parts) -> Result<Vec<UserView>, crate::error::AppError>;
    /// Admin: creates an account.
    async fn create_user(
        &self,
        parts: &Parts,
        email: String,
        password: Option<String>,
        role: String,
    ) -> Result<CreatedUser, crate::error::AppError>;
    /// Admin: changes role or disabled flag.
    async fn update_user(
        &self,
        parts: &Parts,
        id: String,
        role: Option<String>,
        disabled: Option<bool>,
    ) -> Result<UserView, crate::error::AppError>;
    /// Admin: ends every session of an account.
    async fn revoke_sessions(
        &self,
        parts: &Parts,
        id: String,
    ) -> Result<u64, crate::error::AppError>;
    /// The caller's API keys.
    async fn list_api_keys(&self, parts: &Parts)
    -> Result<Vec<ApiKeyView>, crate::error::AppError>;
    /// Creates an API key for the caller.
    async fn create_api_key(
        &self,
        parts: &Parts,
        name: String,
    ) -> Result<CreatedApiKey, crate::error::AppError>;
    /// Revokes one of the caller's keys (any key for an admin).
    async fn revoke_api_key(
        &self,
        parts: &Parts,
        id: String,
    ) -> Result<ApiKeyView, crate::error::AppError>;
    /// Admin: a page of the audit log.
    async fn audit_page(
        &self,
        parts: &Parts,
        query: AuditQuery,
    ) -> Result<AuditPage, crate::error::AppError>;
}

#[cfg(feature = "ssr")]
use leptos::server_fn::http_export::request::Parts;

mod server_fns {
    use leptos::prelude::*;

    use super::*;
    use crate::error::AppError;

    /// Admin: every account.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn list_users() -> Result<Vec<UserView>, AppError> {
        let (s, p) = crate::service::<dyn AccountsService>()?;
        crate::error::respond(s.list_users(&p).await)
    }

    /// Admin: creates an account (empty password: generated).
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn create_user(
        email: String,
        password: String,
        role: String,
    ) -> Result<CreatedUser, AppError> {
        let (s, p) = crate::service::<dyn AccountsService>()?;
        let password = (!password.is_empty()).then_some(password);
        crate::error::respond(s.create_user(&p, email, password, role).await)
    }

    /// Admin: changes role or disabled flag.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn update_user(
        id: String,
        role: Option<String>,
        disabled: Option<bool>,
    ) -> Result<UserView, AppError> {
        let (s, p) = crate::service::<dyn AccountsService>()?;
        crate::error::respond(s.update_user(&p, id, role, disabled).await)
    }

    /// Admin: ends every session of an account.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn revoke_user_sessions(id: String) -> Result<u64, AppError> {
        let (s, p) = crate::service::<dyn AccountsService>()?;
        crate::error::respond(s.revoke_sessions(&p, id).await)
    }

    /// The caller's API keys.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn list_api_keys() -> Result<Vec<ApiKeyView>, AppError> {
        let (s, p) = crate::service::<dyn AccountsService>()?;
        crate::error::respond(s.list_api_keys(&p).await)
    }

    /// Creates an API key for the caller.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn create_api_key(name: String) -> Result<CreatedApiKey, AppError> {
        let (s, p) = crate::service::<dyn AccountsService>()?;
        crate::error::respond(s.create_api_key(&p, name).await)
    }

    /// Revokes an API key.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn revoke_api_key(id: String) -> Result<ApiKeyView, AppError> {
        let (s, p) = crate::service::<dyn AccountsService>()?;
        crate::error::respond(s.revoke_api_key(&p, id).await)
    }

    /// Admin: a page of the audit log.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn get_audit_page(query: AuditQuery) -> Result<AuditPage, AppError> {
        let (s, p) = crate::service::<dyn AccountsService>()?;
        crate::error::respond(s.audit_page(&p, query).await)
    }
}

pub use server_fns::*;
