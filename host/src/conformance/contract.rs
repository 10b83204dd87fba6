//! The contract suite: properties every policy must hold whatever its semantics, on inputs the
//! kit generates (seeded, so a failure reproduces).
//!
//! For every generated case a policy must:
//! - answer `should-retry` without failing, with a decision the host's checks accept (a retry
//!   has a retry number of at least 1, a strategy and plan step keys without duplicates; the
//!   delay is finite and not negative; tags and resubmits are well-formed: see `validate`);
//! - answer `select-steps` for every strategy with plan keys (and plan asset and check keys)
//!   only, or a refusal;
//! - give byte-identical answers from two fresh instances;
//! - give the same answers whatever order the plan lists its steps in (every case is also run
//!   with its plan shuffled, and two plans are listed in reverse dependency order).
//!
//! Inputs cover op jobs and asset jobs: asset plans with multi-assets that can and cannot be
//! subset, in-step and separate checks, blocking flags, materialisations and evaluations.

use runretry_kit::{
    Backfill, BackfillStatus, Case, CheckEvaluation, CheckSeverity, Decision, Failure, FailureReason, GroupMember,
    MappedInstance, Run, RunRetries, RunStatus, Step, StepStatus, Strategy,
};

use crate::policy::Policy;

use super::Report;

/// Run the contract suite against `policy`.
pub(crate) fn run(policy: &Policy) -> Report {
    let mut report = Report::default();
    if !policy.decides_runs() {
        // The generated inputs are runs: a task policy has none of them to answer.
        report.skipped = generate().len();
        return report;
    }
    for (name, case) in generate() {
        report.record(&name, "contract", check(policy, &case));
    }
    report
}

/// Every property, for one input.
pub(crate) fn check(policy: &Policy, case: &Case) -> Vec<String> {
    let mut problems = Vec::new();
    let json = |d: &Decision| serde_json::to_string(d).expect("decisions serialise");
    match (policy.decide(case), policy.decide(case)) {
        (Ok(first), Ok(second)) => {
            if json(&first) != json(&second) {
                problems.push(format!("should-retry is not deterministic: {} then {}", json(&first), json(&second)));
            }
            if case.run.steps.len() > 1 {
                match policy.decide(&shuffled(case)) {
                    Ok(other) if json(&other) != json(&first) => problems.push(format!(
                        "should-retry depends on the order the plan lists its steps in: {} with the plan \
                         as listed, {} with it shuffled",
                        json(&first),
                        json(&other)
                    )),
                    Ok(_) => {}
                    Err(e) => problems.push(format!("should-retry failed on the shuffled plan: {e}")),
                }
            }
        }
        (Err(e), _) | (_, Err(e)) => problems.push(format!("should-retry failed: {e}")),
    }
    for strategy in [Strategy::FromFailure, Strategy::AllSteps, Strategy::FromAssetFailure] {
        match (policy.select_steps(&case.run, strategy), policy.select_steps(&case.run, strategy)) {
            (Ok(first), Ok(second)) if first != second => {
                problems.push(format!("select-steps {strategy:?} is not deterministic: {first:?} then {second:?}"))
            }
            (Ok(_), Ok(_)) => {}
            (Err(e), _) | (_, Err(e)) => problems.push(format!("select-steps {strategy:?} failed: {e}")),
        }
    }
    problems
}

/// The same case with its plan listed in another order, seeded by the plan itself.
fn shuffled(case: &Case) -> Case {
    let mut case = case.clone();
    let mut rng = Lcg(0x5eed ^ case.run.steps.len() as u64);
    // Fisher-Yates; a plan of two steps is swapped outright so that it really changes.
    for i in (1..case.run.steps.len()).rev() {
        let j = if i == 1 && case.run.steps.len() == 2 { 0 } else { rng.below(i as u64 + 1) as usize };
        case.run.steps.swap(i, j);
    }
    case
}

