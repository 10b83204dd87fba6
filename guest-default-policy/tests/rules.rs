//! One native test per rule of docs/dagster-semantics.md, straight against the library (no Wasm).

use runretry_default_policy::*;
use runretry_kit::*;

fn enabled(max_retries: i64) -> RunRetries {
    RunRetries { enabled: true, max_retries, retry_on_asset_or_op_failure: true, ..RunRetries::default() }
}

fn failed_run(steps: Vec<Step>) -> Run {
    let mut run = Run::new("run-A", RunStatus::Failure);
    run.steps = steps;
    run.group = vec![member("run-A", None, &[], None)];
    run
}

fn member(id: &str, parent: Option<&str>, tags: &[(&str, &str)], status: Option<RunStatus>) -> GroupMember {
    GroupMember {
        run_id: id.into(),
        parent_run_id: parent.map(Into::into),
        tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        status,
        exists: true,
    }
}

fn instance(mapping_key: &str, status: StepStatus) -> MappedInstance {
    MappedInstance { mapping_key: mapping_key.into(), status }
}

fn three_steps() -> Vec<Step> {
    vec![
        Step::new("before", &[], StepStatus::Success),
        Step::new("fail", &["before"], StepStatus::Failure),
        Step::new("after", &["fail"], StepStatus::NotStarted),
    ]
}

fn reason(r: FailureReason) -> Failure {
    Failure { reason: Some(r), ..Failure::default() }
}

#[test]
fn s2_disabled_config_never_retries_and_writes_no_tag() {
    let d = should_retry(&failed_run(three_steps()), &Failure::default(), &RunRetries { enabled: false, ..enabled(3) });
    assert_eq!(d.action, Action::None);
    assert!(d.failed_run_tags.is_empty());
}

#[test]
fn s6_1_budget_counts_the_group() {
    let run = failed_run(three_steps());
    let d = should_retry(&run, &Failure::default(), &enabled(1));
    assert_eq!((d.action, d.retry_number), (Action::LaunchNew, Some(1)));
    assert_eq!(d.steps, Some(vec!["after".to_string(), "fail".to_string()]));
    let d = should_retry(&run, &Failure::default(), &enabled(0));
    assert_eq!(d.action, Action::None);
    assert_eq!(tag(&d.failed_run_tags, "dagster/will_retry"), Some("false"));
}

#[test]
fn s6_1_step_failure_filtered_by_retry_on() {
    let config = RunRetries { retry_on_asset_or_op_failure: false, ..enabled(3) };
    let run = failed_run(three_steps());
    let d = should_retry(&run, &reason(FailureReason::StepFailure), &config);
    assert_eq!(d.action, Action::None);
    assert_eq!(d.events, vec![decide::STEP_FAILURE_NOT_RETRIED_EVENT.to_string()]);
    let d = should_retry(&run, &reason(FailureReason::RunException), &config);
    assert_eq!(d.action, Action::LaunchNew);
}

#[test]
fn s4_invalid_max_retries_tag_warns_and_does_not_fall_back() {
    let mut run = failed_run(three_steps());
    run.tags.push(("dagster/max_retries".into(), "2.0".into()));
    let d = should_retry(&run, &Failure::default(), &enabled(5));
    assert_eq!(d.action, Action::None);
    assert_eq!(d.events, vec![decide::MAX_RETRIES_NOT_AN_INT_EVENT.to_string()]);
}

#[test]
fn s4_unknown_failure_reason_is_rejected() {
    let d = should_retry(&failed_run(three_steps()), &reason(FailureReason::Other("NEW".into())), &enabled(3));
    assert_eq!(d.action, Action::None);
    assert!(d.failed_run_tags.is_empty());
    assert!(d.events[0].contains("is not a valid RunFailureReason"));
}

#[test]
fn s6_2_will_retry_tag_is_trusted() {
    let mut run = failed_run(three_steps());
    run.tags.push(("dagster/will_retry".into(), "true".into()));
    let d = should_retry(&run, &Failure::default(), &enabled(0));
    assert_eq!(d.action, Action::LaunchNew);
    assert!(d.failed_run_tags.is_empty(), "nothing to rewrite");
}

#[test]
fn s6_2_terminal_backfill_blocks_but_keeps_will_retry_true() {
    let mut run = failed_run(three_steps());
    run.tags.push(("dagster/backfill".into(), "bf".into()));
    run.backfill = Some(Backfill { id: "bf".into(), exists: true, status: BackfillStatus::Completed });
    let d = should_retry(&run, &Failure::default(), &enabled(3));
    assert_eq!(d.action, Action::None);
    assert_eq!(tag(&d.failed_run_tags, "dagster/will_retry"), Some("true"));
}

#[test]
fn s7_not_started_automatic_child_is_resubmitted() {
    let mut run = failed_run(three_steps());
    run.group.push(member("run-R1", Some("run-A"), &[("dagster/retry_number", "1")], Some(RunStatus::NotStarted)));
    let d = should_retry(&run, &Failure::default(), &enabled(3));
    assert_eq!(d.action, Action::ResubmitExisting);
    assert_eq!(d.resubmit_run_id.as_deref(), Some("run-R1"));
    assert_eq!(tag(&d.failed_run_tags, "dagster/auto_retry_run_id"), Some("run-R1"));
}

