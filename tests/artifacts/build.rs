//! Builds every guest the tests use, from source, for wasm32-wasip2 (the idea of wasmtime's
//! `crates/test-programs/artifacts`): the test guests in `tests/guests`, one hostile guest per
//! feature of `tests/guests/hostile`, and every example policy in `examples/`. Writes constants
//! for their paths and `foreach_*!` macros, so a guest without a test is a test error.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use runretry_guest_build::GuestBuild;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../..");
    let root = root.canonicalize().unwrap();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let target_dir = out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").exists())
        .unwrap_or_else(|| out_dir.ancestors().nth(4).unwrap())
        .join("wasm-guests/test-guests");
    let guests = root.join("tests/guests");
    println!("cargo:rerun-if-env-changed=RUNRETRY_SKIP_NON_RUST_EXAMPLES");
    for watched in [guests.clone(), root.join("examples"), root.join("guest-default-policy/src"), root.join("wit")] {
        println!("cargo:rerun-if-changed={}", watched.display());
    }

    let mut code = String::new();
    let manifest = guests.join("Cargo.toml");
    for (krate, constant) in [("wrong-max-retries", "WRONG_MAX_RETRIES"), ("other-world", "OTHER_WORLD")] {
        let wasm = build(&manifest, &target_dir, krate, None, &out_dir);
        writeln!(code, "/// The `{krate}` test guest.\npub const {constant}: &str = {:?};", wasm.display().to_string()).unwrap();
    }

    let hostile: toml::Table = std::fs::read_to_string(guests.join("hostile/Cargo.toml")).unwrap().parse().unwrap();
    let mut features: Vec<&String> = hostile["features"].as_table().unwrap().keys().collect();
    features.sort();
    let mut hostile_macro = String::new();
    for feature in features {
        let wasm = build(&manifest, &target_dir, "hostile", Some(feature), &out_dir);
        writeln!(hostile_macro, "        $m!({feature}, {:?});", wasm.display().to_string()).unwrap();
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
        let wasm = build(&example.join("Cargo.toml"), &target_dir, &name, None, &out_dir);
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

/// Build one guest crate (optionally one feature) and copy its component into `out_dir`.
fn build(manifest: &Path, target_dir: &Path, krate: &str, feature: Option<&str>, out_dir: &Path) -> PathBuf {
    let mut build = GuestBuild::new(manifest, target_dir.to_path_buf()).arg("-p").arg(krate);
    if let Some(feature) = feature {
        build = build.arg("--features").arg(feature);
    }
    let built = build.run(&format!("guest {krate} {feature:?}")).join(format!("{}.wasm", krate.replace('-', "_")));
    let name = match feature {
        Some(feature) => format!("{krate}-{feature}.wasm"),
        None => format!("{krate}.wasm"),
    };
    let dest = out_dir.join(name);
    std::fs::copy(&built, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
    dest
}
