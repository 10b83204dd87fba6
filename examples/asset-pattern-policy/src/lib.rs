//! Dagster's run-retry semantics, with asset retries limited to assets whose keys match a
//! pattern.
//!
//! Some assets are worth retrying automatically (raw ingestion that hit a flaky API), others are
//! not (a model whose failure needs a human). This policy takes the default policy's decision
//! and, when it is a `FROM_ASSET_FAILURE` retry, keeps only the assets whose keys match the
//! patterns of the `runretry/retry_assets` tag (on the run, or on the job):
//!
//! | tag | example | meaning |
//! |---|---|---|
//! | `runretry/retry_assets` | `raw/*, staging/orders_?` | comma-separated shell patterns (`*`, `?`) over asset keys as `a/b/c`; absent: every asset |
//!
//! A check stays when its asset stays. A step that cannot be subset keeps all its keys if any
//! of them stays (Dagster cannot launch part of it). When no asset or check is left, the run is
//! not retried and the decision says which patterns excluded what. `FROM_FAILURE` and
//! `ALL_STEPS` retries are left as they are: they re-run steps, not assets.

use std::collections::BTreeSet;

use runretry_kit::{export_policy, tag, Action, Decision, Failure, Policy, Run, RunRetries, Selection, Strategy};
use wildmatch::WildMatch;

/// The tag that names the assets worth retrying.
pub const PATTERN_TAG: &str = "runretry/retry_assets";

// ANCHOR: filter
/// The patterns of `runretry/retry_assets` (the run's tag, else the job's); `None` when absent.
pub fn patterns(run: &Run) -> Option<Vec<WildMatch>> {
    let raw = tag(&run.tags, PATTERN_TAG).or_else(|| tag(&run.job_tags, PATTERN_TAG))?;
    Some(raw.split(',').map(str::trim).filter(|p| !p.is_empty()).map(WildMatch::new).collect())
}

/// Narrow a FROM_ASSET_FAILURE selection to the assets matching `patterns`, their checks, and
/// whole steps that cannot be subset. `None` when nothing is left.
pub fn narrow(run: &Run, selection: &Selection, patterns: &[WildMatch]) -> Option<Selection> {
    let selected_assets: BTreeSet<&str> = selection.asset_selection.iter().flatten().map(String::as_str).collect();
    let selected_checks: BTreeSet<&str> =
        selection.asset_check_selection.iter().flatten().map(String::as_str).collect();
    let wanted = |asset: &str| patterns.iter().any(|p| p.matches(asset));
    let mut assets: BTreeSet<&str> = selected_assets.iter().copied().filter(|a| wanted(a)).collect();
    let mut checks: BTreeSet<&str> = selected_checks
        .iter()
        .copied()
        .filter(|c| wanted(runretry_default_policy::assets::asset_of_check(c)))
        .collect();
    // A step that cannot be subset runs whole or not at all.
    for step in run.steps.iter().filter(|s| s.can_subset == Some(false)) {
        let touched = step.assets.iter().any(|a| assets.contains(a.as_str()))
            || step.checks.iter().any(|c| checks.contains(c.as_str()));
        if touched {
            assets.extend(step.assets.iter().map(String::as_str).filter(|a| selected_assets.contains(a)));
            checks.extend(step.checks.iter().map(String::as_str).filter(|c| selected_checks.contains(c)));
        }
    }
    if assets.is_empty() && checks.is_empty() {
        return None;
    }
    let steps = selection
        .steps
        .iter()
        .filter(|key| {
            run.steps.iter().any(|s| {
                &&s.key == key
                    && (s.assets.iter().any(|a| assets.contains(a.as_str()))
                        || s.checks.iter().any(|c| checks.contains(c.as_str())))
            })
        })
        .cloned()
        .collect();
    let owned = |set: BTreeSet<&str>| Some(set.into_iter().map(str::to_string).collect());
    Some(Selection { steps, asset_selection: owned(assets), asset_check_selection: owned(checks) })
}
// ANCHOR_END: filter

/// The assets the patterns leave out, for the reason.
fn excluded(selection: &Selection, narrowed: Option<&Selection>) -> Vec<String> {
    let kept: BTreeSet<&String> = narrowed.and_then(|n| n.asset_selection.as_ref()).into_iter().flatten().collect();
    selection.asset_selection.iter().flatten().filter(|a| !kept.contains(a)).cloned().collect()
}

/// The policy this component exports.
pub struct AssetPatternPolicy;

