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

/// What a refused sign-in says on the login page.
pub const BAD_CREDENTIALS: &str = "The email or password is not correct.";

/// Why a sign-in was refused, as the login page's address carries it
/// (`failed=`, and `retry=` seconds) after a plain form post. The page says
/// it in its own words, so a link cannot put other words on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefusal {
    /// Wrong email or password (never which).
    BadCredentials,
    /// Too many failed attempts; try again after this many seconds.
    RateLimited {
        /// Seconds to wait.
        retry_after_seconds: u64,
    },
    /// The server is busy checking other passwords.
    Busy,
    /// Anything else went wrong.
    Failed,
}

impl LoginRefusal {
    /// The refusal behind a sign-in error.
    pub fn of(error: &AppError) -> Self {
        match error {
            AppError::Validation { .. } | AppError::Unauthenticated => Self::BadCredentials,
            AppError::RateLimited {
                retry_after_seconds,
            } => Self::RateLimited {
                retry_after_seconds: *retry_after_seconds,
            },
            AppError::Unavailable(_) => Self::Busy,
            _ => Self::Failed,
        }
    }

    /// The login page saying this refusal, keeping `next`.
    pub fn login_page(self, next: Option<&str>) -> String {
        let mut to = String::from("/login?");
        if let Some(next) = next.filter(|n| !n.is_empty()) {
            to.push_str("next=");
            to.push_str(&crate::redirect::query_value(next));
            to.push('&');
        }
        to.push_str(match self {
            Self::BadCredentials => "failed=credentials",
            Self::RateLimited { .. } => "failed=rate_limited",
            Self::Busy => "failed=busy",
            Self::Failed => "failed=error",
        });
        if let Self::RateLimited {
            retry_after_seconds,
        } = self
        {
            to.push_str(&format!("&retry={retry_after_seconds}"));
        }
        to
    }

    /// The refusal a login page's query (`a=1&b=2`, without `?`) carries.
    pub fn from_query(query: &str) -> Option<Self> {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let value = |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, v)| v.as_str())
        };
        Some(match value("failed")? {
            "credentials" => Self::BadCredentials,
            "rate_limited" => Self::RateLimited {
                retry_after_seconds: value("retry").and_then(|v| v.parse().ok()).unwrap_or(60),
            },
            "busy" => Self::Busy,
            _ => Self::Failed,
        })
    }

    /// What the page says.
    pub fn message(self) -> String {
        match self {
            Self::BadCredentials => BAD_CREDENTIALS.to_owned(),
            Self::RateLimited {
                retry_after_seconds,
            } => AppError::RateLimited {
                retry_after_seconds,
            }
            .to_string(),
            Self::Busy => {
                "The server is busy checking other sign-ins; try again in a moment.".into()
            }
            Self::Failed => "Signing in failed; try again.".into(),
        }
    }
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
    use leptos::server_fn::http_export::header::{ACCEPT, HOST, SET_COOKIE};
    use leptos::server_fn::http_export::request::Parts;
    use leptos_axum::ResponseOptions;

    use crate::error::AppError;
    use crate::redirect::{DEFAULT_TARGET, same_origin_target};

    pub(super) fn set_cookie(value: &str) -> Result<(), AppError> {
        let response = use_context::<ResponseOptions>().ok_or(AppError::Internal)?;
        let value = HeaderValue::from_str(value).map_err(|_| AppError::Internal)?;
        response.append_header(SET_COOKIE, value);
        Ok(())
    }

    /// Whether a browser posted the form itself, without the web app (which
    /// asks for JSON).
    pub(super) fn is_plain_form(parts: &Parts) -> bool {
        parts
            .headers
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
    }

    /// Where a signed-in browser goes next: `next` when it names a place on
    /// the host the browser asked for (under either scheme: only the path
    /// is kept, so the browser stays on its own), else the default page.
    pub(super) fn target_after_sign_in(parts: &Parts, next: Option<&str>) -> String {
        let host = parts
            .headers
            .get(HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        next.filter(|next| !next.is_empty())
            .and_then(|next| {
                ["http", "https"]
                    .into_iter()
                    .find_map(|scheme| same_origin_target(next, &format!("{scheme}://{host}")))
            })
            .unwrap_or_else(|| DEFAULT_TARGET.to_owned())
    }
}

