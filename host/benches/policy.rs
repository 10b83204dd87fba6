//! `cargo bench -p runretry --bench policy`: the default policy's logic native vs sandboxed,
//! measured side by side in one run. Benchmark ids are stable (docs/performance.md cites them).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use runretry::case::{Case, Config, Failure, GroupMember, Run, RunStatus, Step, StepStatus, Tags};
use runretry::{Sandbox, SandboxConfig, Strategy};
use runretry_default_policy as native;

/// A realistic failed run: 20 tags, a group of 3 runs, a 30-step plan with one failure.
fn realistic_case() -> Case {
    let mut tags: Tags = (0..17).map(|i| (format!("team/label_{i}"), format!("value-{i}"))).collect();
    tags.insert("dagster/max_retries".into(), "5".into());
    tags.insert("dagster/parent_run_id".into(), "run-R1".into());
    tags.insert("dagster/root_run_id".into(), "run-A".into());
    let steps = (0..30)
        .map(|i| Step {
            key: format!("op_{i:02}"),
            upstream: if i == 0 { vec![] } else { vec![format!("op_{:02}", (i - 1) / 2)] },
            status: match i {
                7 => StepStatus::Failure,
                _ if i > 14 && (i - 1) / 2 >= 7 => StepStatus::NotStarted,
                _ => StepStatus::Success,
            },
            instances: None,
            dynamic_output: false,
            mapping_keys: vec![],
        })
        .collect();
    let member = |id: &str, parent: Option<&str>, n: Option<u32>| GroupMember {
        run_id: id.into(),
        parent_run_id: parent.map(Into::into),
        tags: n.map(|n| ("dagster/retry_number".to_string(), n.to_string())).into_iter().collect(),
        status: Some(RunStatus::Failure),
        exists: true,
    };
    Case {
        config: Config { enabled: true, max_retries: 3, retry_on_asset_or_op_failure: true },
        run: Run {
            run_id: "run-R2".into(),
            status: RunStatus::Failure,
            tags,
            root_run_id: Some("run-A".into()),
            parent_run_id: Some("run-R1".into()),
            group: Some(vec![
                member("run-A", None, None),
                member("run-R1", Some("run-A"), Some(1)),
                member("run-R2", Some("run-R1"), Some(2)),
            ]),
            steps,
            step_keys_to_execute: None,
            op_selection: None,
            job_tags: Tags::new(),
            backfill: None,
            job: Some("bench_job".into()),
        },
        failure: Failure { reason: Some("STEP_FAILURE".into()), message: None },
    }
}

/// A FROM_FAILURE plan of `n` steps, a binary tree with failures spread through it.
fn plan_case(n: usize) -> Case {
    let mut case = realistic_case();
    case.run.steps = (0..n)
        .map(|i| Step {
            key: format!("step_{i}"),
            upstream: if i == 0 { vec![] } else { vec![format!("step_{}", (i - 1) / 2)] },
            status: match i % 97 {
                13 => StepStatus::Failure,
                41 => StepStatus::InProgress,
                _ => StepStatus::Success,
            },
            instances: None,
            dynamic_output: false,
            mapping_keys: vec![],
        })
        .collect();
    case
}

