//! How a server function reaches the server's side of it: the service the
//! server provides through Leptos context (one trait per module, such as
//! `dyn TokensService`), and the request's parts, from which the service
//! learns who calls.

use std::sync::Arc;

use leptos::prelude::use_context;
use leptos::server_fn::http_export::request::Parts;

use crate::error::AppError;

/// The service `S` and the current request's parts; `Internal` when the
/// server provided neither (a server that was not wired up).
pub(crate) fn service<S: ?Sized + Send + Sync + 'static>() -> Result<(Arc<S>, Parts), AppError> {
    let service = use_context::<Arc<S>>().ok_or(AppError::Internal)?;
    let parts = use_context::<Parts>().ok_or(AppError::Internal)?;
    Ok((service, parts))
}
