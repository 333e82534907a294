//! The web app's sign-in service: the login page's facts, signing in and
//! out, and who is signed in.

use app::auth::{AuthService, CurrentUser, LoginPageInfo};
use app::error::AppError;
use leptos::server_fn::http_export::request::Parts;

use crate::auth::{Accounts, Caller};
use crate::http::caller::{Authenticated, ClientAddr};
use crate::secret::SecretString;

/// Sign-in for the web app.
pub struct AuthFacade {
    accounts: Accounts,
}

impl AuthFacade {
    /// Wraps the accounts.
    pub fn new(accounts: Accounts) -> Self {
        Self { accounts }
    }
}

/// The wire form of a caller.
pub fn current_user(caller: &Caller) -> CurrentUser {
    CurrentUser {
        id: caller.user.id.clone(),
        email: caller.user.email.clone(),
        role: caller.user.role.to_string(),
    }
}

#[async_trait::async_trait]
impl AuthService for AuthFacade {
    fn current_user(&self, parts: &Parts) -> Option<CurrentUser> {
        Authenticated::from_parts(parts)
            .ok()
            .map(|who| current_user(&who.caller))
    }

    async fn login_page_info(&self) -> Result<LoginPageInfo, AppError> {
        Ok(LoginPageInfo {
            no_users_yet: self.accounts.users.count().await? == 0,
        })
    }

    async fn login(
        &self,
        parts: &Parts,
        email: String,
        password: String,
    ) -> Result<(CurrentUser, String), AppError> {
        let ClientAddr(addr) = ClientAddr::from_parts(parts);
        let (user, token) = self
            .accounts
            .login(
                &email,
                SecretString::new(password),
                self.accounts.session_cookie(&parts.headers),
                addr,
            )
            .await?;
        let current = CurrentUser {
            id: user.id.clone(),
            email: user.email.clone(),
            role: user.role.to_string(),
        };
        Ok((current, self.accounts.set_cookie(&token)))
    }

    async fn logout(&self, parts: &Parts) -> Result<String, AppError> {
        if let Ok(who) = Authenticated::from_parts(parts) {
            self.accounts.logout(&who.caller, who.client_addr).await;
        }
        Ok(self.accounts.clear_cookie())
    }
}
