//! Quiver's server: the web app (SSR + server functions), the HTTP
//! endpoints, storage and secret sealing. `main.rs` is the CLI around it.
// Leptos view types nest deeply; the compiler needs room to lay them out.
#![recursion_limit = "512"]

pub mod account;
pub mod audit;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod client_addr;
pub mod clock;
pub mod commands;
pub mod config;
pub mod db;
pub mod events;
pub mod files;
pub mod http;
pub mod key_check;
#[cfg(test)]
mod layers;
pub mod master_key;
pub mod metrics;
pub mod oauth;
pub mod providers;
pub mod rotation;
pub mod schedule;
pub mod seal;
pub mod secret;
pub mod site;
pub mod startup;
pub mod telemetry;
pub mod tokens;
pub mod transfer;
pub mod ui;

/// Quiver's version, from Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
