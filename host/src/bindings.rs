//! Host bindings generated from `wit/` — the single source of truth for the contract.

wasmtime::component::bindgen!({
    world: "retry-policy",
    path: "../wit",
});
