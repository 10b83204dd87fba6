//! Builds the default policy guest from source for `wasm32-wasip2`, so the `runretry` binary
//! embeds it without a committed `.wasm`.

use std::path::{Path, PathBuf};

use runretry_guest_build::{guest_target_dir, GuestBuild};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let guest_dir = root.join("guest-default-policy");
    // Sources are tracked through the guest build's dep-info; manifests are not in it.
    for manifest in [guest_dir.join("Cargo.toml"), root.join("kit/Cargo.toml"), root.join("Cargo.lock")] {
        println!("cargo:rerun-if-changed={}", manifest.display());
    }
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    // A prebuilt default policy (for packagers, or builds on a toolchain without the wasm
    // target, such as the fuzzers' nightly); otherwise build it from source.
    println!("cargo:rerun-if-env-changed=RUNRETRY_DEFAULT_POLICY_WASM");
    let wasm = match std::env::var_os("RUNRETRY_DEFAULT_POLICY_WASM") {
        Some(prebuilt) => PathBuf::from(prebuilt),
        // Its own target dir: the test guests build this crate without its export, same name.
        None => GuestBuild::new(&guest_dir.join("Cargo.toml"), guest_target_dir(&out_dir, "default-policy"))
            .arg("-p")
            .arg("runretry-default-policy")
            .run("the default policy guest")
            .join("runretry_default_policy.wasm"),
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
        code.push_str(&format!(
            "    ({:?}, include_str!({:?})),\n",
            relative.display().to_string(),
            file.display().to_string()
        ));
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
