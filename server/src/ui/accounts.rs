//! The accounts screens' service (users, API keys, the audit log), and the
//! caller of a server-function request.

use app::accounts::{
    AccountsService, ApiKeyView, AuditPage, AuditQuery, CreatedApiKey, CreatedUser, UserView,
};
use app::error::AppError;
use leptos::server_fn::http_export::request::Parts;

use crate::auth::Accounts;
use crate::http::caller::Authenticated;
use crate::secret::SecretString;

/// Users, API keys and the audit log for the web app.
pub struct AccountsFacade {
    accounts: Accounts,
    usage: std::sync::Arc<crate::tokens::usage::Usage>,
}

impl AccountsFacade {
    /// Wraps the accounts, and the token usage the keys list shows.
    pub fn new(accounts: Accounts, usage: std::sync::Arc<crate::tokens::usage::Usage>) -> Self {
        Self { accounts, usage }
    }
}

#[async_trait::async_trait]
impl AccountsService for AccountsFacade {
    async fn list_users(&self, parts: &Parts) -> Result<Vec<UserView>, AppError> {
        let Authenticated { caller, .. } = Authenticated::from_parts(parts)?;
        self.accounts.list_users(&caller).await
    }

    async fn create_user(
        &self,
        parts: &Parts,
        email: String,
        password: Option<String>,
        role: String,
    ) -> Result<CreatedUser, AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        self.accounts
            .create_user(
                &caller,
                &email,
                password.map(SecretString::new),
                &role,
                addr,
            )
            .await
    }

    async fn update_user(
        &self,
        parts: &Parts,
        id: String,
        role: Option<String>,
        disabled: Option<bool>,
    ) -> Result<UserView, AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        self.accounts
            .update_user(&caller, &id, role.as_deref(), disabled, addr)
            .await
    }

    async fn revoke_sessions(&self, parts: &Parts, id: String) -> Result<u64, AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        self.accounts.revoke_sessions(&caller, &id, addr).await
    }

    async fn list_api_keys(&self, parts: &Parts) -> Result<Vec<ApiKeyView>, AppError> {
        let Authenticated { caller, .. } = Authenticated::from_parts(parts)?;
        let mut keys = self.accounts.list_api_keys(&caller, false).await?;
        self.usage
            .count_key_uses(&mut keys)
            .await
            .map_err(crate::tokens::db_error)?;
        Ok(keys)
    }

    async fn create_api_key(&self, parts: &Parts, name: String) -> Result<CreatedApiKey, AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        self.accounts.create_api_key(&caller, &name, addr).await
    }

    async fn revoke_api_key(&self, parts: &Parts, id: String) -> Result<ApiKeyView, AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        self.accounts.revoke_api_key(&caller, &id, addr).await
    }

    async fn audit_page(&self, parts: &Parts, query: AuditQuery) -> Result<AuditPage, AppError> {
        let Authenticated { caller, .. } = Authenticated::from_parts(parts)?;
        self.accounts.audit_page(&caller, &query).await
    }
}
