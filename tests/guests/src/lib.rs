//! What the test guests share. Each guest is one `src/bin/*.rs`, built as its own component by
//! one `cargo build --bins` (tests/artifacts): `hostile_*` misbehave in one way each (the
//! sandbox tests hold an expectation for every one), `wrong_max_retries` is well-formed but
//! wrong, `other_world` implements another world, `wrong_types` and `wrong_packed_types` have
//! the contract's names with other types. `hostile_packed_*` answer the `packed` interface with
//! bytes of their own making ([`hostile_packed!`]).

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
                _config: &runretry_kit::RunRetries,
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

/// A sound decision as the packed interface carries it, as a JSON object to spoil: a guest
/// adds, changes or retypes fields, then packs it with [`runretry_kit::packed::pack`].
pub fn decision_object() -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(Decision::none("a hostile packed answer")) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => unreachable!("a decision is an object"),
    }
}

/// Export `packed` answering `$should_retry()` and `$select_steps()` as they are (bytes or an
/// error string), and a `policy` the host never calls (it prefers `packed`).
#[macro_export]
macro_rules! hostile_packed {
    ($should_retry:path, $select_steps:path) => {
        struct HostilePacked;
        use runretry_kit::__private::runs::exports::runretry::policy as exported;
        impl exported::policy::Guest for HostilePacked {
            fn should_retry(
                _run: runretry_kit::Run,
                _failure: runretry_kit::Failure,
                _config: runretry_kit::RunRetries,
            ) -> runretry_kit::Decision {
                runretry_kit::Decision::none("the typed interface: the host calls packed")
            }
            fn select_steps(
                _run: runretry_kit::Run,
                _strategy: runretry_kit::Strategy,
            ) -> Result<runretry_kit::Selection, String> {
                Err("the typed interface: the host calls packed".into())
            }
        }
        impl exported::packed::Guest for HostilePacked {
            fn should_retry(_case: Vec<u8>) -> Result<Vec<u8>, String> {
                $should_retry()
            }
            fn select_steps(_run: Vec<u8>, _strategy: runretry_kit::Strategy) -> Result<Vec<u8>, String> {
                $select_steps()
            }
        }
        runretry_kit::__private::runs::export!(HostilePacked with_types_in runretry_kit::__private::runs);
    };
}