// ANCHOR: policy
impl Policy for AssetPatternPolicy {
    fn should_retry(run: &Run, failure: &Failure, config: &RunRetries) -> Decision {
        let mut decision = runretry_default_policy::should_retry(run, failure, config);
        let Some(patterns) = patterns(run) else { return decision };
        if decision.action != Action::LaunchNew || decision.strategy != Some(Strategy::FromAssetFailure) {
            return decision;
        }
        let selection = Selection {
            steps: decision.steps.clone().unwrap_or_default(),
            asset_selection: decision.asset_selection.clone(),
            asset_check_selection: decision.asset_check_selection.clone(),
        };
        let narrowed = narrow(run, &selection, &patterns);
        let left_out = excluded(&selection, narrowed.as_ref());
        match narrowed {
            Some(narrowed) => {
                if !left_out.is_empty() {
                    decision.reason = format!(
                        "{}; not retried, as {PATTERN_TAG} excludes them: {}",
                        decision.reason,
                        left_out.join(", ")
                    );
                }
                decision.steps = Some(narrowed.steps);
                decision.asset_selection = narrowed.asset_selection;
                decision.asset_check_selection = narrowed.asset_check_selection;
                decision
            }
            None => {
                let why = format!("no asset that needs a retry matches {PATTERN_TAG}: {}", left_out.join(", "));
                decision.events.push(why.clone());
                runretry_default_policy::not_retried(decision, why)
            }
        }
    }

    fn select_steps(run: &Run, strategy: Strategy) -> Result<Selection, String> {
        let selection = runretry_default_policy::select_steps(run, strategy)?;
        match (strategy, patterns(run)) {
            (Strategy::FromAssetFailure, Some(patterns)) => narrow(run, &selection, &patterns)
                .ok_or_else(|| format!("no asset that needs a retry matches {PATTERN_TAG}")),
            _ => Ok(selection),
        }
    }
}
// ANCHOR_END: policy

export_policy!(AssetPatternPolicy);

#[cfg(test)]
mod tests {
    use super::*;
    use runretry_kit::{RunStatus, Step, StepStatus};

    fn asset_step(key: &str, assets: &[&str], status: StepStatus, can_subset: Option<bool>) -> Step {
        Step {
            assets: assets.iter().map(|a| a.to_string()).collect(),
            checks: assets.iter().map(|a| format!("{a}:fresh")).collect(),
            can_subset,
            ..Step::new(key, &[], status)
        }
    }

    fn run(pattern: Option<&str>) -> Run {
        let mut run = Run::new("run-A", RunStatus::Failure);
        run.steps = vec![
            asset_step("raw", &["raw/orders", "raw/users"], StepStatus::Failure, Some(true)),
            asset_step("model", &["models/churn"], StepStatus::Failure, None),
            asset_step("pair", &["raw/a", "models/b"], StepStatus::Failure, Some(false)),
        ];
        run.tags = vec![("dagster/retry_strategy".into(), "FROM_ASSET_FAILURE".into())];
        run.tags.extend(pattern.map(|p| (PATTERN_TAG.to_string(), p.to_string())));
        run
    }

    fn decide(run: &Run) -> Decision {
        let config =
            RunRetries { enabled: true, max_retries: 2, retry_on_asset_or_op_failure: true, ..RunRetries::default() };
        AssetPatternPolicy::should_retry(run, &Failure::default(), &config)
    }

    #[test]
    fn only_matching_assets_and_their_checks_are_retried() {
        let d = decide(&run(Some("raw/*")));
        assert_eq!(d.action, Action::LaunchNew);
        // raw/a drags models/b along: their step cannot be subset.
        assert_eq!(d.asset_selection.unwrap(), ["models/b", "raw/a", "raw/orders", "raw/users"]);
        assert_eq!(
            d.asset_check_selection.unwrap(),
            ["models/b:fresh", "raw/a:fresh", "raw/orders:fresh", "raw/users:fresh"]
        );
        assert_eq!(d.steps.unwrap(), ["pair", "raw"]);
        assert!(d.reason.contains("excludes them: models/churn"), "{}", d.reason);
    }

    #[test]
    fn nothing_matching_means_no_retry() {
        let d = decide(&run(Some("staging/*")));
        assert_eq!(d.action, Action::None);
        assert_eq!(tag(&d.failed_run_tags, "dagster/will_retry"), Some("false"));
        assert!(d.reason.starts_with("no asset that needs a retry matches"), "{}", d.reason);
    }

    #[test]
    fn without_the_tag_it_is_the_default_policy() {
        let run = run(None);
        let config =
            RunRetries { enabled: true, max_retries: 2, retry_on_asset_or_op_failure: true, ..RunRetries::default() };
        assert_eq!(decide(&run), runretry_default_policy::should_retry(&run, &Failure::default(), &config));
    }
}
