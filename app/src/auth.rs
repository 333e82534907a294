//! Signing in and out, and who is signed in.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The signed-in user, as the browser sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    /// User id.
    pub id: String,
    /// Email.
    pub email: String,
    /// `admin` or `user`.
    pub role: String,
}

impl CurrentUser {
    /// Whether the user is an admin.
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }
}

/// What the login page needs to know before anyone signs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginPageInfo {
    /// No account exists yet: the page explains how to create the first admin.
    pub no_users_yet: bool,
}

/// The server side of this module, provided through Leptos context. The
/// adapters below hand it the request and apply the cookie it returns.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait AuthService: Send + Sync + 'static {
    /// Who is calling, from the request's identity.
    fn current_user(
        &self,
        parts: &leptos::server_fn::http_export::request::Parts,
    ) -> Option<CurrentUser>;
    /// Whether any account exists.
    async fn login_page_info(&self) -> Result<LoginPageInfo, AppError>;
    /// Logs in; returns the user and the `Set-Cookie` value.
    async fn login(
        &self,
        parts: &leptos::server_fn::http_export::request::Parts,
        email: String,
        password: String,
    ) -> Result<(CurrentUser, String), AppError>;
    /// Logs out; returns the `Set-Cookie` value that clears the session.
    async fn logout(
        &self,
        parts: &leptos::server_fn::http_export::request::Parts,
    ) -> Result<String, AppError>;
}

#[cfg(feature = "ssr")]
mod adapter {
    use leptos::prelude::*;
    use leptos::server_fn::http_export::HeaderValue;
    use leptos::server_fn::http_export::header::SET_COOKIE;
    use leptos_axum::ResponseOptions;

    use crate::error::AppError;

    pub(super) fn set_cookie(value: &str) -> Result<(), AppError> {
        let response = use_context::<ResponseOptions>().ok_or(AppError::Internal)?;
        let value = HeaderValue::from_str(value).map_err(|_| AppError::Internal)?;
        response.append_header(SET_COOKIE, value);
        Ok(())
    }
}

/// The signed-in user, or `None`.
#[server(prefix = "/rpc")]
pub async fn get_current_user() -> Result<Option<CurrentUser>, AppError> {
    let (service, parts) = crate::service::<dyn AuthService>()?;
    Ok(service.current_user(&parts))
}

/// Facts for the login page.
#[server(prefix = "/rpc")]
pub async fn get_login_page_info() -> Result<LoginPageInfo, AppError> {
    let (service, _) = crate::service::<dyn AuthService>()?;
    crate::error::respond(service.login_page_info().await)
}

/// Signs in with email and password.
#[server(prefix = "/rpc")]
pub async fn login(email: String, password: String) -> Result<CurrentUser, AppError> {
    let (service, parts) = crate::service::<dyn AuthService>()?;
    let (user, cookie) = crate::error::respond(service.login(&parts, email, password).await)?;
    adapter::set_cookie(&cookie)?;
    Ok(user)
}

/// Signs out.
#[server(prefix = "/rpc")]
pub async fn logout() -> Result<(), AppError> {
    let (service, parts) = crate::service::<dyn AuthService>()?;
    let cookie = service.logout(&parts).await?;
    adapter::set_cookie(&cookie)
}
