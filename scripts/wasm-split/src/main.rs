//! `quiver-wasm-split <input.wasm> <output dir> <main module> <link module>`
//!
//! Splits the WASM that the hydrate crate links (with `--emit-relocs`) at
//! the split points Leptos's lazy routes mark: `<output dir>/main.wasm` for
//! wasm-bindgen, one `split_*.wasm` per split point and `chunk_*.wasm` for
//! code several of them share, the JavaScript that loads them on demand
//! (`<output dir>/<link module>`, importing `initSync` from `<main module>`).

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output, main_module, link_module] = args.as_slice() else {
        eprintln!("usage: quiver-wasm-split <input.wasm> <output dir> <main module> <link module>");
        return ExitCode::from(2);
    };
    match split(
        Path::new(input),
        Path::new(output),
        main_module,
        link_module,
    ) {
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
        .map(|_| ())
        .map_err(|e| format!("splitting {}: {e:?}", input.display()))
}
