//! Link settings of the release `quiver` binary that keep its resident
//! memory small:
//!
//! - the code that runs is placed together, in the order of
//!   `quiver.order` (written by `scripts/order-code.sh`): the kernel maps
//!   64 KiB around every page of the binary a process touches, so the few
//!   MB that an idle server runs, spread over the whole code section, kept
//!   most of the binary resident;
//! - relative relocations are packed (`DT_RELR`, glibc 2.36 or newer): the
//!   dynamic loader reads kilobytes at start instead of a megabyte.
//!
//! Only on x86_64 Linux, where Rust links with its own `lld` (the ordering
//! file is an lld option), and only for release builds: tests and debug
//! builds link as before. A name in the file that a build does not have is
//! skipped; the file only ever moves code, never changes it.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=quiver.order");
    println!("cargo:rerun-if-env-changed=QUIVER_LINK_ORDER");
    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    let lld_target = env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu");
    // A linker chosen by hand may not be lld; QUIVER_LINK_ORDER=0 opts out too.
    let own_linker = env::var("CARGO_ENCODED_RUSTFLAGS").is_ok_and(|f| f.contains("linker"))
        || env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some();
    let opted_out = env::var("QUIVER_LINK_ORDER").is_ok_and(|v| v == "0");
    if !release || !lld_target || own_linker || opted_out {
        return;
    }
    let order = concat!(env!("CARGO_MANIFEST_DIR"), "/quiver.order");
    for arg in [
        "-Wl,-z,pack-relative-relocs".to_owned(),
        format!("-Wl,--symbol-ordering-file={order}"),
        "-Wl,--no-warn-symbol-ordering".to_owned(),
    ] {
        println!("cargo:rustc-link-arg-bin=quiver={arg}");
    }
}
