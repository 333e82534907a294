//! Account operations as callers perform them: each checks access, acts,
//! and records the outcome in the audit log. REST handlers and server
//! functions both call these; neither repeats a rule.

use app::accounts::{
    ApiKeyView, AuditEntryView, AuditPage, AuditQuery, CreatedApiKey, CreatedUser, UserView,
};
use app::error::AppError;
use chrono::{DateTime, SecondsFormat, Utc};

use super::api_keys::ApiKey;
use super::users::User;
use super::{AccountError, Role, password};
use crate::audit::{AuditEvent, AuditFilter, Outcome};
use crate::auth::{Accounts, Caller, Via};
use crate::secret::SecretString;

impl From<AccountError> for AppError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Invalid { field, message } => AppError::invalid(field, message),
            AccountError::EmailTaken => AppError::Conflict(e.to_string()),
            AccountError::NotFound => AppError::NotFound("the account".into()),
            AccountError::Db(db) => {
                tracing::error!(error = %db, "account storage failed");
                AppError::Internal
            }
        }
    }
}

/// RFC 3339 with seconds, as every wire type carries times.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The wire form of a user.
pub fn user_view(u: &User) -> UserView {
    UserView {
        id: u.id.clone(),
        email: u.email.clone(),
        role: u.role.to_string(),
        disabled: u.disabled,
        created_at: rfc3339(u.created_at),
    }
}

fn key_view(k: &ApiKey, owner: &str) -> ApiKeyView {
    ApiKeyView {
        id: k.id.clone(),
        name: k.name.clone(),
        prefix: k.prefix.clone(),
        owner: owner.to_owned(),
        created_at: rfc3339(k.created_at),
        last_used_at: k.last_used_at.map(rfc3339),
        revoked_at: k.revoked_at.map(rfc3339),
        access_tokens_24h: 0,
    }
}

/// Only admins pass.
pub fn require_admin(caller: &Caller) -> Result<(), AppError> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

impl Accounts {
    async fn audited<T>(
        &self,
        caller: &Caller,
        addr: Option<String>,
        action: &'static str,
        object_kind: &'static str,
        object_id: Option<String>,
        result: Result<T, AppError>,
    ) -> Result<T, AppError> {
        let outcome = match &result {
            Ok(_) => Outcome::Success,
            Err(AppError::Forbidden) => Outcome::Denied,
            Err(_) => Outcome::Failure,
        };
        let mut event =
            AuditEvent::new(caller.actor(), action, object_kind, outcome).from_addr(addr);
        event.object_id = object_id;
        if let Err(e) = &result {
            event.detail = Some(e.to_string());
        }
        let _ = self.audit.record(event).await;
        result
    }

    /// Admin: every account.
    pub async fn list_users(&self, caller: &Caller) -> Result<Vec<UserView>, AppError> {
        require_admin(caller)?;
        Ok(self.users.list().await?.iter().map(user_view).collect())
    }

    /// Admin: creates an account; generates a password when none is given.
    pub async fn create_user(
        &self,
        caller: &Caller,
        email: &str,
        password: Option<SecretString>,
        role: &str,
        addr: Option<String>,
    ) -> Result<CreatedUser, AppError> {
        let result = async {
            require_admin(caller)?;
            let role: Role = role.parse()?;
            let (password, generated) = match password.filter(|p| !p.is_empty()) {
                Some(p) => (p, false),
                None => (password::generate(), true),
            };
            let user = self.users.create(email, &password, role).await?;
            Ok(CreatedUser {
                user: user_view(&user),
                generated_password: generated.then(|| password.expose().to_owned()),
            })
        }
        .await;
        let id = result.as_ref().ok().map(|c| c.user.id.clone());
        self.audited(caller, addr, "user.create", "user", id, result)
            .await
    }

    /// Admin: changes role and/or disabled flag. Disabling ends the
    /// account's sessions. An admin cannot demote or disable themself.
    pub async fn update_user(
        &self,
        caller: &Caller,
        id: &str,
        role: Option<&str>,
        disabled: Option<bool>,
        addr: Option<String>,
    ) -> Result<UserView, AppError> {
        let result = async {
            require_admin(caller)?;
            let mut user = self.users.get(id).await?;
            if id == caller.user.id && (disabled == Some(true) || role == Some("user")) {
                return Err(AppError::invalid(
                    if disabled == Some(true) {
                        "disabled"
                    } else {
                        "role"
                    },
                    "you cannot disable or demote your own account; ask another admin",
                ));
            }
            if let Some(role) = role {
                user = self.users.set_role(id, role.parse()?).await?;
            }
            if let Some(disabled) = disabled {
                user = self.users.set_disabled(id, disabled).await?;
                if disabled {
                    self.sessions.end_all_for(id).await?;
                }
            }
            Ok(user_view(&user))
        }
        .await;
        self.audited(
            caller,
            addr,
            "user.update",
            "user",
            Some(id.to_owned()),
            result,
        )
        .await
    }

