//! `cargo bench -p runretry --bench policy`: the default policy's logic native vs sandboxed,
//! measured side by side in one run. Benchmark ids are stable (docs/performance.md cites them).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use runretry::batch::decide_batch;
use runretry::{
    Case, Deployment, ExceptionInfo, Failure, FailureReason, GroupMember, HistoryRun, LaunchOrigin, OnPolicyError,
    RetrySettings, Run, RunRetries, RunStatus, Sandbox, SandboxConfig, Step, StepStatus, Strategy, TaskCase, TaskRun,
    TaskState,
};
use runretry_default_policy as native;

/// A realistic failed run: 20 tags, a group of 3 runs, a 30-step plan with one failure.
fn realistic_case() -> Case {
    let mut tags: Vec<(String, String)> = (0..17).map(|i| (format!("team/label_{i}"), format!("value-{i}"))).collect();
    tags.push(("dagster/max_retries".into(), "5".into()));
    tags.push(("dagster/parent_run_id".into(), "run-R1".into()));
    tags.push(("dagster/root_run_id".into(), "run-A".into()));
    let steps = (0..30)
        .map(|i| {
            let upstream = if i == 0 { vec![] } else { vec![format!("op_{:02}", (i - 1) / 2)] };
            let status = match i {
                7 => StepStatus::Failure,
                _ if i > 14 && (i - 1) / 2 >= 7 => StepStatus::NotStarted,
                _ => StepStatus::Success,
            };
            Step { upstream, ..Step::new(&format!("op_{i:02}"), &[], status) }
        })
        .collect();
    let member = |id: &str, parent: Option<&str>, n: Option<u32>| GroupMember {
        run_id: id.into(),
        parent_run_id: parent.map(Into::into),
        tags: n.map(|n| ("dagster/retry_number".to_string(), n.to_string())).into_iter().collect(),
        status: Some(RunStatus::Failure),
        exists: true,
    };
    let run = Run {
        tags,
        root_run_id: Some("run-A".into()),
        parent_run_id: Some("run-R1".into()),
        group: vec![
            member("run-A", None, None),
            member("run-R1", Some("run-A"), Some(1)),
            member("run-R2", Some("run-R1"), Some(2)),
        ],
        steps,
        job: Some("bench_job".into()),
        ..Run::new("run-R2", RunStatus::Failure)
    };
    Case {
        config: RunRetries {
            enabled: true,
            max_retries: 3,
            retry_on_asset_or_op_failure: true,
            ..RunRetries::default()
        },
        run,
        failure: Failure::new(Some(FailureReason::StepFailure)),
    }
}

/// A FROM_FAILURE plan of `n` steps, a binary tree with failures spread through it.
fn plan_case(n: usize) -> Case {
    let mut case = realistic_case();
    case.run.steps = (0..n)
        .map(|i| {
            let upstream = if i == 0 { vec![] } else { vec![format!("step_{}", (i - 1) / 2)] };
            let status = match i % 97 {
                13 => StepStatus::Failure,
                41 => StepStatus::InProgress,
                _ => StepStatus::Success,
            };
            Step { upstream, ..Step::new(&format!("step_{i}"), &[], status) }
        })
        .collect();
    case
}

fn bench_should_retry(c: &mut Criterion) {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let policy = sandbox.load_default().expect("default policy");
    let case = realistic_case();
    // One model: the native library takes the very values the sandbox is handed.
    let (run, failure, config) = (&case.run, &case.failure, &case.config);
    // The sandboxed and native answers must agree, or the comparison means nothing.
    let wasm = policy.decide(&case).unwrap();
    let direct = native::should_retry(run, failure, config);
    assert_eq!(wasm.steps, direct.steps);
    assert_eq!(wasm.retry_number, direct.retry_number);

    let mut group = c.benchmark_group("should_retry");
    group.bench_function("native", |b| b.iter(|| native::should_retry(black_box(run), failure, config)));
    group.bench_function("wasm", |b| b.iter(|| policy.decide(black_box(&case)).unwrap()));
    let mut warm = policy.warm().unwrap();
    group.bench_function("wasm_warm", |b| b.iter(|| warm.decide(black_box(&case)).unwrap()));
    // Where a fresh decision's time goes: a new instance alone, without a call.
    group.bench_function("instantiate", |b| b.iter(|| policy.warm().unwrap()));
    // The same component through its typed interface, as Python and JavaScript policies are
    // called: what the packed case saves.
    assert!(policy.is_packed());
    let typed = policy.typed_calls();
    assert_eq!(typed.decide(&case).unwrap(), wasm);
    group.bench_function("wasm_typed", |b| b.iter(|| typed.decide(black_box(&case)).unwrap()));
    let mut warm_typed = typed.warm().unwrap();
    group.bench_function("wasm_warm_typed", |b| b.iter(|| warm_typed.decide(black_box(&case)).unwrap()));
    group.bench_function("json_decide", |b| {
        let text = serde_json::to_string(&case).unwrap();
        b.iter(|| {
            let case = Case::from_json("bench", black_box(&text)).unwrap();
            serde_json::to_string(&policy.decide(&case).unwrap()).unwrap()
        })
    });
    group.finish();
}

