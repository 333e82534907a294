//! Who calls, for handlers: the caller the identity middleware resolved
//! (a session or an API key, with its user's role) and the client's
//! address. REST handlers take [`Authenticated`] (or [`Admin`]) as their
//! first extractor after the state, so that a request from nobody is
//! answered 401 before any body extractor reads a byte; the pages' server
//! functions read the same from the request parts.
//!
//! What a caller may do is decided by the services, which take the caller;
//! the few routes that are for admins whatever the object take [`Admin`].

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;

use app::error::AppError;

use super::api::ApiError;
use crate::auth::{Caller, RequestIdentity};

/// The authenticated caller of a request, and the client's address.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The user, and how they proved it (session or API key).
    pub caller: Caller,
    /// The client's address, as the trusted proxies tell it.
    pub client_addr: Option<String>,
}

impl Authenticated {
    /// The caller the identity middleware found for these request parts;
    /// `Unauthenticated` when there is none.
    pub fn from_parts(parts: &Parts) -> Result<Self, AppError> {
        let identity = parts
            .extensions
            .get::<RequestIdentity>()
            .ok_or(AppError::Unauthenticated)?;
        let caller = identity.caller.clone().ok_or(AppError::Unauthenticated)?;
        Ok(Self {
            caller,
            client_addr: identity.client_addr.clone(),
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Self::from_parts(parts).map_err(ApiError)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Authenticated {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(Self::from_parts(parts).ok())
    }
}

/// An authenticated admin (a session, or an admin's API key); 401 for
/// nobody, 403 for anyone else.
#[derive(Debug, Clone)]
pub struct Admin(pub Authenticated);

impl Admin {
    /// The admin calling with these request parts.
    pub fn from_parts(parts: &Parts) -> Result<Self, AppError> {
        let who = Authenticated::from_parts(parts)?;
        if who.caller.is_admin() {
            Ok(Self(who))
        } else {
            Err(AppError::Forbidden)
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Self::from_parts(parts).map_err(ApiError)
    }
}

/// The client's address, for requests that need no caller (sign-in).
#[derive(Debug, Clone)]
pub struct ClientAddr(pub Option<String>);

impl ClientAddr {
    /// The client's address of these request parts.
    pub fn from_parts(parts: &Parts) -> Self {
        Self(
            parts
                .extensions
                .get::<RequestIdentity>()
                .and_then(|identity| identity.client_addr.clone()),
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(parts))
    }
}
