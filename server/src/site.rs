//! The site folder (the WASM bundle, its JavaScript glue and the CSS) that
//! cargo-leptos builds, and the Leptos options that point at it, so that
//! `quiver serve` needs none of cargo-leptos's `LEPTOS_*` variables.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use leptos::config::{Env, LeptosOptions};

/// The output name set in the workspace's `[[workspace.metadata.leptos]]`.
pub const OUTPUT_NAME: &str = "quiver";
/// The folder inside the site root that holds the bundle.
pub const PKG_DIR: &str = "pkg";

/// Whether `dir` holds a built site.
pub fn is_site(dir: &Path) -> bool {
    dir.join(PKG_DIR)
        .join(format!("{OUTPUT_NAME}.js"))
        .is_file()
}

/// Where the site is: the configured folder (which must hold a built
/// site), else the first of `<binary dir>/site`, `<binary dir>/../site`
/// (cargo-leptos's `target/site` beside `target/release/quiver`),
/// `./target/site` and `./site` that does.
pub fn locate(configured: Option<&Path>) -> Result<Option<PathBuf>, String> {
    if let Some(dir) = configured {
        return if is_site(dir) {
            Ok(Some(dir.to_path_buf()))
        } else {
            Err(format!(
                "invalid setting QUIVER_SITE_DIR: {} does not hold a built site ({PKG_DIR}/{OUTPUT_NAME}.js is missing; build it with `cargo leptos build --release`)",
                dir.display()
            ))
        };
    }
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    let mut candidates = Vec::new();
    if let Some(exe_dir) = exe_dir {
        candidates.push(exe_dir.join("site"));
        candidates.push(exe_dir.join("..").join("site"));
    }
    candidates.push(PathBuf::from("target/site"));
    candidates.push(PathBuf::from("site"));
    Ok(candidates
        .into_iter()
        .find(|dir| is_site(dir))
        .map(|dir| std::path::absolute(&dir).unwrap_or(dir)))
}

/// Leptos options for a site folder (or none: pages still render on the
/// server, but nothing hydrates).
pub fn leptos_options(site_root: Option<&Path>, listen: SocketAddr) -> LeptosOptions {
    let root = site_root.map_or_else(|| "site".to_owned(), |p| p.display().to_string());
    LeptosOptions::builder()
        .output_name(OUTPUT_NAME)
        .site_root(root)
        .site_pkg_dir(PKG_DIR)
        .site_addr(listen)
        .env(Env::PROD)
        .build()
}