/// A realistic failed task try: try 2 of 4 with exponential backoff, an exception with a
/// cause, and the task in its last 10 runs.
fn realistic_task() -> TaskCase {
    let mut exception = ExceptionInfo::new("requests.exceptions.ConnectionError", "connection reset by peer");
    exception.bases =
        ["requests.exceptions.RequestException", "builtins.OSError", "builtins.Exception"].map(String::from).to_vec();
    TaskCase {
        settings: RetrySettings {
            retries: 3,
            retry_delay_seconds: 60.0,
            retry_exponential_backoff: 2.0,
            max_retry_delay_seconds: Some(600.0),
            ..RetrySettings::default()
        },
        logical_date: Some("2026-12-07 10:00:00+00:00".into()),
        causes: vec![ExceptionInfo::new("builtins.ConnectionResetError", "[Errno 104] Connection reset by peer")],
        history: (0..10).map(|i| TaskRun::new(&format!("scheduled__{i}"), TaskState::Success)).collect(),
        now: Some(1_796_641_200.0),
        ..TaskCase::new("etl", "load", "scheduled__2026-12-07T10:00:00+00:00", 2, 3, exception)
    }
}

/// A task decision beside a run decision (`should_retry/wasm`, measured in the same run): the
/// issue's bar is that a task costs no more than a run.
fn bench_decide_task(c: &mut Criterion) {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let policy = sandbox.load_default().expect("default policy");
    let task = realistic_task();
    assert_eq!(policy.decide_task(&task).unwrap(), native::task::decide_task(&task));
    let case = realistic_case();
    let mut group = c.benchmark_group("decide_task");
    group.bench_function("native", |b| b.iter(|| native::task::decide_task(black_box(&task))));
    group.bench_function("wasm", |b| b.iter(|| policy.decide_task(black_box(&task)).unwrap()));
    group.bench_function("should_retry_wasm", |b| b.iter(|| policy.decide(black_box(&case)).unwrap()));
    group.finish();
}

/// A decision's cost in the number of tags: the realistic case (20 tags) beside the same case
/// with 30,000, whose every tag the retry copies. Linear, not quadratic (30,000 tags used to
/// exhaust the fuel).
fn bench_tags(c: &mut Criterion) {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let policy = sandbox.load_default().expect("default policy");
    let mut group = c.benchmark_group("should_retry_tags");
    for (label, extra) in [("20", 0), ("30k", 30_000 - 20)] {
        let mut case = realistic_case();
        case.run.tags.extend((0..extra).map(|i| (format!("team/extra_{i}"), format!("value-{i}"))));
        assert!(policy.decide(&case).unwrap().new_run_tags.len() > case.run.tags.len());
        group.bench_function(BenchmarkId::new("wasm", label), |b| b.iter(|| policy.decide(black_box(&case)).unwrap()));
        let (run, failure, config) = (&case.run, &case.failure, &case.config);
        group.bench_function(BenchmarkId::new("native", label), |b| {
            b.iter(|| native::should_retry(black_box(run), failure, config))
        });
    }
    group.finish();
}

/// `n` earlier runs as the Dagster integration sends them: run groups of a root and 2 retries,
/// uuid-long ids, times, and for each failure its reason and a two-part error of ~170 bytes.
fn history(n: usize) -> Vec<HistoryRun> {
    (0..n)
        .map(|i| {
            let root = format!("0f8c2b1e-5d4a-4c3b-9e2f-{:012}", i / 3 * 3);
            let retry_number = (i % 3 != 0).then_some((i % 3) as u32);
            HistoryRun {
                root_run_id: retry_number.map(|_| root),
                retry_number,
                launched_by: LaunchOrigin::Schedule,
                start_time: Some(1_764_800_000.0 - 60.0 * i as f64),
                end_time: Some(1_764_800_030.0 - 60.0 * i as f64),
                failure_reason: Some(FailureReason::StepFailure),
                failure_message: Some(format!(
                    "dagster._core.errors.DagsterExecutionStepExecutionError: Error occurred while executing op \
                     \"fetch\":\nThe above exception was caused by: ConnectionError: upstream API unavailable after {i} tries"
                )),
                ..HistoryRun::new(&format!("0f8c2b1e-5d4a-4c3b-9e2f-{i:012}"), RunStatus::Failure)
            }
        })
        .collect()
}

/// A decision's cost in the job's history: the realistic case without history and with 100
/// earlier runs (the Dagster integration's default bound), for the default policy (which
/// ignores it: marshalling only) and the circuit-breaker example (which reads it).
fn bench_history(c: &mut Criterion) {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let default = sandbox.load_default().expect("default policy");
    let breaker_path = runretry_test_guests::example_policy("circuit_breaker_policy");
    let breaker = sandbox.load_file(breaker_path.as_ref()).expect("circuit breaker");
    let mut group = c.benchmark_group("should_retry_history");
    for n in [0, 100] {
        let mut case = realistic_case();
        case.run.history = history(n);
        case.failure.now = Some(1_764_800_100.0);
        for (name, policy) in [("default", &default), ("circuit_breaker", &breaker)] {
            group.bench_function(BenchmarkId::new(name, n), |b| b.iter(|| policy.decide(black_box(&case)).unwrap()));
        }
    }
    group.finish();
}