/// The signed-in user, or `None`.
#[server(prefix = "/rpc", output = crate::wire::JsonText)]
pub async fn get_current_user() -> Result<Option<CurrentUser>, AppError> {
    let (service, parts) = crate::service::<dyn AuthService>()?;
    Ok(service.current_user(&parts))
}

/// Facts for the login page.
#[server(prefix = "/rpc", output = crate::wire::JsonText)]
pub async fn get_login_page_info() -> Result<LoginPageInfo, AppError> {
    let (service, _) = crate::service::<dyn AuthService>()?;
    crate::error::respond(service.login_page_info().await)
}

/// Signs in with email and password.
///
/// The login page is a plain HTML form: a browser posts it without the web
/// app (`Accept: text/html`), and is then sent on with a redirect, to
/// `next` when it stays on this site, or back to the login page with the
/// reason it was refused. The web app calls the same function and moves on
/// by itself.
#[server(prefix = "/rpc", output = crate::wire::JsonText)]
pub async fn login(
    email: String,
    password: String,
    next: Option<String>,
) -> Result<CurrentUser, AppError> {
    let (service, parts) = crate::service::<dyn AuthService>()?;
    let result = crate::error::respond(service.login(&parts, email, password).await);
    if adapter::is_plain_form(&parts) {
        let to = match &result {
            Ok(_) => adapter::target_after_sign_in(&parts, next.as_deref()),
            Err(error) => LoginRefusal::of(error).login_page(next.as_deref()),
        };
        leptos_axum::redirect(&to);
    }
    let (user, cookie) = result?;
    adapter::set_cookie(&cookie)?;
    Ok(user)
}

/// Signs out.
#[server(prefix = "/rpc", output = crate::wire::JsonText)]
pub async fn logout() -> Result<(), AppError> {
    let (service, parts) = crate::service::<dyn AuthService>()?;
    let cookie = service.logout(&parts).await?;
    adapter::set_cookie(&cookie)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_goes_through_the_address_and_back() {
        for refusal in [
            LoginRefusal::BadCredentials,
            LoginRefusal::RateLimited {
                retry_after_seconds: 42,
            },
            LoginRefusal::Busy,
            LoginRefusal::Failed,
        ] {
            let page = refusal.login_page(Some("/tokens?x=1&y=a b"));
            let (path, query) = page.split_once('?').unwrap();
            assert_eq!(path, "/login");
            assert_eq!(LoginRefusal::from_query(query), Some(refusal), "{page}");
            let next = crate::redirect::next_param(&format!("http://q.example{page}"));
            assert_eq!(next.as_deref(), Some("/tokens?x=1&y=a b"), "{page}");
        }
        assert_eq!(
            LoginRefusal::BadCredentials.login_page(None),
            "/login?failed=credentials"
        );
        assert_eq!(LoginRefusal::from_query("next=/tokens"), None);
    }

    #[test]
    fn the_page_says_a_refusal_in_its_own_words() {
        assert_eq!(
            LoginRefusal::from_query("failed=<b>call+us</b>").map(LoginRefusal::message),
            Some("Signing in failed; try again.".to_owned())
        );
        assert_eq!(
            LoginRefusal::from_query("failed=rate_limited&retry=soon").map(LoginRefusal::message),
            Some("too many attempts; try again in 60 seconds".to_owned())
        );
        assert_eq!(
            LoginRefusal::of(&AppError::Validation {
                field: None,
                message: BAD_CREDENTIALS.into()
            })
            .message(),
            BAD_CREDENTIALS
        );
    }
}
