//! The packed case: the policy's arguments and answer as one buffer each, MessagePack of the
//! JSON model (docs/case-format.md, fields by name), for the WIT's `packed` interface.
//!
//! The canonical ABI lowers a typed case with one call of the guest's `realloc` per string and
//! list: about 150 for a realistic case, 30,000 for a 10,000-step plan. A buffer is one
//! `realloc` and one copy; the guest then decodes it in its own memory (8% off a decision, 17%
//! off a 10,000-step selection: docs/performance.md). [`export_policy!`](crate::export_policy)
//! exports `packed` beside `policy`, and the host calls `packed` when a component has it, so a
//! Rust author's code reads the same [`Run`] either way; Python and JavaScript guests export
//! `policy` alone and are called as before.
//!
//! Because the buffer is the JSON model, a packed case reads as a JSON case does: an empty
//! `group` is the run alone.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::model::{Decision, Failure, Run, RunRetries, Selection};

#[cfg(feature = "serde")]
pub mod shape;

/// What `packed.should-retry` carries in: the three arguments of `policy.should-retry`.
pub type CaseRef<'a> = (&'a Run, &'a Failure, &'a RunRetries);
/// The same, decoded.
pub type OwnedCase = (Run, Failure, RunRetries);
/// What `packed.select-steps` carries out: `policy.select-steps`'s answer.
pub type SelectionResult = Result<Selection, String>;

/// Encode a value of the model.
pub fn pack<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    rmp_serde::to_vec_named(value).map_err(|e| format!("packing: {e}"))
}

/// Decode a value of the model; the error says what did not decode.
pub fn unpack<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    rmp_serde::from_slice(bytes).map_err(|e| format!("unpacking: {e}"))
}

/// Decode an answer from an untrusted guest, strictly: its [`shape`] is checked first against
/// `budget` (what decoding may cost, in bytes), so no length the buffer claims is trusted for an
/// allocation; then it must decode as exactly one `T`. The model refuses unknown fields,
/// duplicate fields, and enums given as numbers, each by name.
#[cfg(feature = "serde")]
pub fn unpack_answer<T: DeserializeOwned>(bytes: &[u8], budget: usize) -> Result<T, String> {
    shape::check(bytes, budget)?;
    unpack(bytes)
}

/// The packed decoder's fuzz target (`fuzz/packed`, and its bounded run in `cargo test`): any
/// bytes, read as each answer the host reads, must be refused or decoded without a panic
/// within `budget`, and what decodes must pack and decode back to itself.
#[doc(hidden)]
#[cfg(feature = "serde")]
pub fn fuzz_answer(data: &[u8], budget: usize) {
    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(data: &[u8], budget: usize) {
        if let Ok(value) = unpack_answer::<T>(data, budget) {
            let again = pack(&value).expect("a decoded answer packs");
            let back: T = unpack(&again).expect("a packed answer decodes");
            // NaN is not equal to itself: compare the packed forms.
            assert_eq!(pack(&back).unwrap(), again, "{value:?} did not round-trip");
        }
    }
    round_trip::<Decision>(data, budget);
    round_trip::<SelectionResult>(data, budget);
}

/// `packed.should-retry` in a guest: decode, decide, encode.
pub fn should_retry<P: crate::Policy>(case: &[u8]) -> Result<Vec<u8>, String> {
    let (run, failure, config): OwnedCase = unpack(case)?;
    let decision: Decision = P::should_retry(&run, &failure, &config);
    pack(&decision)
}

/// `packed.select-steps` in a guest.
pub fn select_steps<P: crate::Policy>(run: &[u8], strategy: crate::Strategy) -> Result<Vec<u8>, String> {
    let run: Run = unpack(run)?;
    let answer: SelectionResult = P::select_steps(&run, strategy);
    pack(&answer)
}

#[cfg(all(test, feature = "serde"))]
mod tests {
    use super::*;
    use crate::conformance;

    /// Every case of the default suite comes back from a buffer exactly as it went in, and so do
    /// decisions and selections: the packed and typed interfaces hand a policy the same values.
    #[test]
    fn every_suite_case_round_trips() {
        let suite = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/conformance");
        let cases = conformance::load_cases(std::path::Path::new(suite)).expect("the default suite loads");
        assert!(cases.len() > 100, "{} cases", cases.len());
        for case in &cases {
            let (run, failure, config) = (&case.case.run, &case.case.failure, &case.case.config);
            let packed = pack(&(run, failure, config)).unwrap();
            let back: OwnedCase = unpack(&packed).unwrap();
            assert_eq!((&back.0, &back.1, &back.2), (run, failure, config), "{}", case.name);
        }
    }
}