#[test]
fn s7_manual_child_does_not_block_but_counts() {
    let mut run = failed_run(three_steps());
    run.group.push(member("run-M1", Some("run-A"), &[], Some(RunStatus::Success)));
    let d = should_retry(&run, &Failure::default(), &enabled(2));
    assert_eq!((d.action, d.retry_number), (Action::LaunchNew, Some(2)));
}

#[test]
fn s8_3_new_run_tags_merge_and_omit() {
    let mut run = failed_run(three_steps());
    run.job_tags = vec![("team".into(), "platform".into()), ("owner".into(), "ops".into())];
    run.tags = vec![
        ("team".into(), "data".into()),
        ("dagster/failure_reason".into(), "STEP_FAILURE".into()),
        ("dagster/will_retry".into(), "true".into()),
    ];
    let d = should_retry(&run, &Failure::default(), &enabled(2));
    let keys: Vec<&str> = d.new_run_tags.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "team",
            "owner",
            "dagster/retry_number",
            "dagster/parent_run_id",
            "dagster/root_run_id",
            "dagster/is_resume_retry"
        ]
    );
    assert_eq!(tag(&d.new_run_tags, "team"), Some("data"));
}

#[test]
fn s9_skipped_step_is_not_retried_below_a_failure() {
    let mut run = failed_run(vec![
        Step::new("s", &[], StepStatus::Success),
        Step::new("x", &[], StepStatus::Failure),
        Step::new("t", &["s", "x"], StepStatus::Skipped),
    ]);
    run.steps.push(Step::new("u", &["t"], StepStatus::Skipped));
    assert_eq!(select_steps(&run, Strategy::FromFailure).map(|s| s.steps), Ok(vec!["x".to_string()]));
}

#[test]
fn s9_parent_status_and_empty_result_are_errors() {
    let mut run = failed_run(vec![Step::new("a", &[], StepStatus::Success)]);
    assert_eq!(select_steps(&run, Strategy::FromFailure), Err(select::NOTHING_TO_RETRY_ERROR.to_string()));
    run.status = RunStatus::Success;
    assert_eq!(select_steps(&run, Strategy::FromFailure), Err(select::NOT_FAILED_ERROR.to_string()));
    assert_eq!(select_steps(&run, Strategy::AllSteps).map(|s| s.steps), Ok(vec!["a".to_string()]));
}

#[test]
fn s9_dynamic_downstream_follows_resolved_mapping_keys() {
    let mut mapped = Step::new("m[?]", &["src"], StepStatus::Mapped);
    mapped.instances = vec![instance("0", StepStatus::Success), instance("1", StepStatus::Failure)];
    let mut next = Step::new("n[?]", &["m[?]"], StepStatus::Mapped);
    next.instances = vec![instance("0", StepStatus::Success)];
    let run = failed_run(vec![Step::new("src", &[], StepStatus::Success), mapped, next]);
    assert_eq!(
        select_steps(&run, Strategy::FromFailure).map(|s| s.steps),
        Ok(vec!["m[1]".to_string(), "n[1]".to_string()])
    );
}

#[test]
fn s9_cyclic_plan_does_not_lose_steps() {
    let run =
        failed_run(vec![Step::new("a", &["b"], StepStatus::Failure), Step::new("b", &["a"], StepStatus::Success)]);
    let selected = select_steps(&run, Strategy::FromFailure).unwrap().steps;
    assert!(selected.contains(&"a".to_string()));
}

#[test]
fn s10_from_asset_failure_never_selects_on_op_jobs() {
    let run = failed_run(three_steps());
    assert_eq!(select_steps(&run, Strategy::FromAssetFailure), Err(select::NO_ASSETS_ERROR.to_string()));
}

#[test]
fn s16_deleted_ancestor_is_refused() {
    let mut run = failed_run(three_steps());
    run.run_id = "run-R2".into();
    run.root_run_id = Some("run-A".into());
    run.parent_run_id = Some("run-R1".into());
    run.group.push(GroupMember { exists: false, ..member("run-R1", Some("run-A"), &[], None) });
    run.group.push(member("run-R2", Some("run-R1"), &[], None));
    let err = select_steps(&run, Strategy::FromFailure).unwrap_err();
    assert!(err.contains("Could not load ancestor run run-R1"), "{err}");
}

#[test]
fn s10_all_steps_runs_the_jobs_plan_so_resolved_instances_fold_into_their_mapped_step() {
    // A FROM_FAILURE re-execution was planned with its parent's mappings: `m[1]` beside `m[?]`,
    // and `n[1]` with no `n[?]` at all. Dagster plans the ALL_STEPS retry from the job.
    let mut mapped = Step::new("m[?]", &["src"], StepStatus::Mapped);
    mapped.instances = vec![instance("1", StepStatus::Failure)];
    let run = failed_run(vec![
        Step::new("src", &[], StepStatus::Success),
        mapped,
        Step::new("m[1]", &["src"], StepStatus::Failure),
        Step::new("n[1]", &["m[1]"], StepStatus::NotStarted),
        Step::new("total", &["n[1]"], StepStatus::NotStarted),
    ]);
    let steps = select_steps(&run, Strategy::AllSteps).map(|s| s.steps);
    assert_eq!(steps, Ok(["m[?]", "n[?]", "src", "total"].map(String::from).to_vec()));
}
