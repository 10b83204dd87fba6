//! One native test per rule that changed between Dagster 1.10.12 and 1.13.29
//! (docs/dagster-versions.md §8): the same case decided under the last release with the old
//! rule and the first with the new.

use runretry_default_policy::*;
use runretry_kit::*;

fn under(version: &str) -> RunRetries {
    RunRetries {
        enabled: true,
        max_retries: 3,
        retry_on_asset_or_op_failure: true,
        dagster_version: Some(DagsterVersion::parse(version).unwrap()),
    }
}

fn failed_run(steps: Vec<Step>) -> Run {
    let mut run = Run::new("run-A", RunStatus::Failure);
    run.steps = steps;
    run.group = vec![GroupMember {
        run_id: "run-A".into(),
        parent_run_id: None,
        tags: Vec::new(),
        status: Some(RunStatus::Failure),
        exists: true,
    }];
    run
}

fn asset_step(key: &str, upstream: &[&str], status: StepStatus, assets: &[&str], checks: &[&str]) -> Step {
    let mut step = Step::new(key, upstream, status);
    step.assets = assets.iter().map(|a| a.to_string()).collect();
    step.checks = checks.iter().map(|c| c.to_string()).collect();
    step
}

fn strings(items: &[&str]) -> Option<Vec<String>> {
    Some(items.iter().map(|s| s.to_string()).collect())
}

fn with_strategy(mut run: Run, strategy: &str) -> Run {
    run.tags.push(("dagster/retry_strategy".into(), strategy.into()));
    run
}

#[test]
fn before_1_12_19_a_finished_backfills_run_is_retried() {
    let mut run = failed_run(vec![Step::new("a", &[], StepStatus::Failure)]);
    run.tags.push(("dagster/backfill".into(), "bf".into()));
    run.backfill = Some(Backfill { id: "bf".into(), exists: true, status: BackfillStatus::Completed });
    let gated = should_retry(&run, &Failure::default(), &under("1.12.19"));
    assert_eq!(gated.action, Action::None);
    let launched = should_retry(&run, &Failure::default(), &under("1.12.18"));
    assert_eq!(launched.action, Action::LaunchNew, "{}", launched.reason);
    assert_eq!(launched.steps, strings(&["a"]));
    // The backfill is not REQUESTED, so its tags are not carried (a rule of every release).
    assert_eq!(tag(&launched.new_run_tags, "dagster/backfill"), None);
    run.backfill = Some(Backfill { id: "bf".into(), exists: false, status: BackfillStatus::Canceled });
    assert_eq!(should_retry(&run, &Failure::default(), &under("1.11.16")).action, Action::LaunchNew);
}

#[test]
fn before_1_10_16_a_missing_root_raises_and_writes_no_tag() {
    let mut run = failed_run(vec![Step::new("a", &[], StepStatus::Failure)]);
    run.root_run_id = Some("gone".into());
    run.parent_run_id = Some("gone".into());
    let since = should_retry(&run, &Failure::default(), &under("1.10.16"));
    assert_eq!(since.action, Action::None);
    assert_eq!(tag(&since.failed_run_tags, "dagster/will_retry"), Some("false"));
    assert!(since.events.is_empty(), "{:?}", since.events);
    let before = should_retry(&run, &Failure::default(), &under("1.10.15"));
    assert_eq!(before.action, Action::None);
    assert!(before.failed_run_tags.is_empty(), "{:?}", before.failed_run_tags);
    assert_eq!(
        before.events,
        vec!["DagsterRunNotFoundError: Run id gone set as root run id for run run-A was not found in instance."]
    );
}

#[test]
fn before_1_11_3_an_empty_from_failure_retry_is_launched_with_no_steps() {
    let run = failed_run(vec![Step::new("a", &[], StepStatus::Success)]);
    let since = should_retry(&run, &Failure::default(), &under("1.11.3"));
    assert_eq!(since.action, Action::None);
    assert!(since.events.iter().any(|e| e.contains("No steps needed to be retried")), "{:?}", since.events);
    let before = should_retry(&run, &Failure::default(), &under("1.11.2"));
    assert_eq!(before.action, Action::LaunchNew, "{}", before.reason);
    assert_eq!(before.steps, Some(Vec::new()));
    assert_eq!(tag(&before.new_run_tags, "dagster/is_resume_retry"), Some("true"));
    assert_eq!(tag(&before.failed_run_tags, "dagster/will_retry"), Some("true"));
}

#[test]
fn before_1_11_3_an_empty_from_asset_failure_retry_runs_the_whole_job() {
    // An op job: nothing has an asset, so there is never anything to re-run by asset.
    let op_job = with_strategy(
        failed_run(vec![Step::new("a", &[], StepStatus::Success), Step::new("b", &["a"], StepStatus::Failure)]),
        "FROM_ASSET_FAILURE",
    );
    assert_eq!(should_retry(&op_job, &Failure::default(), &under("1.11.3")).action, Action::None);
    let whole = should_retry(&op_job, &Failure::default(), &under("1.11.2"));
    assert_eq!(whole.action, Action::LaunchNew, "{}", whole.reason);
    assert_eq!(whole.steps, strings(&["a", "b"]));
    assert_eq!((whole.asset_selection, whole.asset_check_selection), (None, None));
    assert_eq!(tag(&whole.new_run_tags, "dagster/is_asset_resume_retry"), Some("true"));
    // A run of an asset subset: the whole job's plan is not in the case.
    let mut subset =
        with_strategy(failed_run(vec![asset_step("x", &[], StepStatus::Success, &["x"], &[])]), "FROM_ASSET_FAILURE");
    subset.asset_selection = strings(&["x"]);
    subset.materialized_assets = vec!["x".into()];
    let whole = should_retry(&subset, &Failure::default(), &under("1.10.21"));
    assert_eq!(whole.action, Action::LaunchNew, "{}", whole.reason);
    assert_eq!((whole.steps, whole.asset_selection), (None, None));
}

