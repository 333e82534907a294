//! Quiver's web app: Leptos components and `#[server]` functions, shared by
//! the server (SSR, feature `ssr`) and the browser (hydrate, feature
//! `hydrate`). Server functions are thin adapters over services that the
//! server provides through Leptos context; this crate holds no SQL and no
//! OAuth logic.
// Leptos view types nest deeply; the compiler needs room to lay them out.
#![recursion_limit = "512"]

pub mod accounts;
pub mod auth;
pub mod components;
pub mod error;
pub mod instance;
pub mod jobs;
pub mod names;
pub mod overview;
pub mod pages;
pub mod providers;
pub mod redirect;
#[cfg(feature = "ssr")]
mod service;
mod shell;
pub mod tokens;
pub mod transfer;
pub mod wire;

#[cfg(feature = "ssr")]
pub(crate) use service::service;
#[cfg(feature = "hydrate")]
pub use shell::load_page_module;
pub use shell::{App, shell};
