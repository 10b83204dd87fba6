//! What the test guests share. Each guest is one `src/bin/*.rs`, built as its own component by
//! one `cargo build --bins` (tests/artifacts): `hostile_*` misbehave in one way each (the
//! sandbox tests hold an expectation for every one), `wrong_max_retries` is well-formed but
//! wrong, `other_world` implements another world.

use runretry_kit::{Decision, Run, Selection, Strategy};

/// The default `select-steps` of a hostile guest: misbehave there too, answering the reason.
pub fn select_by_misbehaving(
    misbehave: fn(&Run) -> Decision,
    run: &Run,
    _strategy: Strategy,
) -> Result<Selection, String> {
    Ok(Selection { steps: vec![misbehave(run).reason], ..Selection::default() })
}

/// Export a policy whose `should-retry` is `misbehave(run)`, and whose `select-steps` is the
/// given closure (by default: misbehave there too).
#[macro_export]
macro_rules! hostile_policy {
    ($misbehave:path) => {
        $crate::hostile_policy!($misbehave, |run: &runretry_kit::Run, strategy: runretry_kit::Strategy| {
            $crate::select_by_misbehaving($misbehave, run, strategy)
        });
    };
    ($misbehave:path, $select:expr) => {
        struct Hostile;
        impl runretry_kit::Policy for Hostile {
            fn should_retry(
                run: &runretry_kit::Run,
                _failure: &runretry_kit::Failure,
                _config: &runretry_kit::Config,
            ) -> runretry_kit::Decision {
                $misbehave(run)
            }
            fn select_steps(
                run: &runretry_kit::Run,
                strategy: runretry_kit::Strategy,
            ) -> Result<runretry_kit::Selection, String> {
                ($select)(run, strategy)
            }
        }
        runretry_kit::export_policy!(Hostile);
    };
}