    /// Admin: ends every session of an account; returns how many.
    pub async fn revoke_sessions(
        &self,
        caller: &Caller,
        id: &str,
        addr: Option<String>,
    ) -> Result<u64, AppError> {
        let result = async {
            require_admin(caller)?;
            self.users.get(id).await?;
            Ok(self.sessions.end_all_for(id).await?)
        }
        .await;
        self.audited(
            caller,
            addr,
            "user.revoke_sessions",
            "user",
            Some(id.to_owned()),
            result,
        )
        .await
    }

    /// The caller's API keys, or everyone's for an admin asking for all.
    pub async fn list_api_keys(
        &self,
        caller: &Caller,
        all: bool,
    ) -> Result<Vec<ApiKeyView>, AppError> {
        if all {
            require_admin(caller)?;
            let users = self.users.list().await?;
            let email = |id: &str| {
                users
                    .iter()
                    .find(|u| u.id == id)
                    .map_or_else(String::new, |u| u.email.clone())
            };
            return Ok(self
                .api_keys
                .list(None)
                .await?
                .iter()
                .map(|k| key_view(k, &email(&k.user_id)))
                .collect());
        }
        Ok(self
            .api_keys
            .list(Some(&caller.user.id))
            .await?
            .iter()
            .map(|k| key_view(k, &caller.user.email))
            .collect())
    }

    /// Creates an API key for the caller, who must be a person signed in
    /// (a session): a key cannot make keys, so a leaked key cannot outlive
    /// its own revocation through keys it made.
    pub async fn create_api_key(
        &self,
        caller: &Caller,
        name: &str,
        addr: Option<String>,
    ) -> Result<CreatedApiKey, AppError> {
        let result = async {
            if !matches!(caller.via, Via::Session { .. }) {
                return Err(AppError::Forbidden);
            }
            let (key, secret) = self.api_keys.create(&caller.user.id, name).await?;
            Ok(CreatedApiKey {
                api_key: key_view(&key, &caller.user.email),
                key: secret.expose().to_owned(),
            })
        }
        .await;
        let id = result.as_ref().ok().map(|c| c.api_key.id.clone());
        self.audited(caller, addr, "api_key.create", "api_key", id, result)
            .await
    }

    /// Revokes a key: the caller's own, or any for an admin.
    pub async fn revoke_api_key(
        &self,
        caller: &Caller,
        id: &str,
        addr: Option<String>,
    ) -> Result<ApiKeyView, AppError> {
        let result = async {
            let key = match self.api_keys.get(id).await {
                Ok(key) => key,
                Err(AccountError::NotFound) => {
                    return Err(AppError::NotFound("the API key".into()));
                }
                Err(e) => return Err(e.into()),
            };
            if key.user_id != caller.user.id && !caller.is_admin() {
                // Someone else's key is indistinguishable from a missing one.
                return Err(AppError::NotFound("the API key".into()));
            }
            let owner = self.users.get(&key.user_id).await?;
            let revoked = self.api_keys.revoke(id).await?;
            Ok(key_view(&revoked, &owner.email))
        }
        .await;
        self.audited(
            caller,
            addr,
            "api_key.revoke",
            "api_key",
            Some(id.to_owned()),
            result,
        )
        .await
    }

    /// Admin: a page of the audit log.
    pub async fn audit_page(
        &self,
        caller: &Caller,
        query: &AuditQuery,
    ) -> Result<AuditPage, AppError> {
        require_admin(caller)?;
        let time =
            |field: &str, value: &Option<String>| -> Result<Option<DateTime<Utc>>, AppError> {
                value
                    .as_deref()
                    .filter(|v| !v.is_empty())
                    .map(|v| {
                        DateTime::parse_from_rfc3339(v)
                            .map(|t| t.with_timezone(&Utc))
                            .map_err(|_| {
                                AppError::invalid(
                                    field,
                                    "must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z",
                                )
                            })
                    })
                    .transpose()
            };
        let filter = AuditFilter {
            actor: query.actor.clone(),
            action: query.action.clone(),
            object_id: query.object_id.clone(),
            object_kind: query.object_kind.clone(),
            since: time("since", &query.since)?,
            until: time("until", &query.until)?,
        };
        let limit = query.limit.unwrap_or(50).clamp(1, 500);
        let (entries, total) = self
            .audit
            .query(&filter, query.offset.unwrap_or(0), limit)
            .await
            .map_err(|e| AppError::from(AccountError::Db(e)))?;
        Ok(AuditPage {
            items: entries
                .into_iter()
                .map(|e| AuditEntryView {
                    id: e.id,
                    at: rfc3339(e.at),
                    actor_kind: e.actor_kind,
                    actor_id: e.actor_id,
                    actor: e.actor_label,
                    action: e.action,
                    object_kind: e.object_kind,
                    object_id: e.object_id,
                    outcome: e.outcome,
                    detail: e.detail,
                    client_addr: e.client_addr,
                })
                .collect(),
            total,
        })
    }
}