/// The generated inputs, named.
pub(crate) fn generate() -> Vec<(String, Case)> {
    let mut cases = Vec::new();
    let reasons: Vec<Option<FailureReason>> = std::iter::once(None)
        .chain(FailureReason::KNOWN.iter().cloned().map(Some))
        .chain([Some(FailureReason::parse("PREEMPTED_BY_A_NEWER_DAGSTER"))])
        .collect();
    let configs = [
        RunRetries { enabled: true, max_retries: 3, retry_on_asset_or_op_failure: true, ..RunRetries::default() },
        RunRetries { enabled: true, max_retries: 0, retry_on_asset_or_op_failure: false, ..RunRetries::default() },
        RunRetries { enabled: false, max_retries: 5, retry_on_asset_or_op_failure: true, ..RunRetries::default() },
    ];
    for (c, config) in configs.iter().enumerate() {
        for reason in &reasons {
            let mut case = base_case(diamond(), *config);
            case.failure.reason = reason.clone();
            let name = reason.as_ref().map_or("none", FailureReason::as_str);
            cases.push((format!("reason-{name}-config-{c}"), case));
        }
    }
    let mut rng = Lcg(0x5eed_2026);
    for i in 0..40 {
        cases.push((format!("random-{i}"), random_case(&mut rng)));
    }
    for i in 0..30 {
        let steps = 1 + rng.below(12) as usize;
        cases.push((format!("random-assets-{i}"), random_asset_case(&mut rng, steps)));
    }
    let mut big = random_asset_case(&mut rng, 2_000);
    big.run.tags.retain(|(k, _)| k != "dagster/will_retry");
    cases.push(("asset-plan-of-2000-steps".into(), big));
    cases.extend(edge_cases());
    cases
}

/// An asset job: each step materialises one to three assets and evaluates up to two checks,
/// some blocking; some steps cannot be subset; some assets were materialised and some checks
/// evaluated (passed or not, blocking or not); the parent may itself be a step subset.
fn random_asset_case(rng: &mut Lcg, n: usize) -> Case {
    const STATUSES: [StepStatus; 4] =
        [StepStatus::Success, StepStatus::Failure, StepStatus::NotStarted, StepStatus::Skipped];
    let mut steps: Vec<Step> = Vec::with_capacity(n);
    let mut materialized = Vec::new();
    let mut evaluations = Vec::new();
    for i in 0..n {
        let upstream: Vec<String> =
            (i.saturating_sub(4)..i).filter(|_| rng.below(3) == 0).map(|j| steps[j].key.clone()).collect();
        let mut step = step(&format!("asset_step_{i}"), upstream, *rng.pick(&STATUSES));
        step.assets = (0..1 + rng.below(3)).map(|a| format!("ns/asset_{i}_{a}")).collect();
        step.checks = (0..rng.below(3)).map(|c| format!("{}:check_{c}", rng.pick(&step.assets))).collect();
        step.blocking_checks = step.checks.iter().filter(|_| rng.below(2) == 0).cloned().collect();
        step.can_subset = *rng.pick(&[None, Some(true), Some(false)]);
        let all_keys: Vec<String> = step.entity_keys().map(str::to_string).collect();
        step.required_keys = match step.can_subset {
            Some(false) => all_keys,
            _ => all_keys.into_iter().filter(|_| rng.below(3) == 0).collect(),
        };
        materialized.extend(step.assets.iter().filter(|_| rng.below(2) == 0).cloned());
        for check in &step.checks {
            for _ in 0..rng.below(3) {
                evaluations.push(CheckEvaluation {
                    check: check.clone(),
                    passed: rng.below(2) == 0,
                    blocking: *rng.pick(&[None, Some(false), Some(true)]),
                    severity: *rng.pick(&[None, Some(CheckSeverity::Error), Some(CheckSeverity::Warn)]),
                });
            }
        }
        steps.push(step);
    }
    let mut case = base_case(
        steps,
        RunRetries { enabled: true, max_retries: 3, retry_on_asset_or_op_failure: true, ..RunRetries::default() },
    );
    if rng.below(3) == 0 {
        let subset = case.run.steps.iter().filter(|_| rng.below(2) == 0).map(|s| s.key.clone()).collect();
        case.run.step_keys_to_execute = Some(subset);
    }
    if rng.below(2) == 0 {
        let all = case.run.steps.iter().flat_map(|s| s.assets.clone()).collect();
        case.run.asset_selection = Some(all);
        case.run.asset_check_selection = Some(Vec::new());
    }
    case.run.materialized_assets = materialized;
    case.run.check_evaluations = evaluations;
    let strategy = *rng.pick(&["FROM_ASSET_FAILURE", "FROM_ASSET_FAILURE", "FROM_FAILURE", "ALL_STEPS"]);
    case.run.tags.push(("dagster/retry_strategy".into(), strategy.into()));
    case.failure.reason = rng.pick(&[Some("STEP_FAILURE"), Some("RUN_EXCEPTION"), None]).map(FailureReason::parse);
    case
}

