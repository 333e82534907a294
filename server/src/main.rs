//! `quiver`: serve, migrate, version.
// Leptos view types nest deeply; the compiler needs room to lay them out.
#![recursion_limit = "512"]

use std::process::ExitCode;

use anyhow::anyhow;
use clap::Parser;

use server::cli::{Cli, Command};
use server::config::Config;
use server::http::{AppState, SHUTDOWN_GRACE};
use server::{commands, db, master_key, site, startup, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    let is_serve = command == Command::Serve;
    if command == Command::Version {
        println!("quiver {}", server::VERSION);
        return ExitCode::SUCCESS;
    }
    let env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k != "QUIVER_CONFIG");
    let (config, warnings) = match Config::load(cli.config.as_deref(), env) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("quiver: {e}");
            return ExitCode::from(2);
        }
    };
    // Commands other than serve stay quiet unless asked otherwise.
    let filter = if is_serve || std::env::var_os("QUIVER_LOG").is_some() {
        config.log_filter.clone()
    } else {
        "warn".to_owned()
    };
    telemetry::init(&filter, config.log_format);
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("quiver: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        match command {
            Command::Migrate => migrate(config).await,
            Command::Serve | Command::Version => serve(config).await,
            Command::User(command) => {
                let instance = startup::open(config).await?;
                commands::user(&instance, command).await
            }
            Command::ApiKey(command) => {
                let instance = startup::open(config).await?;
                commands::api_key(&instance, command).await
            }
            Command::Audit { tail } => {
                let instance = startup::open(config).await?;
                commands::audit_tail(&instance, tail).await
            }
            Command::Export {
                out,
                providers,
                tokens,
                include_secrets,
            } => {
                let instance = startup::open(config).await?;
                commands::export(&instance, &out, providers, tokens, include_secrets).await
            }
            Command::Import {
                file,
                apply,
                on_conflict,
                json,
            } => {
                let instance = startup::open(config).await?;
                commands::import(&instance, &file, apply, on_conflict, json).await
            }
            Command::RotateKey { new_key_file } => {
                let (old, _) = master_key::load(&config.master_key)?;
                let db = db::connect(&config.database_url, None).await?;
                db::migrate(&db).await?;
                commands::rotate_key(&db, &old, &new_key_file).await
            }
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("quiver: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    let db = db::connect(&config.database_url, None).await?;
    db::migrate(&db).await?;
    let applied = db::applied_migrations(&db).await?;
    println!(
        "database {} is up to date: {} migrations applied ({})",
        config.database_url,
        applied.len(),
        applied.join(", ")
    );
    Ok(db.close().await?)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let site_root = site::locate(config.site_dir.as_deref()).map_err(anyhow::Error::msg)?;
    if site_root.is_none() {
        tracing::warn!(
            "site files not found (looked beside the binary, in ./target/site and ./site): pages \
             render but will not be interactive; build them with `./dev build` \
             or set QUIVER_SITE_DIR"
        );
    }
    let listen = config.listen;
    let leptos_options = site::leptos_options(site_root.as_deref(), listen);
    let instance = startup::open(config).await?;
    let db = instance.db.clone();
    let stop_request = server::http::ShutdownSignal::install();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow!("invalid setting QUIVER_LISTEN: cannot listen on {listen}: {e}"))?;
    tracing::info!(
        listen = %listen,
        public_url = %instance.config.public_url_text(),
        database = instance.config.database_url.kind().label(),
        site = %site_root.as_deref().map_or("(none)".into(), |p| p.display().to_string()),
        version = server::VERSION,
        "Quiver is serving on http://{listen}"
    );
    if !instance.config.is_https() {
        tracing::warn!(
            public_url = %instance.config.public_url_text(),
            "QUIVER_PUBLIC_URL is not https: OAuth tokens may not work correctly"
        );
    }
    let scheduler = instance.start_scheduler();
    let change_listener = instance.changes.follow(&instance.db);
    let api_keys = instance.accounts.api_keys.clone();
    let key_uses = api_keys.write_uses_regularly();
    let token_usage = instance.tokens.tokens.usage.clone();
    let token_uses = token_usage.write_regularly();
    let app = server::http::router(AppState {
        instance: instance.into(),
        leptos_options,
    });
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        stop_request.wait().await;
        let _ = stopping_tx.send(());
    });
    let server = async { server.await.map_err(|e| anyhow!("server error: {e}")) };
    // After a shutdown request, open requests get SHUTDOWN_GRACE to finish.
    let deadline = async {
        let _ = stopping_rx.await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => result?,
        () = deadline => tracing::warn!("open requests did not finish in time; stopping anyway"),
    }
    if let Some(scheduler) = scheduler {
        scheduler.abort();
    }
    if let Some(listener) = change_listener {
        listener.abort();
    }
    key_uses.abort();
    if let Err(e) = api_keys.write_uses().await {
        tracing::warn!(error = %e, "could not store when API keys were last used");
    }
    token_uses.abort();
    if let Err(e) = token_usage.write().await {
        tracing::warn!(error = %e, "could not store how tokens were used");
    }
    db.close().await?;
    tracing::info!("stopped");
    Ok(())
}
