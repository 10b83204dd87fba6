//! Builds the default policy guest from source for `wasm32-wasip2`, so the `runretry` binary
//! embeds it without a committed `.wasm`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let guest_dir = root.join("guest-default-policy");
    for watched in [guest_dir.join("src"), guest_dir.join("Cargo.toml"), root.join("wit")] {
        println!("cargo:rerun-if-changed={}", watched.display());
    }
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    // A prebuilt default policy (for packagers, or builds on a toolchain without the wasm
    // target, such as the fuzzers' nightly); otherwise build it from source.
    println!("cargo:rerun-if-env-changed=RUNRETRY_DEFAULT_POLICY_WASM");
    let wasm = match std::env::var_os("RUNRETRY_DEFAULT_POLICY_WASM") {
        Some(prebuilt) => PathBuf::from(prebuilt),
        None => build_guest(&guest_dir.join("Cargo.toml"), &guest_target_dir(&out_dir), "runretry_default_policy"),
    };
    std::fs::copy(&wasm, out_dir.join("default_policy.wasm")).expect("copy the default policy");
    embed_default_suite(&root.join("tests/conformance"), &out_dir.join("default_suite.rs"));
}

/// Write `&[(path, include_str!(file)), ...]` for every `*.json` under the conformance dir, so
/// `runretry conformance --suite default` works from anywhere.
fn embed_default_suite(dir: &Path, out: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files = Vec::new();
    collect_json(dir, &mut files);
    files.sort();
    let mut code = String::from("&[\n");
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let relative = file.strip_prefix(dir.parent().unwrap().parent().unwrap()).unwrap();
        code.push_str(&format!("    ({:?}, include_str!({:?})),\n", relative.display().to_string(), file.display().to_string()));
    }
    code.push(']');
    std::fs::write(out, code).expect("write the embedded suite");
}

fn collect_json(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect_json(&path, files);
        } else if path.extension().is_some_and(|x| x == "json") {
            files.push(path);
        }
    }
}

/// One guest target dir beside the host's (`target/wasm-guests`), shared by debug and release
/// builds. It must differ from the outer build's dir: that one is locked while we run.
fn guest_target_dir(out_dir: &Path) -> PathBuf {
    let target_root = out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").exists())
        .unwrap_or_else(|| out_dir.ancestors().nth(4).unwrap());
    // Its own dir: the test guests build this crate without its export, under the same name.
    target_root.join("wasm-guests/default-policy")
}

/// `cargo build --release --target wasm32-wasip2` of one guest crate; returns the component.
fn build_guest(manifest: &Path, target_dir: &Path, crate_name: &str) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir)
        // The outer build's flags are for the host, not for a Wasm guest.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        // Guests are small: whole-program optimisation is cheap here and makes them faster.
        .env("CARGO_PROFILE_RELEASE_LTO", "true")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .status()
        .expect("run cargo to build the policy guest");
    if !status.success() {
        panic!(
            "building the {crate_name} guest failed; is the target installed? \
             Run `rustup target add wasm32-wasip2`."
        );
    }
    target_dir.join("wasm32-wasip2/release").join(format!("{crate_name}.wasm"))
}
