//! The site folder (the WASM bundle, its JavaScript glue and the CSS) that
//! `scripts/build.sh` builds, and the Leptos options that point at it, so
//! that `quiver serve` needs no `LEPTOS_*` variables.
//!
//! A release site names its bundle files after one hash of their content
//! (`pkg/quiver.<hash>.js`, `.wasm`, `.css`, and the pages loaded on demand:
//! their loader `pkg/__wasm_split.<hash>.js`, which the JavaScript glue
//! imports, and their modules `pkg/<module>.<hash>.wasm`) and records it in
//! `hash.txt` at its root, in the `js: <hash>` lines cargo-leptos writes.
//! The server reads it from the site (not from beside the binary, as
//! Leptos's own `hash-files` does), so the site can live anywhere.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use leptos::config::{Env, LeptosOptions};

/// The output name set in the workspace's `[[workspace.metadata.leptos]]`.
pub const OUTPUT_NAME: &str = "quiver";
/// The folder inside the site root that holds the bundle.
pub const PKG_DIR: &str = "pkg";

/// The file that names the bundle's content hash, at the site's root.
pub const HASH_FILE: &str = "hash.txt";

/// The name the bundle's files carry in `pkg/`: `quiver.<hash>` when the
/// site's `hash.txt` gives one hash for the JavaScript, the WASM and the
/// CSS, else `quiver`.
pub fn bundle_name(site_root: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(site_root.join(HASH_FILE)) else {
        return OUTPUT_NAME.to_owned();
    };
    let hash_of = |kind: &str| {
        text.lines().find_map(|line| {
            let (name, hash) = line.split_once(':')?;
            (name.trim() == kind).then(|| hash.trim().to_owned())
        })
    };
    match (hash_of("js"), hash_of("wasm"), hash_of("css")) {
        (Some(js), Some(wasm), Some(css))
            if !js.is_empty()
                && js == wasm
                && js == css
                && js
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            format!("{OUTPUT_NAME}.{js}")
        }
        _ => OUTPUT_NAME.to_owned(),
    }
}

/// Whether `dir` holds a built site.
pub fn is_site(dir: &Path) -> bool {
    dir.join(PKG_DIR)
        .join(format!("{}.js", bundle_name(dir)))
        .is_file()
}

/// Where the site is: the configured folder (which must hold a built
/// site), else the first of `<binary dir>/site`, `<binary dir>/../site`
/// (the build's `target/site` beside `target/release/quiver`),
/// `./target/site` and `./site` that does.
pub fn locate(configured: Option<&Path>) -> Result<Option<PathBuf>, String> {
    if let Some(dir) = configured {
        return if is_site(dir) {
            Ok(Some(dir.to_path_buf()))
        } else {
            Err(format!(
                "invalid setting QUIVER_SITE_DIR: {} does not hold a built site ({PKG_DIR}/{}.js is missing; build it with `./dev build`)",
                dir.display(),
                bundle_name(dir)
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
    let name = site_root.map_or_else(|| OUTPUT_NAME.to_owned(), bundle_name);
    LeptosOptions::builder()
        .output_name(name)
        .site_root(root)
        .site_pkg_dir(PKG_DIR)
        .site_addr(listen)
        .env(Env::PROD)
        .build()
}
