//! The packed decoder's fuzz target (`runretry_kit::packed::fuzz_answer`), run for a bounded
//! number of inputs on every `cargo test`: answers built from random bytes and from mutations of
//! valid answers (lengths blown up, bytes flipped, cut, spliced). Coverage-guided runs of the
//! same target are `fuzz/packed` (scripts/fuzz-packed.sh). A counting allocator checks the
//! point of the budget: no input makes the decoder hold more than a small multiple of it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use runretry_kit::packed::{self, SelectionResult};
use runretry_kit::{Action, Decision, Selection, Strategy};

/// The system allocator, counting the bytes each thread holds and their peak (per thread: the
/// tests run side by side).
struct Counting;

thread_local! {
    static HELD: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; the counters are const thread-locals,
// which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let held = HELD.get() + layout.size() as isize;
        HELD.set(held);
        PEAK.set(PEAK.get().max(held));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.set(HELD.get() - layout.size() as isize);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most this thread held at once while `f` ran, beyond what it held before.
fn peak_during(f: impl FnOnce()) -> usize {
    let before = HELD.get();
    PEAK.set(before);
    f();
    (PEAK.get() - before) as usize
}

/// A small budget, so that inputs can reach it.
const BUDGET: usize = 64 << 10;
const INPUTS: usize = 200_000;

/// xorshift64*: a fixed sequence, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let launch = Decision {
        action: Action::LaunchNew,
        retry_number: Some(1),
        strategy: Some(Strategy::FromFailure),
        steps: Some(vec!["a".into(), "b[1]".into()]),
        new_run_tags: vec![("dagster/retry_number".into(), "1".into()), ("team".into(), "data".into())],
        failed_run_tags: vec![("dagster/will_retry".into(), "true".into())],
        events: vec!["retrying".into()],
        delay_seconds: 2.5,
        asset_selection: Some(vec!["x".into()]),
        ..Decision::none("a retry")
    };
    let selected: SelectionResult = Ok(Selection { steps: vec!["a".into()], ..Selection::default() });
    let refused: SelectionResult = Err("no".into());
    vec![
        packed::pack(&Decision::none("no retry")).unwrap(),
        packed::pack(&launch).unwrap(),
        packed::pack(&selected).unwrap(),
        packed::pack(&refused).unwrap(),
    ]
}

/// Headers claiming the most their length fields can say: a map, an array, a string.
const LYING_HEADERS: [&[u8]; 4] = [
    &[0xdf, 0xff, 0xff, 0xff, 0xff],
    &[0xdd, 0xff, 0xff, 0xff, 0xff],
    &[0xdb, 0xff, 0xff, 0xff, 0xff],
    &[0xde, 0xff, 0xff],
];

/// One mutation of `input`: the kinds of lie a hostile answer tells.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    let at = rng.below(input.len());
    match rng.below(6) {
        0 if !input.is_empty() => input[at] ^= 1 << rng.below(8),
        1 if !input.is_empty() => input[at] = rng.next() as u8,
        2 => {
            let header = LYING_HEADERS[rng.below(LYING_HEADERS.len())];
            input.splice(at..at, header.iter().copied());
        }
        3 => input.truncate(at),
        // A span repeated: duplicate fields, entries, trailing values.
        4 if !input.is_empty() => {
            let end = at + rng.below(input.len() - at).max(1);
            let span = input[at..end].to_vec();
            let to = rng.below(input.len());
            input.splice(to..to, span);
        }
        _ => input.insert(at, rng.next() as u8),
    }
}

#[test]
fn the_packed_decoder_survives_random_and_mutated_answers_within_its_budget() {
    let seeds = seeds();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..INPUTS {
        let input = if i % 4 == 0 {
            (0..rng.below(64)).map(|_| rng.next() as u8).collect()
        } else {
            let mut input = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(4) {
                mutate(&mut rng, &mut input);
            }
            input
        };
        let held = peak_during(|| packed::fuzz_answer(&input, BUDGET));
        // Decoding within the budget, and packing a decoded answer again for the round trip.
        assert!(held <= 4 * (BUDGET + input.len()), "input {i} ({input:02x?}) held {held} bytes");
    }
}

/// The allocator sees what the budget is for: an answer claiming 2^32 tags in five bytes, which
/// the decoder once tried to reserve room for, is refused holding almost nothing.
#[test]
fn a_lying_header_is_refused_before_anything_is_reserved_for_it() {
    let mut answer = vec![0x81, 0xac];
    answer.extend_from_slice(b"new_run_tags");
    answer.extend_from_slice(LYING_HEADERS[0]);
    let mut error = String::new();
    let held = peak_during(|| error = packed::unpack_answer::<Decision>(&answer, usize::MAX).unwrap_err());
    assert!(error.contains("map of 4294967295 entries"), "{error}");
    assert!(held < 4096, "{held} bytes held");
}
