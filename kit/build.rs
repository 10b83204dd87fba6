//! `cfg(model_serde)`: the model's serde derives and the JSON module, wanted by the `serde`
//! feature and by every wasm32 guest, which reads its case packed (see `src/packed.rs`).
//! Cargo features cannot depend on the target, so the build script joins the two.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(model_serde)");
    let wasm = std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32");
    if wasm || std::env::var_os("CARGO_FEATURE_SERDE").is_some() {
        println!("cargo::rustc-cfg=model_serde");
    }
}
