//! The site as a browser gets it from the real binary over HTTP: the bundle
//! precompressed and cached for good under its content hash, pages never
//! stored, and server-function URLs that every build of the server shares.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use leptos::server_fn::xxhash_rust::const_xxh64::xxh64;

use crate::binary::{Running, quiver};
use crate::support::process::free_port;

const HASH: &str = "0123456789abcdef0123";

/// A site as `scripts/build.sh` lays it out, compressed by the build's own
/// compressor: `(file name, content)` of the bundle.
fn built_site(root: &Path) -> Vec<(String, Vec<u8>)> {
    let pkg = root.join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(
        root.join("hash.txt"),
        format!("js: {HASH}\nwasm: {HASH}\ncss: {HASH}\n"),
    )
    .unwrap();
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    for i in 0..20_000u32 {
        wasm.extend_from_slice(&(i % 251).to_le_bytes());
    }
    let files = vec![
        (
            format!("quiver.{HASH}.js"),
            "export function hydrate() {}\n".repeat(400).into_bytes(),
        ),
        (format!("quiver.{HASH}.wasm"), wasm.clone()),
        (
            format!("quiver.{HASH}.css"),
            ".button { color: red; }\n".repeat(400).into_bytes(),
        ),
        // The loader of the pages loaded on demand, a page group's module
        // and a module that groups share.
        (
            format!("__wasm_split.{HASH}.js"),
            "export const load = () => fetch(\"./chunk_0.wasm\");\n"
                .repeat(400)
                .into_bytes(),
        ),
        (format!("split_other_pages_1.{HASH}.wasm"), wasm.clone()),
        (format!("chunk_0.{HASH}.wasm"), wasm),
    ];
    let mut paths = Vec::new();
    for (name, content) in &files {
        std::fs::write(pkg.join(name), content).unwrap();
        paths.push(pkg.join(name));
    }
    let compressor = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/compress.mjs");
    let status = Command::new("node")
        .arg(compressor)
        .args(&paths)
        .status()
        .expect("node must be installed (./dev test installs it)");
    assert!(status.success());
    // Not part of the hashed bundle: revalidated on each use.
    std::fs::write(pkg.join("notes.txt"), "not hashed").unwrap();
    files
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }
}

async fn get(url: &str, accept_encoding: Option<&str>) -> Answer {
    // This client decodes nothing: the test sees the bytes on the wire.
    let mut request = reqwest::Client::new().get(url);
    if let Some(value) = accept_encoding {
        request = request.header("accept-encoding", value);
    }
    let response = request.send().await.unwrap();
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.bytes().await.unwrap().to_vec(),
    }
}