fn edge_cases() -> Vec<(String, Case)> {
    let enabled =
        RunRetries { enabled: true, max_retries: 3, retry_on_asset_or_op_failure: true, ..RunRetries::default() };
    let mut out = vec![("empty-plan".to_string(), base_case(Vec::new(), enabled))];

    // Plans listed in reverse dependency order: a policy that walks the plan as listed, instead
    // of in dependency order, misses the downstream closure here.
    let mut reversed = diamond();
    reversed.reverse();
    out.push(("diamond-listed-in-reverse".into(), base_case(reversed, enabled)));
    let mut chain: Vec<Step> = (0..50)
        .map(|i| {
            let upstream = if i == 0 { vec![] } else { vec![format!("link_{}", i - 1)] };
            step(&format!("link_{i}"), upstream, if i == 10 { StepStatus::Failure } else { StepStatus::Success })
        })
        .collect();
    chain.reverse();
    out.push(("chain-listed-in-reverse".into(), base_case(chain, enabled)));

    // 10,000 steps: a chain with side branches, failures spread through it.
    let big: Vec<Step> = (0..10_000)
        .map(|i| {
            let status = match i % 997 {
                13 => StepStatus::Failure,
                500 => StepStatus::InProgress,
                _ if i > 9_000 => StepStatus::NotStarted,
                _ => StepStatus::Success,
            };
            let upstream = if i == 0 { vec![] } else { vec![format!("step_{}", i / 2)] };
            step(&format!("step_{i}"), upstream, status)
        })
        .collect();
    out.push(("plan-of-10000-steps".into(), base_case(big, enabled)));

    let long = "k".repeat(10_000);
    let unicode = "шаг_ü_步骤_🚀";
    let keys_case = base_case(
        vec![
            step(&long, vec![], StepStatus::Success),
            step(unicode, vec![long.clone()], StepStatus::Failure),
            step(&format!("{unicode}_after"), vec![unicode.to_string()], StepStatus::NotStarted),
        ],
        enabled,
    );
    out.push(("long-and-non-ascii-keys".into(), keys_case));

    let mut many_tags = base_case(diamond(), enabled);
    for i in 0..1_000 {
        many_tags.run.tags.push((format!("team/tag_{i}"), format!("value-{i}-ß")));
    }
    out.push(("1000-tags".into(), many_tags));

    let mut big_group = base_case(diamond(), RunRetries { max_retries: 1_000, ..enabled });
    big_group.run.run_id = "run-499".into();
    big_group.run.root_run_id = Some("run-0".into());
    big_group.run.parent_run_id = Some("run-498".into());
    big_group.run.group = (0..500)
        .map(|i| GroupMember {
            run_id: format!("run-{i}"),
            parent_run_id: (i > 0).then(|| format!("run-{}", i - 1)),
            tags: vec![("dagster/retry_number".to_string(), i.to_string())],
            status: Some(RunStatus::Failure),
            exists: true,
        })
        .collect();
    out.push(("group-of-500-runs".into(), big_group));
    out
}

fn base_case(steps: Vec<Step>, config: RunRetries) -> Case {
    let run = Run { steps, job: Some("contract_job".into()), ..Run::new("run-A", RunStatus::Failure) };
    Case { config, run, failure: Failure { reason: Some(FailureReason::StepFailure), ..Failure::default() } }
}

fn step(key: &str, upstream: Vec<String>, status: StepStatus) -> Step {
    Step { upstream, ..Step::new(key, &[], status) }
}

