//! The layer rule of `docs/ARCHITECTURE.md`, checked: every `crate::` path
//! in `server/src` names a module of its own layer or a lower one.
//!
//! The imports that break the rule today are listed in [`KNOWN_VIOLATIONS`].
//! The check fails on any other, and on a listed one that no longer occurs,
//! so the list only shrinks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, lowest first, and the top-level modules of each.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "core",
        &[
            "clock",
            "files",
            "master_key",
            "metrics",
            "seal",
            "secret",
            "VERSION",
        ],
    ),
    ("storage", &["cache", "db", "key_check"]),
    (
        "services",
        &[
            "account",
            "audit",
            "auth",
            "client_addr",
            "events",
            "oauth",
            "providers",
            "rotation",
            "schedule",
            "tokens",
            "transfer",
        ],
    ),
    ("composition", &["config", "startup", "telemetry"]),
    ("edges", &["cli", "commands", "http", "site", "ui"]),
];

/// Imports that point up today: `importing module -> imported module`.
/// Remove a line when its import is gone; never add one.
const KNOWN_VIOLATIONS: &[&str] = &[];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// The module path of a file under `src`: `tokens::engine`, `db`.
fn module_path(relative: &Path) -> String {
    let mut parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|last| last == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// The first segment of every `crate::` path in `source`, comment lines
/// left out; `crate::{a::b, c}` names `a` and `c`.
fn imported_modules(source: &str) -> Vec<String> {
    let code: String = source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let ident = |at: usize| -> String {
        code[at..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in code.match_indices("crate::") {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$') {
            continue;
        }
        let rest = at + "crate::".len();
        if bytes.get(rest) == Some(&b'{') {
            // A group: the first segment of each item at depth one.
            let mut depth = 0usize;
            let mut expect_item = true;
            for (offset, ch) in code[rest..].char_indices() {
                match ch {
                    '{' => {
                        depth += 1;
                        expect_item = depth == 1;
                    }
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => expect_item = true,
                    c if expect_item && depth == 1 && (c.is_alphanumeric() || c == '_') => {
                        found.push(ident(rest + offset));
                        expect_item = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                found.push(name);
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_import_points_to_its_own_layer_or_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    // violation -> the files it occurs in
    let mut violations: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut unplaced = BTreeSet::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap().to_owned();
        // The binary reaches the library as `server::`, and is the top edge;
        // the crate root only declares the modules; this file names paths.
        if ["main.rs", "lib.rs", "layers.rs"].contains(&relative.to_str().unwrap()) {
            continue;
        }
        let module = module_path(&relative);
        let top = module.split("::").next().unwrap().to_owned();
        let Some(own) = layer_of(&top) else {
            unplaced.insert(top);
            continue;
        };
        let source = std::fs::read_to_string(&file).unwrap();
        for imported in imported_modules(&source) {
            match layer_of(&imported) {
                None => {
                    unplaced.insert(imported);
                }
                Some(layer) if layer > own => {
                    violations
                        .entry(format!("{module} -> {imported}"))
                        .or_default()
                        .insert(relative.display().to_string());
                }
                Some(_) => {}
            }
        }
    }
    assert!(
        unplaced.is_empty(),
        "modules in no layer (add them to LAYERS and docs/ARCHITECTURE.md): {unplaced:?}"
    );
    println!(
        "layer check: {} imports point up, all known:",
        violations.len()
    );
    for (violation, files) in &violations {
        println!(
            "  {violation}  ({})",
            files.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let new: Vec<_> = violations
        .keys()
        .filter(|v| !KNOWN_VIOLATIONS.contains(&v.as_str()))
        .collect();
    assert!(
        new.is_empty(),
        "imports that point to a higher layer (see docs/ARCHITECTURE.md): {new:?}"
    );
    let gone: Vec<_> = KNOWN_VIOLATIONS
        .iter()
        .filter(|v| !violations.contains_key(**v))
        .collect();
    assert!(
        gone.is_empty(),
        "known violations that no longer occur: remove them from KNOWN_VIOLATIONS: {gone:?}"
    );
}

#[test]
fn imports_are_read_from_paths_and_groups() {
    let source = "use crate::db::{self, DbError};\n\
                  use crate::{clock::SharedClock, seal::{Sealer, SealSlot}, secret};\n\
                  // use crate::http::Ignored;\n\
                  let x = crate::config::env_name(\"k\");\n\
                  macro_rules! m { () => { $crate::ignored }; }\n";
    assert_eq!(
        imported_modules(source),
        ["db", "clock", "seal", "secret", "config"]
    );
    assert_eq!(module_path(Path::new("tokens/engine.rs")), "tokens::engine");
    assert_eq!(module_path(Path::new("db/mod.rs")), "db");
    assert_eq!(layer_of("startup"), Some(3));
}