#[test]
fn before_1_12_0_a_retry_carries_the_assets_but_not_the_check_selection() {
    let mut run = failed_run(vec![
        asset_step("x", &[], StepStatus::Success, &["x"], &[]),
        asset_step("y", &["x"], StepStatus::Failure, &["y"], &["y:ok"]),
    ]);
    run.asset_selection = strings(&["x", "y"]);
    run.asset_check_selection = strings(&["y:ok"]);
    let since = should_retry(&run, &Failure::default(), &under("1.12.0"));
    assert_eq!(
        (since.asset_selection.clone(), since.asset_check_selection.clone()),
        (strings(&["x", "y"]), strings(&["y:ok"]))
    );
    let before = should_retry(&run, &Failure::default(), &under("1.11.16"));
    assert_eq!((before.asset_selection, before.asset_check_selection), (strings(&["x", "y"]), None));
    assert_eq!(before.steps, strings(&["y"]));
    // ALL_STEPS then re-resolves the job without the check selection: every check of x and y
    // runs, which the case's plan may not hold.
    let all = with_strategy(run, "ALL_STEPS");
    assert_eq!(should_retry(&all, &Failure::default(), &under("1.12.0")).steps, strings(&["x", "y"]));
    let whole = should_retry(&all, &Failure::default(), &under("1.11.16"));
    assert_eq!((whole.action, whole.steps), (Action::LaunchNew, None));
    // A checks-only run (no assets): before 1.12.0 its retry is the whole job.
    let mut checks_only = failed_run(vec![asset_step("y_ok", &[], StepStatus::Failure, &[], &["y:ok"])]);
    checks_only.asset_selection = Some(Vec::new());
    checks_only.asset_check_selection = strings(&["y:ok"]);
    let before = should_retry(&checks_only, &Failure::default(), &under("1.11.16"));
    assert_eq!((before.asset_selection, before.asset_check_selection), (None, None));
}

/// A multi-step asset run, re-executed before: only `b` and `c` were planned, `b` materialised,
/// `c` failed, its blocking check `c:ok` failed, and the unplanned `a` never ran.
fn asset_reexecution() -> Run {
    let mut run = with_strategy(
        failed_run(vec![
            asset_step("a", &[], StepStatus::NotStarted, &["a"], &[]),
            asset_step("b", &["a"], StepStatus::Success, &["b"], &["b:ok"]),
            asset_step("c", &["b"], StepStatus::Failure, &["c"], &["c:ok"]),
        ]),
        "FROM_ASSET_FAILURE",
    );
    run.step_keys_to_execute = strings(&["b", "c"]);
    run.materialized_assets = vec!["b".into(), "c".into()];
    run.check_evaluations = vec![
        CheckEvaluation { check: "b:ok".into(), passed: true, blocking: Some(false), severity: None },
        CheckEvaluation { check: "c:ok".into(), passed: false, blocking: Some(true), severity: None },
    ];
    run
}

#[test]
fn from_asset_failure_keys_follow_the_three_algorithms_of_1_10() {
    let run = asset_reexecution();
    let keys = |version: &str| {
        let d = should_retry(&run, &Failure::default(), &under(version));
        assert_eq!(d.action, Action::LaunchNew, "{version}: {}", d.reason);
        (d.steps.unwrap(), d.asset_selection.unwrap(), d.asset_check_selection.unwrap())
    };
    // 1.10.21 on: planned steps; c's failed blocking check sends c and its checks again.
    assert_eq!(keys("1.10.21"), (vec!["c".into()], vec!["c".into()], vec!["c:ok".into()]));
    assert_eq!(keys("1.13.29"), keys("1.10.21"));
    // 1.10.15–1.10.20: every step of the snapshot, so the unplanned `a` comes along.
    assert_eq!(keys("1.10.20"), (vec!["a".into(), "c".into()], vec!["a".into(), "c".into()], vec!["c:ok".into()]));
    assert_eq!(keys("1.10.15"), keys("1.10.20"));
    // 1.10.12–1.10.14: planned minus done. c is materialised and c:ok was evaluated (failed, but
    // evaluated), so nothing of c runs again; there is nothing at all to re-run, and before
    // 1.11.3 that relaunches the whole job.
    let d = should_retry(&run, &Failure::default(), &under("1.10.14"));
    assert_eq!(d.action, Action::LaunchNew, "{}", d.reason);
    assert_eq!((d.asset_selection, d.asset_check_selection), (None, None));
    assert_eq!(d.steps, strings(&["a", "b", "c"]));
}

#[test]
fn before_1_10_15_a_never_evaluated_check_is_rerun_without_its_required_keys() {
    let mut run = asset_reexecution();
    run.check_evaluations.clear();
    run.steps[2].required_keys = vec!["c".into()];
    let d = should_retry(&run, &Failure::default(), &under("1.10.12"));
    assert_eq!(d.asset_selection, Some(Vec::new()), "c was materialised: no asset, no required key, re-runs");
    assert_eq!(d.asset_check_selection, strings(&["b:ok", "c:ok"]));
    assert_eq!(d.steps, strings(&["b", "c"]));
}

#[test]
fn select_steps_without_a_config_answers_for_the_newest_release() {
    let run = failed_run(vec![Step::new("a", &[], StepStatus::Success)]);
    assert_eq!(select_steps(&run, Strategy::FromFailure), Err(select::NOTHING_TO_RETRY_ERROR.to_string()));
    assert_eq!(Rules::newest(), Rules::of(DagsterVersion::NEWEST));
}