fn diamond() -> Vec<Step> {
    vec![
        step("A", vec![], StepStatus::Success),
        step("B", vec!["A".into()], StepStatus::Failure),
        step("C", vec!["A".into()], StepStatus::Success),
        step("D", vec!["B".into(), "C".into()], StepStatus::NotStarted),
    ]
}

/// A small deterministic generator (no dependency, same sequence on every machine).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn random_case(rng: &mut Lcg) -> Case {
    const STATUSES: [StepStatus; 6] = [
        StepStatus::Success,
        StepStatus::Failure,
        StepStatus::Skipped,
        StepStatus::InProgress,
        StepStatus::NotStarted,
        StepStatus::ResourceInitFailure,
    ];
    let n = 1 + rng.below(30) as usize;
    let mut steps = Vec::with_capacity(n);
    for i in 0..n {
        let upstream: Vec<String> = (0..i).filter(|_| rng.below(4) == 0).map(|j| steps_key(&steps, j)).collect();
        if rng.below(6) == 0 {
            let instances = (0..rng.below(4))
                .map(|k| MappedInstance { mapping_key: k.to_string(), status: *rng.pick(&STATUSES) })
                .collect();
            steps.push(Step { upstream, instances, ..Step::new(&format!("mapped_{i}[?]"), &[], StepStatus::Mapped) });
        } else {
            steps.push(step(&format!("op_{i}"), upstream, *rng.pick(&STATUSES)));
        }
    }
    let config = RunRetries {
        enabled: rng.below(5) != 0,
        max_retries: rng.below(5) as i64 - 1,
        retry_on_asset_or_op_failure: rng.below(2) == 0,
        ..RunRetries::default()
    };
    let mut case = base_case(steps, config);
    case.run.status = *rng.pick(&[RunStatus::Failure, RunStatus::Failure, RunStatus::Canceled, RunStatus::Success]);
    case.run.group[0].status = Some(case.run.status);
    case.failure.reason =
        rng.pick(&[None, Some("STEP_FAILURE"), Some("RUN_EXCEPTION"), Some("NEW_REASON")]).map(FailureReason::parse);
    let tag_values = [
        ("dagster/max_retries", *rng.pick(&["2", " 3 ", "x", "-1", "0"])),
        ("dagster/retry_strategy", *rng.pick(&["ALL_STEPS", "FROM_FAILURE", "all_steps", "FROM_ASSET_FAILURE"])),
        ("dagster/retry_on_asset_or_op_failure", *rng.pick(&["false", "no", "0", "True"])),
        ("dagster/will_retry", *rng.pick(&["true", "false"])),
        ("dagster/backfill", "bf-1"),
    ];
    for (key, value) in tag_values {
        if rng.below(3) == 0 {
            case.run.tags.push((key.into(), value.into()));
        }
    }
    if runretry_kit::tag(&case.run.tags, "dagster/backfill").is_some() {
        let exists = rng.below(4) != 0;
        let status = *rng.pick(&[BackfillStatus::Requested, BackfillStatus::Completed, BackfillStatus::Canceling]);
        // A deleted backfill reads as a terminal one, as the case format makes it.
        let status = if exists { status } else { BackfillStatus::Canceled };
        case.run.backfill = Some(Backfill { id: "bf-1".into(), exists, status });
    }
    if rng.below(2) == 0 {
        case.run.run_id = "run-R1".into();
        case.run.root_run_id = Some("run-A".into());
        case.run.parent_run_id = Some("run-A".into());
        case.run.group = vec![
            GroupMember {
                run_id: "run-A".into(),
                parent_run_id: None,
                tags: Vec::new(),
                status: Some(RunStatus::Failure),
                exists: rng.below(5) != 0,
            },
            GroupMember {
                run_id: "run-R1".into(),
                parent_run_id: Some("run-A".into()),
                tags: Vec::new(),
                status: Some(RunStatus::Failure),
                exists: true,
            },
        ];
    }
    case
}

fn steps_key(steps: &[Step], index: usize) -> String {
    steps[index].key.clone()
}