/// The same input as the guest library's own types (what a native embedding would build).
fn to_native(case: &Case) -> (native::Run, native::Failure, native::Config) {
    let tags = |t: &Tags| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>();
    let run_status = |s: RunStatus| match s {
        RunStatus::Failure => native::RunStatus::Failure,
        RunStatus::Canceled => native::RunStatus::Canceled,
        _ => native::RunStatus::Success,
    };
    let step_status = |s: StepStatus| match s {
        StepStatus::Success => native::StepStatus::Success,
        StepStatus::Failure => native::StepStatus::Failure,
        StepStatus::Skipped => native::StepStatus::Skipped,
        StepStatus::InProgress => native::StepStatus::InProgress,
        StepStatus::NotStarted => native::StepStatus::NotStarted,
        StepStatus::ResourceInitFailure => native::StepStatus::ResourceInitFailure,
        StepStatus::Mapped => native::StepStatus::Mapped,
    };
    let run = &case.run;
    let native_run = native::Run {
        run_id: run.run_id.clone(),
        status: run_status(run.status),
        tags: tags(&run.tags),
        root_run_id: run.root_run_id.clone(),
        parent_run_id: run.parent_run_id.clone(),
        group: run
            .group
            .iter()
            .flatten()
            .map(|m| native::GroupMember {
                run_id: m.run_id.clone(),
                parent_run_id: m.parent_run_id.clone(),
                tags: tags(&m.tags),
                status: m.status.map(run_status),
                exists: m.exists,
            })
            .collect(),
        steps: run
            .steps
            .iter()
            .map(|s| native::Step {
                key: s.key.clone(),
                upstream: s.upstream.clone(),
                status: step_status(s.status),
                instances: Vec::new(),
            })
            .collect(),
        step_keys_to_execute: run.step_keys_to_execute.clone(),
        job_tags: tags(&run.job_tags),
        backfill: None,
    };
    let failure =
        native::Failure { reason: case.failure.reason.as_deref().map(native::FailureReason::parse), message: None };
    let config = native::Config {
        enabled: case.config.enabled,
        max_retries: case.config.max_retries,
        retry_on_asset_or_op_failure: case.config.retry_on_asset_or_op_failure,
    };
    (native_run, failure, config)
}

fn bench_should_retry(c: &mut Criterion) {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let policy = sandbox.load_default().expect("default policy");
    let case = realistic_case();
    let (run, failure, config) = to_native(&case);
    // The sandboxed and native answers must agree, or the comparison means nothing.
    let wasm = policy.decide(&case).unwrap();
    let direct = native::should_retry(&run, &failure, &config);
    assert_eq!(wasm.steps, direct.steps);
    assert_eq!(wasm.retry_number, direct.retry_number);

    let mut group = c.benchmark_group("should_retry");
    group.bench_function("native", |b| b.iter(|| native::should_retry(black_box(&run), &failure, &config)));
    group.bench_function("wasm", |b| b.iter(|| policy.decide(black_box(&case)).unwrap()));
    let mut warm = policy.warm().unwrap();
    group.bench_function("wasm_warm", |b| b.iter(|| warm.decide(black_box(&case)).unwrap()));
    // Where a fresh decision's time goes: a new instance alone, without a call.
    group.bench_function("instantiate", |b| b.iter(|| policy.warm().unwrap()));
    group.bench_function("json_decide", |b| {
        let text = serde_json::to_string(&case).unwrap();
        b.iter(|| {
            let case = Case::from_json("bench", black_box(&text)).unwrap();
            serde_json::to_string(&policy.decide(&case).unwrap()).unwrap()
        })
    });
    group.finish();
}

fn bench_select_steps(c: &mut Criterion) {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let policy = sandbox.load_default().expect("default policy");
    for (label, size) in [("100", 100), ("1k", 1_000), ("10k", 10_000)] {
        let case = plan_case(size);
        let (run, _, _) = to_native(&case);
        let expected = native::select_steps(&run, native::Strategy::FromFailure).unwrap();
        match policy.select_steps(&case.run, Strategy::FromFailure).unwrap() {
            runretry::Selection::Steps { steps, .. } => assert_eq!(steps, expected),
            other => panic!("{other:?}"),
        }
        let mut group = c.benchmark_group(format!("select_steps_{label}"));
        group.bench_function(BenchmarkId::from_parameter("native"), |b| {
            b.iter(|| native::select_steps(black_box(&run), native::Strategy::FromFailure).unwrap())
        });
        group.bench_function(BenchmarkId::from_parameter("wasm"), |b| {
            b.iter(|| policy.select_steps(black_box(&case.run), Strategy::FromFailure).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, bench_should_retry, bench_select_steps);
criterion_main!(benches);
