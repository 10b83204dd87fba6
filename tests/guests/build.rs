//! The contract of `wrong_packed_types`: wit/policy.wit with the `packed` interface's
//! `should-retry` retyped, as a policy built against a hand-edited copy of the WIT would have it.
//! Written here from the real file (not kept as a copy) so that it follows every change to it.

use std::path::PathBuf;

/// The signature that is retyped, as wit/policy.wit spells it.
const PACKED_SHOULD_RETRY: &str = "should-retry: func(packed-case: list<u8>) -> result<list<u8>, string>;";

fn main() {
    let wit = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../wit/policy.wit");
    println!("cargo:rerun-if-changed={}", wit.display());
    let contract = std::fs::read_to_string(&wit).unwrap_or_else(|e| panic!("{}: {e}", wit.display()));
    assert!(
        contract.contains(PACKED_SHOULD_RETRY),
        "{}: the packed `should-retry` is no longer `{PACKED_SHOULD_RETRY}`; update tests/guests/build.rs",
        wit.display()
    );
    let wrong = contract.replace(PACKED_SHOULD_RETRY, "should-retry: func(packed-case: string) -> string;");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let wit_dir = out.join("wrong-packed-types");
    std::fs::create_dir_all(&wit_dir).unwrap_or_else(|e| panic!("{}: {e}", wit_dir.display()));
    std::fs::write(wit_dir.join("policy.wit"), wrong).unwrap_or_else(|e| panic!("{}: {e}", wit_dir.display()));
    // A path of its own: `inline` would also read this crate's `wit/`, a different package.
    let bindings = format!("wit_bindgen::generate!({{ path: {:?}, world: \"retry-policy-packed\" }});\n", wit_dir.display().to_string());
    std::fs::write(out.join("wrong_packed_types.rs"), bindings).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}
