//! The one way build scripts build a Wasm guest: `cargo build --release --target wasm32-wasip2`
//! in a target dir of its own, cleaned of the outer build's settings, and rebuilt exactly when a
//! source file the guest was compiled from changes (cargo's dep-info, not whole directories).

use std::path::{Path, PathBuf};
use std::process::Command;

/// One `cargo build` of guests.
pub struct GuestBuild<'a> {
    manifest: &'a Path,
    target_dir: PathBuf,
    args: Vec<String>,
}

impl<'a> GuestBuild<'a> {
    /// Build the package(s) of `manifest` into `target_dir`.
    pub fn new(manifest: &'a Path, target_dir: PathBuf) -> Self {
        GuestBuild { manifest, target_dir, args: Vec::new() }
    }

    /// Extra `cargo build` arguments (`-p NAME`, `--bins`, `--features F`).
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_string());
        self
    }

    /// Run the build; panics with `what` and the likely cause when it fails. Returns the dir
    /// holding the components (`<target>/wasm32-wasip2/release`).
    pub fn run(self, what: &str) -> PathBuf {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
            .arg(self.manifest)
            .arg("--target-dir")
            .arg(&self.target_dir)
            .args(&self.args)
            .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
            // Guests are small: whole-program optimisation is cheap here and makes them faster.
            .env("CARGO_PROFILE_RELEASE_LTO", "true")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1");
        // The outer build's settings are for the host, not for a guest: its flags, its target,
        // and the wrappers `cargo clippy` installs (which would lint the guests with -D warnings).
        for inherited in
            ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_TARGET", "RUSTC_WORKSPACE_WRAPPER", "CLIPPY_ARGS"]
        {
            command.env_remove(inherited);
        }
        let status = command.status().unwrap_or_else(|e| panic!("run cargo to build {what}: {e}"));
        assert!(
            status.success(),
            "building {what} failed; is the target installed? Run `rustup target add wasm32-wasip2`."
        );
        let out = self.target_dir.join("wasm32-wasip2/release");
        rerun_if_sources_change(&out);
        out
    }
}

/// A target dir for guests beside the outer build's (`target/wasm-guests/<name>`): it must
/// differ from that one, which is locked while a build script runs.
pub fn guest_target_dir(out_dir: &Path, name: &str) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").exists())
        .unwrap_or_else(|| out_dir.ancestors().nth(4).unwrap())
        .join("wasm-guests")
        .join(name)
}

/// Ask cargo to rerun the build script when any source file a guest in `release_dir` was built
/// from changes: the `*.d` dep-info files list them all (the kit, the WIT, the guest's code).
fn rerun_if_sources_change(release_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(release_dir) else { return };
    let mut sources = std::collections::BTreeSet::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "d") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            sources.extend(dep_info_sources(&text));
        }
    }
    for source in sources {
        // Sources from the registry never change under a version: only ours matter.
        if !source.contains("/.cargo/registry/") && !source.contains("/rustlib/") {
            println!("cargo:rerun-if-changed={source}");
        }
    }
}

/// The prerequisites of a Makefile-style dep-info file (`out: src1 src2`, `\ ` escapes a space).
fn dep_info_sources(text: &str) -> Vec<String> {
    let mut sources = Vec::new();
    for line in text.lines() {
        let Some((_, prerequisites)) = line.split_once(": ") else { continue };
        let mut current = String::new();
        let mut escaped = false;
        for c in prerequisites.chars() {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, ' ') => {
                    if !current.is_empty() {
                        sources.push(std::mem::take(&mut current));
                    }
                }
                (_, c) => {
                    current.push(c);
                    escaped = false;
                }
            }
        }
        if !current.is_empty() {
            sources.push(current);
        }
    }
    sources
}

#[cfg(test)]
mod tests {
    #[test]
    fn dep_info_lists_every_prerequisite() {
        let text = "/t/a.wasm: /src/lib.rs /src/my\\ file.rs /wit/policy.wit\n\n/src/lib.rs:\n";
        assert_eq!(super::dep_info_sources(text), ["/src/lib.rs", "/src/my file.rs", "/wit/policy.wit"]);
    }
}