/// One decision of the realistic case by a policy in each language, a fresh instance each, as a
/// deployed policy gets: the Rust backoff example (called packed), and the Python and
/// JavaScript examples (called typed; their runtimes start in every instance). Compiled once
/// into a cache under the target dir.
fn bench_languages(c: &mut Criterion) {
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-compile-cache");
    let sandbox = Sandbox::new(SandboxConfig { cache_dir: Some(cache), ..SandboxConfig::default() }).expect("sandbox");
    let case = realistic_case();
    let mut group = c.benchmark_group("should_retry_language");
    group.sample_size(20);
    for (label, name) in [("rust", "backoff_policy"), ("python", "python_policy"), ("javascript", "js_policy")] {
        if std::env::var_os("RUNRETRY_SKIP_NON_RUST_EXAMPLES").is_some() && label != "rust" {
            continue;
        }
        let policy = sandbox.load_file(runretry_test_guests::example_policy(name).as_ref()).expect(name);
        policy.decide(&case).expect(name);
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter(|| policy.decide(black_box(&case)).unwrap())
        });
    }
    group.finish();
}

fn bench_select_steps(c: &mut Criterion) {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let policy = sandbox.load_default().expect("default policy");
    for (label, size) in [("100", 100), ("1k", 1_000), ("10k", 10_000)] {
        let case = plan_case(size);
        let run = &case.run;
        let expected = native::select_steps(run, Strategy::FromFailure).unwrap();
        match policy.select_steps(&case.run, Strategy::FromFailure).unwrap() {
            runretry::SelectionAnswer::Selected { selection, .. } => assert_eq!(selection, expected),
            other => panic!("{other:?}"),
        }
        let mut group = c.benchmark_group(format!("select_steps_{label}"));
        group.bench_function(BenchmarkId::from_parameter("native"), |b| {
            b.iter(|| native::select_steps(black_box(run), Strategy::FromFailure).unwrap())
        });
        group.bench_function(BenchmarkId::from_parameter("wasm"), |b| {
            b.iter(|| policy.select_steps(black_box(&case.run), Strategy::FromFailure).unwrap())
        });
        let typed = policy.typed_calls();
        group.bench_function(BenchmarkId::from_parameter("wasm_typed"), |b| {
            b.iter(|| typed.select_steps(black_box(&case.run), Strategy::FromFailure).unwrap())
        });
        // What the host's check of the input (part of `wasm` above) costs on its own.
        group
            .bench_function(BenchmarkId::from_parameter("validate"), |b| b.iter(|| black_box(run).validate().unwrap()));
        group.finish();
    }
}

/// `decide --batch`'s engine: JSON Lines in, decisions out, on every core (throughput in
/// decisions per second), and on one core for the ratio. The embedded default policy reuses an
/// instance per thread; `fresh_instances` loads the same bytes from a file, as any deployed
/// policy is, which gets a fresh instance per decision.
fn bench_batch(c: &mut Criterion) {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let deployment = Deployment::load(&sandbox, None, OnPolicyError::Fail).expect("default policy");
    let file = std::env::temp_dir().join(format!("runretry-bench-{}.wasm", std::process::id()));
    std::fs::write(&file, runretry::DEFAULT_POLICY_WASM).unwrap();
    let deployed = Deployment::load(&sandbox, Some(&file), OnPolicyError::Fail).expect("the same policy, from a file");
    let line = serde_json::to_string(&realistic_case()).unwrap();
    const LINES: usize = 2_000;
    let input = format!("{line}\n").repeat(LINES);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut group = c.benchmark_group("batch_2000");
    group.throughput(Throughput::Elements(LINES as u64)).sample_size(10);
    let runs = [
        ("one_core".to_string(), 1, &deployment),
        (format!("all_{cores}_cores"), cores, &deployment),
        (format!("fresh_instances_all_{cores}_cores"), cores, &deployed),
    ];
    for (label, jobs, deployment) in runs {
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter(|| {
                let mut answered = 0;
                decide_batch(
                    input.as_bytes(),
                    "bench",
                    deployment,
                    runretry::ConfigOverride::default(),
                    jobs,
                    |answer| {
                        answer.result.expect("decided");
                        answered += 1;
                        true
                    },
                )
                .unwrap();
                assert_eq!(answered, LINES);
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_file(file);
}

criterion_group!(
    benches,
    bench_should_retry,
    bench_decide_task,
    bench_tags,
    bench_history,
    bench_languages,
    bench_select_steps,
    bench_batch
);
criterion_main!(benches);