fn decode(encoding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "br" => {
            brotli_decompressor::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        "gzip" => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap();
        }
        "" => out.extend_from_slice(body),
        other => panic!("unexpected Content-Encoding {other}"),
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundle_is_sent_precompressed_and_cached_for_good_and_pages_are_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let files = built_site(&site);
    let port = free_port();
    let mut cmd = quiver(&dir.path().join("data"));
    cmd.env("QUIVER_SITE_DIR", &site).arg("serve");
    let running = Running::start(cmd, port);
    let base = running.base.clone();

    for (name, original) in &files {
        let url = format!("{base}/pkg/{name}");
        for (accept, expected) in [
            // What Chromium sends: brotli, the smallest, wins.
            (Some("gzip, deflate, br, zstd"), "br"),
            (Some("br"), "br"),
            (Some("gzip"), "gzip"),
            (Some("gzip;q=1.0, br;q=0.5"), "gzip"),
            (Some("identity"), ""),
            (None, ""),
        ] {
            let answer = get(&url, accept).await;
            let what = format!("{name} with Accept-Encoding {accept:?}");
            assert_eq!(answer.status, 200, "{what}");
            assert_eq!(answer.header("content-encoding"), expected, "{what}");
            assert!(
                answer
                    .header("vary")
                    .to_ascii_lowercase()
                    .contains("accept-encoding"),
                "{what}: Vary {:?}",
                answer.header("vary")
            );
            assert_eq!(
                answer.header("cache-control"),
                "public, max-age=31536000, immutable",
                "{what}"
            );
            assert_eq!(&decode(expected, &answer.body), original, "{what}");
            if !expected.is_empty() {
                assert!(
                    answer.body.len() < original.len() / 4,
                    "{what} is barely compressed"
                );
            }
            let content_type = match name.rsplit('.').next().unwrap() {
                "js" => "text/javascript",
                "wasm" => "application/wasm",
                _ => "text/css",
            };
            assert!(
                answer.header("content-type").starts_with(content_type),
                "{what}: {}",
                answer.header("content-type")
            );
        }
    }

    // A file whose name carries no hash is checked before each use; a
    // missing one is not cached at all.
    let answer = get(&format!("{base}/pkg/notes.txt"), Some("br, gzip")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("cache-control"), "no-cache");
    assert_eq!(answer.body, b"not hashed");
    let answer = get(&format!("{base}/pkg/quiver.{HASH}.map"), Some("br")).await;
    assert_eq!(answer.status, 404);
    assert!(!answer.header("cache-control").contains("immutable"));

    // Pages name the hashed bundle and are never stored, nor is the
    // not-found page. They travel compressed as the browser takes it.
    for path in ["/login", "/no-such-page"] {
        let gzipped = get(&format!("{base}{path}"), Some("gzip")).await;
        assert_eq!(gzipped.header("content-encoding"), "gzip", "{path}");
        assert!(
            String::from_utf8(decode("gzip", &gzipped.body))
                .unwrap()
                .starts_with("<!DOCTYPE html>"),
            "{path} gzipped"
        );
        let answer = get(&format!("{base}{path}"), Some("gzip, deflate, br")).await;
        assert!(
            answer.header("content-type").starts_with("text/html"),
            "{path}"
        );
        assert_eq!(answer.header("cache-control"), "no-store", "{path}");
        assert_eq!(answer.header("content-encoding"), "br", "{path}");
        assert!(
            answer
                .header("vary")
                .to_ascii_lowercase()
                .contains("accept-encoding"),
            "{path}: Vary {:?}",
            answer.header("vary")
        );
        let page = String::from_utf8(decode("br", &answer.body)).unwrap();
        assert!(
            answer.body.len() < page.len() * 2 / 3,
            "{path}: {} B compressed of {} B",
            answer.body.len(),
            page.len()
        );
        let plain = get(&format!("{base}{path}"), None).await;
        assert_eq!(
            plain.header("content-encoding"),
            "",
            "{path} without Accept-Encoding"
        );
        assert!(
            String::from_utf8(plain.body)
                .unwrap()
                .starts_with("<!DOCTYPE html>"),
            "{path} without Accept-Encoding"
        );
        // The login page is a plain form: the stylesheet, no web app.
        let web_app = path != "/login";
        for ext in ["js", "wasm", "css"] {
            let named = page.contains(&format!("/pkg/quiver.{HASH}.{ext}"));
            if ext == "css" || web_app {
                assert!(named, "{path} lacks the hashed .{ext}: {page}");
            } else {
                assert!(!named, "{path} loads the web app's .{ext}: {page}");
            }
        }
    }
    let (status, err) = running.stop();
    assert!(status.success(), "exit {status}: {err}");
}

/// The modules of the `app` crate that can hold server functions: one per
/// source file, and one per inline `mod name {` in it.
fn app_modules() -> Vec<String> {
    fn walk(dir: &Path, module: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
            if path.is_dir() {
                walk(&path, &format!("{module}::{stem}"), out);
                continue;
            }
            let own = match stem.as_str() {
                "lib" | "mod" => module.to_owned(),
                _ => format!("{module}::{stem}"),
            };
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines() {
                let line = line.trim_start().trim_start_matches("pub ");
                if let Some(name) = line.strip_prefix("mod ").and_then(|r| r.strip_suffix(" {")) {
                    out.push(format!("{own}::{name}"));
                }
            }
            out.push(own);
        }
    }
    let mut out = Vec::new();
    walk(
        &PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../app/src")),
        "app",
        &mut out,
    );
    out
}

#[test]
fn server_function_urls_come_from_a_fixed_key_not_from_where_the_code_was_built() {
    // Set for every cargo command by the workspace's .cargo/config.toml.
    let key = env!("SERVER_FN_OVERRIDE_KEY");
    let app_dir = std::fs::canonicalize(concat!(env!("CARGO_MANIFEST_DIR"), "/../app")).unwrap();
    let modules = app_modules();
    let keyed: BTreeSet<u64> = modules
        .iter()
        .map(|m| xxh64(format!("{key}:{m}").as_bytes(), 0))
        .collect();
    let by_path: BTreeSet<u64> = modules
        .iter()
        .map(|m| xxh64(format!("{}:{m}", app_dir.display()).as_bytes(), 0))
        .collect();

    let mut hashed = 0;
    for (url, _) in leptos::server_fn::axum::server_fn_paths() {
        let rest = url
            .strip_prefix("/rpc/")
            .unwrap_or_else(|| panic!("{url} is not under /rpc/"));
        let digits = &rest[rest.trim_end_matches(|c: char| c.is_ascii_digit()).len()..];
        if digits.is_empty() {
            // An endpoint written out in the code (the import upload).
            continue;
        }
        let hash: u64 = digits
            .parse()
            .unwrap_or_else(|_| panic!("{url}: {digits} is not a hash"));
        assert!(
            keyed.contains(&hash),
            "{url}: its hash is not the fixed key's for any app module"
        );
        assert!(
            !by_path.contains(&hash),
            "{url}: its hash comes from the checkout's path"
        );
        hashed += 1;
    }
    assert!(hashed >= 30, "only {hashed} server functions with a hash");
}
