//! Any bytes, as a case file, a dagster.yaml, and a JSON Lines batch line: parsing never panics,
//! and whatever parses goes through the real sandboxed default policy (decide and every
//! selection strategy), whose answers must pass the host's contract checks.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use runretry::{Case, Error, Policy, Sandbox, SandboxConfig, Strategy};

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let config = SandboxConfig { cache_dir: None, ..SandboxConfig::default() };
        Sandbox::new(config).unwrap().load_default().unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = runretry::dagster_yaml::parse_run_retries("fuzz.yaml", text);
    let Ok(case) = Case::from_json("fuzz.json", text) else { return };
    // The default policy must answer every valid case: any error but bad input is a bug.
    match policy().decide(&case) {
        Ok(_) | Err(Error::BadInput { .. }) => {}
        Err(e) => panic!("default policy failed on a valid case: {e}"),
    }
    for strategy in [Strategy::FromFailure, Strategy::AllSteps, Strategy::FromAssetFailure] {
        match policy().select_steps(&case.run, strategy) {
            Ok(_) | Err(Error::BadInput { .. }) => {}
            Err(e) => panic!("select-steps {strategy:?} failed on a valid case: {e}"),
        }
    }
});
