"""The end-to-end tests' code location: op and asset jobs that fail in the ways that matter,
and runretry's sensor, configured by the fixture through environment variables (the daemon's
code server inherits them)."""

import os
import signal
import time
from pathlib import Path

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    Definitions,
    DynamicOut,
    DynamicOutput,
    RunRequest,
    RunsFilter,
    SkipReason,
    asset,
    define_asset_job,
    in_process_executor,
    job,
    op,
    sensor,
)

from runretry import RemotePolicy
from runretry.dagster import runretry_sensor


@op
def before():
    return 1


@op
def fails(x):
    raise Exception(f"fails on purpose ({x})")


@op
def after(x):
    return x


@job(tags={"dagster/max_retries": "1"}, executor_def=in_process_executor)
def op_raises():
    """FROM_FAILURE re-runs the failed op and what is below it; the retry fails too and is not retried."""
    after(fails(before()))


@job(
    tags={"dagster/max_retries": "2", "dagster/retry_on_asset_or_op_failure": "false"},
    executor_def=in_process_executor,
)
def op_failure_not_retried():
    """A step failure with retry_on_asset_or_op_failure off: no retry."""
    after(fails(before()))


@op(out=DynamicOut())
def source():
    for i in range(3):
        yield DynamicOutput(i, mapping_key=str(i))


@op
def mapped(i):
    if i == 1:
        raise Exception("mapped instance 1 fails")
    return i


@op
def double(i):
    return 2 * i


@op
def total(values):
    return sum(values)


@job(tags={"dagster/max_retries": "1"}, executor_def=in_process_executor)
def dynamic_fanout():
    """One mapped instance fails; its siblings and their downstream `double[k]` succeed (steps
    downstream of a failed step, `mapped[?]`): only instance 1 and the collect re-run."""
    total(source().map(mapped).map(double).collect())


@job(tags={"dagster/max_retries": "2", "dagster/retry_strategy": "ALL_STEPS"}, executor_def=in_process_executor)
def dynamic_all_steps():
    """The fan-out above, retried with ALL_STEPS: a retry of a re-execution (whose plan lists
    resolved `mapped[k]` keys) runs the job's plan, where mapped steps are `mapped[?]`."""
    total(source().map(mapped).map(double).collect())


@op
def killed():
    # The run worker is terminated from outside the op's control: a non-step failure reason.
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(60)


@job(
    tags={"dagster/max_retries": "1", "dagster/retry_on_asset_or_op_failure": "false"},
    executor_def=in_process_executor,
)
def killed_worker():
    """The worker dies mid-run: retried even with retry_on_asset_or_op_failure off."""
    after(killed())


@asset
def a_ok():
    return 1


@asset
def b_fails(a_ok):
    raise Exception(f"asset b fails ({a_ok})")


@asset
def c_after(b_fails):
    return b_fails


asset_from_asset_failure = define_asset_job(
    "asset_from_asset_failure",
    selection=["a_ok", "b_fails", "c_after"],
    tags={"dagster/max_retries": "1", "dagster/retry_strategy": "FROM_ASSET_FAILURE"},
    executor_def=in_process_executor,
)

@op
def fetch():
    # Fails the same way on every tick (only the count of tries differs) until the test writes
    # `storm-fixed` into DAGSTER_HOME.
    if (Path(os.environ["DAGSTER_HOME"]) / "storm-fixed").exists():
        return 1
    raise ConnectionError(f"upstream API unavailable after {3 + int(time.time()) % 5} tries")


@job(
    tags={"dagster/max_retries": "1", "runretry/circuit_threshold": "2"},
    executor_def=in_process_executor,
)
def storm():
    """A sensor's job that fails on every tick: Dagster retries each tick; the circuit breaker
    stops retrying after 2 ticks failed the same way, until a run succeeds."""
    after(fetch())


def in_flight_or_undecided(run) -> bool:
    """A run of the previous tick still running, or failed and not yet decided on."""
    if run.status not in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
        return True
    decided = (
        run.tags.get("runretry/state") not in (None, "pending")
        or run.tags.get("dagster/will_retry") == "false"
        or "dagster/auto_retry_run_id" in run.tags
    )
    return run.status == DagsterRunStatus.FAILURE and not decided


@sensor(
    job=storm,
    minimum_interval_seconds=1,
    default_status=DefaultSensorStatus.RUNNING if os.environ.get("RUNRETRY_E2E_STORM") else DefaultSensorStatus.STOPPED,
)
def storm_ticks(context):
    """One run of `storm` per tick, a tick being when the last one is done with (retries too),
    until the test writes `storm-paused` into DAGSTER_HOME."""
    if (Path(os.environ["DAGSTER_HOME"]) / "storm-paused").exists():
        return SkipReason("paused by the test")
    if any(in_flight_or_undecided(r) for r in context.instance.get_runs(RunsFilter(job_name="storm"), limit=10)):
        return SkipReason("the last tick's runs are not done")
    return RunRequest()


def policy():
    """The policy file, or the service (with its token) when the test names one."""
    named = os.environ.get("RUNRETRY_E2E_POLICY") or None
    if named and named.startswith("http"):
        return RemotePolicy(named, token=os.environ.get("RUNRETRY_E2E_POLICY_TOKEN") or None, timeout_ms=2_000)
    return named


runretry = runretry_sensor(
    policy=policy(),
    mode=os.environ.get("RUNRETRY_E2E_MODE", "shadow"),
    on_policy_error=os.environ.get("RUNRETRY_E2E_ON_POLICY_ERROR", "fail"),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=1,
    shadow_wait_seconds=60,
)

defs = Definitions(
    jobs=[op_raises, op_failure_not_retried, dynamic_fanout, dynamic_all_steps, killed_worker,
          asset_from_asset_failure, storm],
    assets=[a_ok, b_fails, c_after],
    sensors=[runretry, storm_ticks],
)
