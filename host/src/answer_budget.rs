//! How much of a guest's answer the host takes, fixed before the call from the output cap and
//! the case. The answer is the guest's to write, so nothing in it is trusted for an allocation:
//! - wasmtime copies no more than [`AnswerBudget::lift_bytes`] out of the guest (its hostcall
//!   fuel, charged before each string and list is copied: a `String` or `Vec` costs its 24 bytes
//!   plus its contents), for typed and packed answers alike;
//! - a packed buffer is no longer than [`AnswerBudget::packed_bytes`], and its headers are read
//!   before it is decoded, which may cost no more than the same lift budget
//!   (`runretry_kit::packed::shape`).
//!
//! So one answer costs the host a small multiple of the output cap (about 5x at most), whatever
//! the guest's memory holds. The usual checks of the decoded answer (`validate`) follow.

use runretry_kit::Run;

/// How much larger than its JSON an answer may be on the host: a short string is a few bytes of
/// JSON and 24 bytes and more as a `String`. An answer near the output cap made of thousands of
/// one-letter strings can meet this budget before the JSON cap; it is refused the same way.
const LIFT_FACTOR: usize = 4;

/// The bytes one answer may take on the host, before and while it is decoded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AnswerBudget {
    max_output_bytes: usize,
    /// What copying the case's own tags into both tag maps of a decision costs (inherited tags
    /// do not count against the output cap: `validate::InheritedTags`).
    inherited_lift: usize,
    inherited_packed: usize,
}

impl AnswerBudget {
    /// The budget of an answer about `run` under `max_output_bytes`.
    pub(crate) fn new(run: &Run, max_output_bytes: usize) -> Self {
        let tags = run.tags.iter().chain(&run.job_tags);
        let (mut inherited_lift, mut inherited_packed) = (0usize, 0usize);
        for (key, value) in tags {
            let text = key.len() + value.len();
            // Two maps (new_run_tags, failed_run_tags) may each copy every tag.
            inherited_lift = inherited_lift.saturating_add(2 * (2 * runretry_kit::packed::shape::VALUE_COST + text));
            // A string's MessagePack header is at most 5 bytes.
            inherited_packed = inherited_packed.saturating_add(2 * (text + 10));
        }
        AnswerBudget { max_output_bytes, inherited_lift, inherited_packed }
    }

    /// The budget of a task decision under `max_output_bytes` (a task case has no tags to copy).
    pub(crate) fn for_task(max_output_bytes: usize) -> Self {
        AnswerBudget { max_output_bytes, inherited_lift: 0, inherited_packed: 0 }
    }

    /// The most bytes the host holds for one answer, lifted from the guest or decoded.
    pub(crate) fn lift_bytes(&self) -> usize {
        self.max_output_bytes.saturating_mul(LIFT_FACTOR).saturating_add(self.inherited_lift)
    }

    /// The longest packed answer taken. MessagePack of an answer is never much longer than its
    /// JSON: string headers are at most 3 bytes longer than two quotes (and only for strings
    /// of 65,536 bytes and more), a float is 9 bytes where JSON may write `0.0`; an eighth more
    /// and 64 bytes cover both with room to spare.
    pub(crate) fn packed_bytes(&self) -> usize {
        let cap = self.max_output_bytes;
        cap.saturating_add(cap / 8).saturating_add(64).saturating_add(self.inherited_packed)
    }
}
