//! The contract's `policy` as it is, and `runretry:policy/packed@0.4.0` with its `should-retry`
//! retyped (see build.rs): refused when loaded, naming the packed interface, not `policy`.

include!(concat!(env!("OUT_DIR"), "/wrong_packed_types.rs"));

use exports::runretry::policy::{packed, policy};
use runretry::policy::types::{Config, Decision, Failure, RetryStrategy, Run, Selection};

struct WrongPackedTypes;

impl policy::Guest for WrongPackedTypes {
    fn should_retry(_run: Run, _failure: Failure, _config: Config) -> Decision {
        unreachable!("refused at load")
    }

    fn select_steps(_run: Run, _strategy: RetryStrategy) -> Result<Selection, String> {
        unreachable!("refused at load")
    }
}

impl packed::Guest for WrongPackedTypes {
    fn should_retry(packed_case: String) -> String {
        packed_case
    }

    fn select_steps(_packed_run: Vec<u8>, _strategy: RetryStrategy) -> Result<Vec<u8>, String> {
        unreachable!("refused at load")
    }
}

export!(WrongPackedTypes);

fn main() {}
