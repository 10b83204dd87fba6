//! The conformance matrix: every guest in the repository against the contract suite, and the
//! guests that claim Dagster's semantics against the default suite. Example policies are columns
//! generated from `examples/*/Cargo.toml` (`[package.metadata.runretry] suites`), so adding one
//! adds its tests.

use runretry::conformance::{run_suite, SuiteChoice, DEFAULT_SUITE};
use runretry::{Policy, Sandbox, SandboxConfig};

/// A compile cache under the target dir: the Python and JavaScript examples take 10-20 s each
/// to compile, once.
fn sandbox() -> Sandbox {
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("compile-cache");
    Sandbox::new(SandboxConfig { cache_dir: Some(cache), ..SandboxConfig::default() }).unwrap()
}

fn assert_passes(policy: &Policy, suite: SuiteChoice, ignore: &[String]) {
    let report = run_suite(policy, &suite, ignore).unwrap();
    let failures: Vec<String> = report.failures.iter().map(ToString::to_string).collect();
    assert!(failures.is_empty(), "{} failed {suite:?}:\n{}", policy.name(), failures.join("\n"));
    assert!(report.passed > 0, "suite {suite:?} ran no case");
}

#[test]
fn default_policy_passes_the_default_suite() {
    let report = run_suite(&sandbox().load_default().unwrap(), &SuiteChoice::Default, &[]).unwrap();
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
    assert!(report.passed >= 92, "the default suite must hold the 12 examples and >= 80 cases: {}", report.passed);
}

/// The kit's guests are called through `packed`; their typed `policy` interface, which Python
/// and JavaScript guests are called through, must give the same answers.
#[test]
fn default_policy_passes_both_suites_through_its_typed_interface_too() {
    let packed = sandbox().load_default().unwrap();
    assert!(packed.is_packed(), "a kit guest exports runretry:policy/packed");
    let typed = packed.typed_calls();
    assert!(!typed.is_packed());
    assert_passes(&typed, SuiteChoice::Default, &[]);
    assert_passes(&typed, SuiteChoice::Contract, &[]);
}

#[test]
fn default_policy_passes_the_contract_suite() {
    assert_passes(&sandbox().load_default().unwrap(), SuiteChoice::Contract, &[]);
}

#[test]
fn the_contract_suite_generates_valid_asset_plans() {
    let cases = runretry::conformance::contract_cases();
    for (name, case) in &cases {
        case.validate().unwrap_or_else(|(path, why)| panic!("contract case {name}: {path}: {why}"));
    }
    let asset_plans: Vec<_> = cases.iter().filter(|(_, c)| c.run.steps.iter().any(|s| !s.assets.is_empty())).collect();
    assert!(asset_plans.len() >= 30, "only {} asset plans", asset_plans.len());
    // The generated plans reach both outcomes of FROM_ASSET_FAILURE with the default policy.
    let policy = sandbox().load_default().unwrap();
    let answers: Vec<_> = asset_plans
        .iter()
        .map(|(_, c)| policy.select_steps(&c.run, runretry::Strategy::FromAssetFailure).unwrap())
        .collect();
    assert!(answers.iter().any(|a| matches!(a, runretry::SelectionAnswer::Selected { .. })));
    assert!(answers.iter().any(|a| matches!(a, runretry::SelectionAnswer::Refused { .. })));
}

#[test]
fn wrong_guest_is_caught_with_a_readable_diff() {
    let wrong = sandbox().load_file(runretry_test_guests::WRONG_MAX_RETRIES.as_ref()).unwrap();
    // It is a well-formed policy...
    assert_passes(&wrong, SuiteChoice::Contract, &[]);
    // ...with the wrong semantics, which the default suite must show field by field.
    let report = run_suite(&wrong, &SuiteChoice::Default, &[]).unwrap();
    let example = report
        .failures
        .iter()
        .find(|f| f.name == "max_zero_config_tag_three_retries")
        .unwrap_or_else(|| panic!("the tag-driven retry case must fail: {:#?}", report.failures));
    let line = example.to_string();
    assert!(line.contains("action: expected \"LAUNCH_NEW\", got \"NONE\""), "{line}");
    assert!(line.contains("retry_number: expected 1, got null"), "{line}");
}

#[test]
fn every_suite_case_names_its_spec_section() {
    for (path, text) in DEFAULT_SUITE {
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        let cases = value.as_array().cloned().unwrap_or_else(|| vec![value.clone()]);
        for case in cases {
            let named = case.get("section").is_some() || path.contains("/examples/");
            assert!(named, "{path}: case {} names no spec section", case["name"]);
        }
    }
}

macro_rules! example_column {
    ($name:ident, $path:expr, [$($suite:expr),*], [$($ignore:expr),*]) => {
        mod $name {
            use super::*;

            #[test]
            fn passes_its_suites() {
                let policy = sandbox().load_file($path.as_ref()).unwrap();
                let suites: &[&str] = &[$($suite),*];
                assert!(suites.contains(&"contract"), "every example must pass the contract suite");
                let ignore: Vec<String> = vec![$($ignore.to_string()),*];
                for suite in suites {
                    assert_passes(&policy, SuiteChoice::parse(suite), &ignore);
                }
            }
        }
    };
}

runretry_test_guests::foreach_example_policy!(example_column);

/// A policy that walks the plan in the order it is listed, not in dependency order, used to
/// pass all 133 default cases. Both suites now list plans in reverse dependency order.
#[test]
fn a_plan_order_bug_is_caught_by_both_suites() {
    let buggy = sandbox().load_file(runretry_test_guests::hostile("plan_order_selection").as_ref()).unwrap();
    let report = run_suite(&buggy, &SuiteChoice::Default, &[]).unwrap();
    assert!(
        report.failures.iter().any(|f| f.name.ends_with("__plan_listed_in_reverse")),
        "the default suite must catch it: {:#?}",
        report.failures
    );
    let report = run_suite(&buggy, &SuiteChoice::Contract, &[]).unwrap();
    assert!(
        report.failures.iter().any(|f| f.differences.iter().any(|d| d.contains("depends on the order"))),
        "the contract suite must catch it: {:#?}",
        report.failures
    );
}
