//! Host bindings generated from `wit/` — the single source of truth for the contract.

wasmtime::component::bindgen!({
    world: "retry-policy",
    path: "../wit",
    // The export's parameters borrow the case instead of owning a copy of every string.
    ownership: Borrowing { duplicate_if_necessary: true },
});
