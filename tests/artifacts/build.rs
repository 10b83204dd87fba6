//! Builds every guest the tests use, from source, for wasm32-wasip2 (the idea of wasmtime's
//! `crates/test-programs/artifacts`): the test guests of `tests/guests` (one component per
//! `src/bin/*.rs`, all built by one cargo invocation) and every example policy in `examples/`.
//! Writes constants for their paths and `foreach_*!` macros, so a guest without a test is a
//! test error.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use runretry_guest_build::{guest_target_dir, GuestBuild};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../..");
    let root = root.canonicalize().unwrap();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let target_dir = guest_target_dir(&out_dir, "test-guests");
    let guests = root.join("tests/guests");
    println!("cargo:rerun-if-env-changed=RUNRETRY_SKIP_NON_RUST_EXAMPLES");
    // Rust sources are tracked through the builds' dep-info; these are not in it.
    println!("cargo:rerun-if-changed={}", guests.join("Cargo.toml").display());
    println!("cargo:rerun-if-changed={}", guests.join("src/bin").display());
    println!("cargo:rerun-if-changed={}", guests.join("build.rs").display());
    println!("cargo:rerun-if-changed={}", root.join("examples").display());

    // Every test guest at once: one component per src/bin/*.rs.
    let built = GuestBuild::new(&guests.join("Cargo.toml"), target_dir.clone()).arg("--bins").run("the test guests");
    let mut code = String::new();
    let mut hostile_macro = String::new();
    for bin in bin_names(&guests.join("src/bin")) {
        let wasm = copy_component(&built.join(format!("{bin}.wasm")), &out_dir);
        match bin.strip_prefix("hostile_") {
            Some(feature) => {
                writeln!(hostile_macro, "        $m!({feature}, {:?});", wasm.display().to_string()).unwrap()
            }
            None => writeln!(
                code,
                "/// The `{bin}` test guest.\npub const {}: &str = {:?};",
                bin.to_uppercase(),
                wasm.display().to_string()
            )
            .unwrap(),
        }
    }
    writeln!(
        code,
        "/// Calls `$m!(feature, path)` for every hostile guest.\n#[macro_export]\nmacro_rules! foreach_hostile {{\n    ($m:ident) => {{\n{hostile_macro}    }};\n}}"
    )
    .unwrap();

    let mut policies_macro = String::new();
    for example in dirs_with(&root.join("examples"), "Cargo.toml") {
        let manifest: toml::Table = std::fs::read_to_string(example.join("Cargo.toml")).unwrap().parse().unwrap();
        let name = manifest["package"]["name"].as_str().unwrap().to_string();
        let meta = manifest["package"].get("metadata").and_then(|m| m.get("runretry")).and_then(|m| m.as_table());
        let built = GuestBuild::new(&example.join("Cargo.toml"), target_dir.clone()).run(&format!("example {name}"));
        let wasm = copy_component(&built.join(format!("{}.wasm", name.replace('-', "_"))), &out_dir);
        add_column(&mut policies_macro, &example, &name, &wasm, meta);
    }
    for example in dirs_with(&root.join("examples"), "example.toml") {
        let manifest: toml::Table = std::fs::read_to_string(example.join("example.toml")).unwrap().parse().unwrap();
        let name = manifest["name"].as_str().unwrap().to_string();
        if std::env::var_os("RUNRETRY_SKIP_NON_RUST_EXAMPLES").is_some() {
            println!("cargo:warning=RUNRETRY_SKIP_NON_RUST_EXAMPLES is set: example {name} is not built or tested");
            continue;
        }
        let wasm = out_dir.join(format!("{name}.wasm"));
        let command = string_list(Some(&manifest), "build");
        let status = Command::new(&command[0])
            .args(&command[1..])
            .current_dir(&example)
            .env("OUT", &wasm)
            .env("RUNRETRY_TOOLS_DIR", target_dir.join("../tools"))
            .status()
            .unwrap_or_else(|e| panic!("run the build of example {name}: {e}"));
        assert!(
            status.success(),
            "building example {name} failed; its toolchain comes from a package registry (see \
             docs/writing-a-policy.md). Set RUNRETRY_SKIP_NON_RUST_EXAMPLES=1 to test without it."
        );
        add_column(&mut policies_macro, &example, &name, &wasm, Some(&manifest));
    }
    writeln!(
        code,
        "/// Calls `$m!(name, path, [suites], [ignored fields])` for every example policy.\n#[macro_export]\nmacro_rules! foreach_example_policy {{\n    ($m:ident) => {{\n{policies_macro}    }};\n}}"
    )
    .unwrap();
    std::fs::write(out_dir.join("guests.rs"), code).unwrap();
}

/// Example dirs holding `file` (`Cargo.toml` for Rust, `example.toml` for other languages).
fn dirs_with(examples: &Path, file: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(examples)
        .map(|entries| entries.flatten().map(|e| e.path()).filter(|p| p.join(file).exists()).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs
}

fn string_list(table: Option<&toml::Table>, key: &str) -> Vec<String> {
    table
        .and_then(|t| t.get(key))
        .and_then(|v| v.as_array())
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// One matrix column: `$m!(name, path, [suites], [ignored fields])`. Suites other than the
/// built-in ones are paths relative to the example.
fn add_column(out: &mut String, example: &Path, name: &str, wasm: &Path, meta: Option<&toml::Table>) {
    let suites: Vec<String> = string_list(meta, "suites")
        .into_iter()
        .map(|s| match s.as_str() {
            "default" | "contract" => s,
            path => example.join(path).display().to_string(),
        })
        .collect();
    writeln!(
        out,
        "        $m!({}, {:?}, {:?}, {:?});",
        name.replace('-', "_"),
        wasm.display().to_string(),
        suites,
        string_list(meta, "ignore_fields")
    )
    .unwrap();
}

/// The names of the test guests: the `*.rs` files of `src/bin`, sorted.
fn bin_names(bin_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(bin_dir)
        .unwrap()
        .flatten()
        .filter_map(|e| e.path().file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    names
}

/// Copy a built component into `out_dir`, where the tests find it.
fn copy_component(built: &Path, out_dir: &Path) -> PathBuf {
    let dest = out_dir.join(built.file_name().unwrap());
    std::fs::copy(built, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
    dest
}
