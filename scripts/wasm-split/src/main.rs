//! The two steps of `scripts/build.sh` between the compiler and `wasm-opt`:
//!
//! `quiver-wasm-split split <input.wasm> <output dir> <main module> <link module>`
//!
//! Splits the WASM that the hydrate crate links (with `--emit-relocs`) at
//! the split points Leptos's lazy routes mark: `<output dir>/main.wasm` for
//! wasm-bindgen, one `split_*.wasm` per split point and `chunk_*.wasm` for
//! code several of them share, the JavaScript that loads them on demand
//! (`<output dir>/<link module>`, importing `initSync` from `<main module>`).
//! In every module it writes, the asynchronous hydration of type-erased
//! views is replaced by a trap (see [`prune`]).
//!
//! `quiver-wasm-split bindgen <main.wasm> <output dir> <name>`
//!
//! Generates the JavaScript glue for the main module (`<name>.js`, ES module
//! for the browser) and the module it loads (`<name>_bg.wasm`), as the
//! wasm-bindgen CLI does with `--target web --no-typescript
//! --keep-lld-exports --no-demangle`. The library is the CLI's own, at the
//! version the workspace's `wasm-bindgen` is locked to; building it here
//! spares a fresh machine the CLI crate's test runner and its web server.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [step, input, output, main_module, link_module] if step == "split" => split(
            Path::new(input),
            Path::new(output),
            main_module,
            link_module,
        ),
        [step, input, output, name] if step == "bindgen" => {
            bindgen(Path::new(input), Path::new(output), name)
        }
        _ => {
            eprintln!(
                "usage: quiver-wasm-split split <input.wasm> <output dir> <main module> <link module>\n       quiver-wasm-split bindgen <main.wasm> <output dir> <name>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("quiver-wasm-split: {message}");
            ExitCode::FAILURE
        }
    }
}

fn split(input: &Path, output: &Path, main_module: &str, link_module: &str) -> Result<(), String> {
    let wasm = std::fs::read(input).map_err(|e| format!("reading {}: {e}", input.display()))?;
    let main_out = output.join("main.wasm");
    let link_name = format!("./{link_module}");
    let main_import = format!("./{main_module}");
    let mut options = wasm_split_cli_support::Options::new(&wasm);
    options.output_dir = output;
    options.main_out_path = &main_out;
    options.link_name = &link_name;
    options.main_module = &main_import;
    wasm_split_cli_support::transform(options)
        .map_err(|e| format!("splitting {}: {e:?}", input.display()))?;
    let entries =
        std::fs::read_dir(output).map_err(|e| format!("reading {}: {e}", output.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("reading {}: {e}", output.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "wasm") {
            prune(&path)?;
        }
    }
    Ok(())
}

/// What every type-erased view (`AnyView`) carries a pointer to but Quiver
/// never runs: its asynchronous hydration. Leptos hydrates asynchronously
/// only for islands, `hydrate_lazy` and the flat router, none of which the
/// app uses (it loads a page's module first, then hydrates in one
/// synchronous pass). The pointers keep that code alive through `wasm-opt`:
/// one future per view type, about a twentieth of the code.
const NEVER_RUN: &str = "tachys::view::any_view::IntoAny>::into_any::hydrate_async";

/// Replaces the body of each function named with [`NEVER_RUN`] by a trap,
/// so that `wasm-opt` drops the code only they reach. Should the app ever
/// hydrate asynchronously, the trap says so at once (a hydration test fails)
/// instead of anything rendering wrongly.
fn prune(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let mut module = walrus::Module::from_buffer(&bytes)
        .map_err(|e| format!("reading {}: {e:#}", path.display()))?;
    let mut pruned = 0;
    for function in module.funcs.iter_mut() {
        let never_run = function
            .name
            .as_deref()
            .is_some_and(|n| format!("{:#}", rustc_demangle::demangle(n)).contains(NEVER_RUN));
        if !never_run {
            continue;
        }
        if let walrus::FunctionKind::Local(local) = &mut function.kind {
            let entry = local.entry_block();
            let body = &mut local.block_mut(entry).instrs;
            body.clear();
            body.push((walrus::ir::Unreachable {}.into(), Default::default()));
            pruned += 1;
        }
    }
    if pruned > 0 {
        // The names of locals would come out in a form binaryen warns about;
        // nothing after this step reads them.
        let named: Vec<_> = module.locals.iter().map(|l| l.id()).collect();
        for id in named {
            module.locals.get_mut(id).name = None;
        }
        std::fs::write(path, module.emit_wasm())
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}

fn bindgen(input: &Path, output: &Path, name: &str) -> Result<(), String> {
    let mut bindgen = wasm_bindgen_cli_support::Bindgen::new();
    bindgen
        .web(true)
        .and_then(|b| {
            b.input_path(input)
                .out_name(name)
                .typescript(false)
                .keep_lld_exports(true)
                .demangle(false)
                // The CLI's default: the glue finds `<name>_bg.wasm` beside
                // itself when `init` is called without a path.
                .omit_default_module_path(false)
                .generate(output)
        })
        .map_err(|e| format!("generating the glue of {}: {e:#}", input.display()))
}
