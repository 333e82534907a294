//! The HTTP surface: the Leptos app and its server functions, static site
//! files, `/healthz`, and graceful shutdown.

pub mod api;
pub mod assets;
mod callback;
pub mod caller;
mod health;
mod metrics;
pub mod security;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRef, MatchedPath};
use axum::http::header::CONTENT_SECURITY_POLICY;
use axum::http::{HeaderValue, Request};
use axum::routing::get;
use axum::{Router, middleware};
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, file_and_error_handler_with_context, generate_route_list};
use tower_http::trace::TraceLayer;

use app::accounts::AccountsService;
use app::auth::AuthService;
use app::instance::InstanceService;
use app::jobs::JobsService;
use app::overview::OverviewService;
use app::providers::ProvidersService;
use app::tokens::TokensService;
use app::transfer::TransferService;

use crate::auth;
use crate::startup::Instance;
use crate::ui::{
    AccountsFacade, AuthFacade, InstanceFacts, JobsFacade, OverviewFacade, ProvidersFacade,
    TokensFacade, TransferFacade,
};

/// Largest request body the API and server functions accept.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The opened instance (shared: handlers clone the state per request).
    pub instance: Arc<Instance>,
    /// Where the site files are, for SSR and static files.
    pub leptos_options: LeptosOptions,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// Builds the whole router.
pub fn router(state: AppState) -> Router {
    let instance_service: Arc<dyn InstanceService> =
        Arc::new(InstanceFacts::new((*state.instance).clone()));
    let auth_service: Arc<dyn AuthService> =
        Arc::new(AuthFacade::new(state.instance.accounts.clone()));
    let accounts_service: Arc<dyn AccountsService> = Arc::new(AccountsFacade::new(
        state.instance.accounts.clone(),
        state.instance.tokens.tokens.usage.clone(),
    ));
    let tokens_service: Arc<dyn TokensService> =
        Arc::new(TokensFacade::new((*state.instance).clone()));
    let providers_service: Arc<dyn ProvidersService> =
        Arc::new(ProvidersFacade::new((*state.instance).clone()));
    let jobs_service: Arc<dyn JobsService> = Arc::new(JobsFacade::new((*state.instance).clone()));
    let overview_service: Arc<dyn OverviewService> =
        Arc::new(OverviewFacade::new((*state.instance).clone()));
    let transfer_service: Arc<dyn TransferService> =
        Arc::new(TransferFacade::new((*state.instance).clone()));
    let context = move || {
        provide_context(tokens_service.clone());
        provide_context(providers_service.clone());
        provide_context(jobs_service.clone());
        provide_context(overview_service.clone());
        provide_context(transfer_service.clone());
        provide_context(instance_service.clone());
        provide_context(accounts_service.clone());
        provide_context(auth_service.clone());
        // Pages get a policy that admits exactly this response's scripts.
        if let (Some(nonce), Some(response)) = (
            leptos::nonce::use_nonce(),
            leptos::prelude::use_context::<leptos_axum::ResponseOptions>(),
        ) && let Ok(value) = HeaderValue::from_str(&security::page_csp(&nonce))
        {
            response.insert_header(CONTENT_SECURITY_POLICY, value);
        }
    };
    let routes = generate_route_list(app::App);
    let options = state.leptos_options.clone();
    let accounts = Arc::new(state.instance.accounts.clone());
    let rpc_limits = security::RpcBodyLimits::new(state.instance.config.import_max_bytes);
    // Programs ask for access tokens far more often than anything else is
    // asked for, so their route is served beside the layers below, which
    // do nothing for it but cost time: it identifies its caller and sets
    // the security headers itself, takes no body, and answers no page or
    // server function. Its outcome and latency go to the metrics.
    let access_token = Router::new()
        .route(
            "/api/v1/tokens/{id}/access-token",
            get(api::oauth::access_token),
        )
        .with_state(state.instance.clone());
    let pkg = assets::pkg_service(&options);
    Router::new()
        .route("/healthz", get(health::healthz))
        .nest_service("/pkg", pkg)
        .route("/metrics", get(metrics::metrics))
        .nest("/api/v1", api::routes())
        .route("/oauth/jwks/{provider_id}", get(api::oauth::jwks))
        .route(
            "/oauth/callback",
            get(callback::callback_get).post(callback::callback_post),
        )
        .leptos_routes_with_context(&state, routes, context.clone(), move || {
            app::shell(options.clone())
        })
        .fallback(file_and_error_handler_with_context::<AppState, _>(
            context,
            app::shell,
        ))
        // Inside the router-wide limit, which bounds every body a server
        // function reads before it runs.
        .layer(middleware::from_fn_with_state(
            rpc_limits,
            security::limit_rpc_bodies,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            accounts,
            auth::identify_request,
        ))
        .layer(middleware::from_fn(security::bad_server_fn_input_is_400))
        .layer(middleware::from_fn(security::refuse_cross_site_writes))
        .layer(middleware::from_fn(security::security_headers))
        .layer(middleware::from_fn(assets::pages_not_stored))
        .layer(assets::pages_compressed())
        .layer(middleware::from_fn_with_state(
            state.instance.config.is_https(),
            security::strict_transport_security,
        ))
        .layer(
            // Spans carry the matched route, never the raw URI: OAuth
            // callbacks carry codes and state in their query.
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let route = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("(unmatched)", MatchedPath::as_str);
                tracing::info_span!("http", method = %request.method(), route)
            }),
        )
        .with_state(state)
        .merge(access_token)
}

/// The process's stop request (SIGTERM or Ctrl-C), listened for from the
/// moment it is installed.
///
/// Install it before the listener is bound: a SIGTERM that arrives after
/// the port opens but before anything listens for it would otherwise take
/// the default action and kill the process without a graceful stop.
pub struct ShutdownSignal {
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignal {
    /// Starts listening for SIGTERM and SIGINT now.
    #[must_use]
    pub fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                terminate: signal(SignalKind::terminate()).ok(),
                interrupt: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    /// Resolves when the process is asked to stop.
    pub async fn wait(self) {
        #[cfg(unix)]
        {
            async fn next(signal: Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                () = next(self.terminate) => {},
                () = next(self.interrupt) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown requested; finishing open requests");
    }
}

/// How long open requests get to finish after a shutdown request.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
