"""runretry against a live Dagster 1.13.29 (and, from python/tests/older_dagster.rs, older
releases): Dagster's own daemon is the judge.

(a) shadow: for every scenario, runretry's decision equals what the daemon did.
(b) enforce, Dagster's retries off: the run groups runretry makes match the daemon's.
    (a) and (b) run on SQLite and on PostgreSQL (dagster-postgres), as production runs Dagster.
(f) ALL_STEPS after a manual re-execution of a dynamic job: shadow agrees on the steps, and
    enforce runs the steps Dagster's retry runs.
(c) the backoff example policy launches no earlier than its delay; a retry waiting out its delay
    survives a daemon restart and is launched once.
(e) a retry that Dagster's daemon created but never submitted is submitted (RESUBMIT_EXISTING),
    not duplicated.
(d) a hostile policy under on_policy_error="default" falls back and the retry happens; a
    malformed or missing policy file is reported clearly, the sensor keeps ticking, and the
    retry happens; under "fail" a missing one fails the tick, naming the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterEventType, DagsterRun, DagsterRunStatus
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.execution.plan.resume_retry import ReexecutionStrategy
from dagster._core.scheduler.instigation import TickStatus
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget

from conftest import FINISHED, Deployment, create_reexecuted_run, engine_messages
import runretry
from runretry.dagster import launch
from runretry.dagster.sensor import JUDGED_TAG

# Scenario -> (job, what Dagster's daemon is expected to do with the group).
SCENARIOS = ["op_raises", "op_failure_not_retried", "dynamic_fanout", "killed_worker", "asset_from_asset_failure"]

# Tags that name runs (ids differ between deployments) or come from the run's own outcome.
RUN_SPECIFIC_TAGS = {"dagster/parent_run_id", "dagster/root_run_id", "dagster/auto_retry_run_id",
                     ".dagster/grpc_info", "runretry/due_at", "runretry/state", ".runretry/decision",
                     "runretry/shadow", ".runretry/judged", "dagster/will_retry"}


def judged_here(run: DagsterRun) -> bool:
    """runretry's tags on ``run`` were written on it, not copied from the run it re-executes."""
    return run.tags.get(JUDGED_TAG, run.run_id) == run.run_id


def settled(d: Deployment, root_id: str, judged_tag: str) -> bool:
    """The group is finished: every run is done, and every failed one was handled by runretry."""
    runs = d.group(root_id)
    if any(r.status not in FINISHED for r in runs):
        return False
    failed = [r for r in runs if r.status == DagsterRunStatus.FAILURE]
    # runretry's mark on each failure, written on that run (a re-execution by hand carries its
    # parent's marks, copied by Dagster); "pending" is a retry decided but not launched yet.
    if not all(r.tags.get(judged_tag) not in (None, "pending") and judged_here(r) for r in failed):
        return False
    # A retry that is decided but not yet created is still to come.
    return all(
        d.instance.get_run_by_id(r.tags["dagster/auto_retry_run_id"]) is not None
        for r in failed
        if r.tags.get("dagster/auto_retry_run_id")
    )


def shape(d: Deployment, root_id: str) -> list[dict[str, Any]]:
    """A run group without run ids: per run, its place, parent's place, status, retry number,
    steps, asset selection and tags."""
    runs = d.group(root_id)
    place = {r.run_id: i for i, r in enumerate(runs)}
    return [
        {
            "parent": place.get(r.parent_run_id),
            "status": r.status.value,
            "steps": sorted(r.step_keys_to_execute) if r.step_keys_to_execute else None,
            "asset_selection": sorted(k.to_user_string() for k in r.asset_selection) if r.asset_selection else None,
            "tags": {k: v for k, v in sorted(r.tags.items()) if k not in RUN_SPECIFIC_TAGS},
        }
        for r in runs
    ]


def log_line(d: Deployment, text: str) -> str:
    """The first line of the daemon's log (where the sensor's log goes) that holds ``text``."""
    return d.wait(f"{text!r} in the daemon's log",
                  lambda: next((line for line in d.log.read_text().splitlines() if text in line), None))


@pytest.mark.parametrize("storage", ["sqlite", "postgres"])
def test_shadow_then_enforce(deployment_factory: Any, report: list[str], storage: str) -> None:
    # The release under test (python/tests/older_dagster.rs runs this on older ones); its cases
    # name it, so the default policy decides by its rules.
    import dagster

    assert dagster.__version__ == os.environ.get("RUNRETRY_E2E_DAGSTER_VERSION", "1.13.29")
    # (a) shadow: Dagster retries, runretry judges.
    shadow = deployment_factory("shadow", retries_enabled=True, storage=storage)
    expected_storage = {"sqlite": "SqliteRunStorage", "postgres": "PostgresRunStorage"}[storage]
    assert type(shadow.instance.run_storage).__name__ == expected_storage
    default_sha256 = runretry.Policy.default().sha256
    roots = {job: shadow.launch(job) for job in SCENARIOS}
    for job, root in roots.items():
        shadow.wait(f"{job} to settle in shadow mode", lambda root=root: settled(shadow, root, "runretry/shadow"))
    daemon_groups = {}
    for job, root in roots.items():
        for run in shadow.group(root):
            if run.status != DagsterRunStatus.FAILURE:
                continue
            decision = json.loads(run.tags[".runretry/decision"])
            child_id = run.tags.get("dagster/auto_retry_run_id")
            child = shadow.run(child_id) if child_id else None
            # An independent check of the sensor's verdict: retry, number, steps, tags.
            assert decision["retry"] == (child is not None), (job, decision, child)
            if child is not None:
                assert str(decision["retry_number"]) == child.tags["dagster/retry_number"]
                steps = sorted(child.step_keys_to_execute) if child.step_keys_to_execute else None
                assert (decision["steps"] if decision["strategy"] == "FROM_FAILURE" else None) == steps
                # Tags set after creation (launch, the child's own failure) count when decided.
                later = {"dagster/code_location", ".dagster/grpc_info", "dagster/failure_reason",
                         "dagster/will_retry", "dagster/auto_retry_run_id"}
                made = {k: v for k, v in child.tags.items()
                        if (k not in later or k in decision["new_run_tags"])
                        and not k.startswith(("runretry/", ".runretry/"))}
                assert made == decision["new_run_tags"], job
            assert run.tags["runretry/shadow"] == "agree", (job, engine_messages(shadow, run.run_id))
            assert run.tags["runretry/policy_sha256"] == default_sha256, (job, run.tags)
            report.append(
                f"| {job} ({storage}) | {run.tags.get('dagster/retry_number', '0')} | "
                f"{'retry ' + str(child.tags['dagster/retry_number']) if child else 'no retry'} | "
                f"{decision['action']} {decision['retry_number'] or ''} {decision['steps'] or ''} "
                f"{decision['asset_selection'] or ''} | agree |"
            )
        daemon_groups[job] = shape(shadow, root)
    # The scenarios do what they are for (so agreement is not about nothing).
    assert len(daemon_groups["op_raises"]) == 2 and daemon_groups["op_raises"][1]["steps"] == ["after", "fails"]
    assert len(daemon_groups["op_failure_not_retried"]) == 1
    assert daemon_groups["dynamic_fanout"][1]["steps"] == ["double[1]", "mapped[1]", "total"]
    assert len(daemon_groups["killed_worker"]) == 2
    assert daemon_groups["asset_from_asset_failure"][1]["asset_selection"] == ["b_fails", "c_after"]

    # (b) enforce: Dagster's retries off, runretry launches; the groups must be the daemon's.
    enforce = deployment_factory("enforce", retries_enabled=False, storage=storage)
    roots = {job: enforce.launch(job) for job in SCENARIOS}
    for job, root in roots.items():
        enforce.wait(f"{job} to settle in enforce mode", lambda root=root: settled(enforce, root, "runretry/state"))
        assert shape(enforce, root) == daemon_groups[job], job


def test_enforce_retries_the_op_that_raises(deployment_factory: Any) -> None:
    # The smallest enforce scenario (the clean-environment wheel test runs it alone): Dagster's
    # retries off, runretry's sensor launches the FROM_FAILURE retry, which fails and is not
    # retried again (max_retries 1).
    d = deployment_factory("enforce", retries_enabled=False)
    root = d.launch("op_raises")
    d.wait("the retry to run and be judged", lambda: len(d.group(root)) == 2 and settled(d, root, "runretry/state"))
    first, retry = d.group(root)
    assert (first.status, retry.status) == (DagsterRunStatus.FAILURE, DagsterRunStatus.FAILURE)
    assert retry.parent_run_id == root and retry.tags["dagster/retry_number"] == "1"
    assert sorted(retry.step_keys_to_execute) == ["after", "fails"]
    assert (d.run(root).tags["runretry/state"], d.run(retry.run_id).tags["runretry/state"]) == ("launched", "none")


def test_all_steps_retry_of_a_manual_reexecution_of_a_dynamic_job(deployment_factory: Any) -> None:
    # A dynamic job tagged ALL_STEPS. Its first run is launched with no retry budget, so it is
    # not retried; re-executed by hand FROM_FAILURE (with its tags, and a budget of 2), that
    # re-execution is planned with the known mappings (`mapped[1]` beside `mapped[?]`), fails,
    # and is retried ALL_STEPS, which runs the job's plan: `mapped[?]`, never `mapped[k]`.
    def history(d: Deployment) -> tuple[str, str]:
        root = d.launch("dynamic_all_steps", tags={"dagster/max_retries": "0"})
        d.wait("the first run to fail", lambda: d.run(root).status == DagsterRunStatus.FAILURE)
        manual = d.reexecute(root, ReexecutionStrategy.FROM_FAILURE, extra_tags={"dagster/max_retries": "2"})
        return root, manual

    def outcome(d: Deployment, root: str, judged_tag: str) -> list[dict[str, Any]]:
        d.wait("the group to settle", lambda: len(d.group(root)) == 3 and settled(d, root, judged_tag))
        return [{**run, "plan": d.plan_keys(r.run_id), "executed": d.executed_steps(r.run_id)}
                for run, r in zip(shape(d, root), d.group(root))]

    # Shadow: Dagster retries, runretry judges every failure, and must agree on the steps too.
    shadow = deployment_factory("shadow", retries_enabled=True)
    root, manual = history(shadow)
    daemon_group = outcome(shadow, root, "runretry/shadow")
    assert [run["parent"] for run in daemon_group] == [None, 0, 1]
    assert "dagster/retry_number" not in daemon_group[1]["tags"]  # the re-execution is manual
    assert "mapped[1]" in daemon_group[1]["plan"] and daemon_group[1]["steps"] == ["double[1]", "mapped[1]", "total"]
    retry = daemon_group[2]
    assert retry["tags"]["dagster/retry_number"] == "2" and retry["steps"] is None
    assert retry["plan"] == ["double[?]", "mapped[?]", "source", "total"]
    decision = json.loads(shadow.run(manual).tags[".runretry/decision"])
    assert (decision["strategy"], decision["steps"]) == ("ALL_STEPS", retry["plan"]), decision
    for run in shadow.group(root):
        if run.status == DagsterRunStatus.FAILURE:
            assert run.tags["runretry/shadow"] == "agree", engine_messages(shadow, run.run_id)

    # Enforce: Dagster's retries off; runretry's retry is the daemon's, and runs the same steps.
    enforce = deployment_factory("enforce", retries_enabled=False)
    root, _ = history(enforce)
    assert outcome(enforce, root, "runretry/state") == daemon_group


def test_backoff_policy_waits_its_delay(deployment_factory: Any) -> None:
    # (c) The backoff example policy: the retry is created no earlier than the decided delay.
    d = deployment_factory("enforce", retries_enabled=False, policy=os.environ["RUNRETRY_E2E_BACKOFF_POLICY"])
    root = d.launch("op_raises", tags={"runretry/backoff_base_seconds": "6"})
    d.wait("the delayed retry", lambda: d.run(root).tags.get("dagster/auto_retry_run_id"))
    failed = d.run(root)
    decision = json.loads(failed.tags[".runretry/decision"])
    assert decision["delay_seconds"] >= 5  # 6 s ± 10 %
    failure = d.instance.all_logs(root, of_type=DagsterEventType.RUN_FAILURE)[-1]
    child = d.instance.get_run_record_by_id(failed.tags["dagster/auto_retry_run_id"])
    assert child.create_timestamp.timestamp() >= failure.timestamp + decision["delay_seconds"]


def test_delayed_retry_survives_a_daemon_restart_and_launches_once(deployment_factory: Any) -> None:
    # (c) A retry waiting out its delay lives in the failed run's tags: stop the daemon while it
    # waits, start another on the same DAGSTER_HOME, and that one launches it, once, when due.
    d = deployment_factory("enforce", retries_enabled=False, policy=os.environ["RUNRETRY_E2E_BACKOFF_POLICY"])
    root = d.launch("op_raises", tags={"runretry/backoff_base_seconds": "15", "runretry/backoff_jitter": "0"})
    d.wait("the retry to be decided and left waiting", lambda: d.run(root).tags.get("runretry/state") == "pending")
    d.stop_daemon()
    waiting = d.run(root)
    retry_id = launch.retry_run_id(root)
    # Stopped well inside the delay: nothing was launched by the first daemon.
    assert d.instance.get_run_by_id(retry_id) is None and waiting.tags["runretry/state"] == "pending"
    assert json.loads(waiting.tags[".runretry/decision"])["delay_seconds"] == 15
    due_at = float(waiting.tags["runretry/due_at"])

    d.start_daemon()
    d.wait("the restarted daemon to launch the retry", lambda: d.run(root).tags.get("runretry/state") == "launched")
    assert d.run(root).tags["dagster/auto_retry_run_id"] == retry_id
    assert d.instance.get_run_record_by_id(retry_id).create_timestamp.timestamp() >= due_at
    # The retry runs, fails (op_raises allows one retry) and is judged; the ticks meanwhile, and
    # one more after, make nothing more.
    d.wait("the retry to run and be judged", lambda: d.run(retry_id).tags.get("runretry/state") == "none")
    ticks = len(d.sensor_ticks())
    d.wait("one more sensor tick", lambda: len(d.sensor_ticks()) > ticks)
    assert [r.run_id for r in d.group(root)] == [root, retry_id]
    assert d.run(root).tags["runretry/state"] == "launched"


def test_unsubmitted_automatic_retry_is_submitted_not_duplicated(deployment_factory: Any) -> None:
    # RESUBMIT_EXISTING. Dagster's daemon creates a retry, names it on the failed run, then
    # submits it; a daemon that dies in between leaves a NOT_STARTED retry behind, which Dagster
    # submits on its next pass. Staged with Dagster's own calls while no daemon runs: two runs
    # fail and are tagged `dagster/will_retry` as Dagster tags a failure when its retries are on,
    # and each gets the retry `retry_run` makes (`create_reexecuted_run`), one left before the
    # failed run names it, one before the submit. The restarted sensor must submit those runs,
    # not create retries of its own.
    d = deployment_factory("enforce", retries_enabled=False)
    d.stop_daemon()
    with WorkspaceProcessContext(d.instance, WorkspaceFileTarget(paths=[str(d.home / "workspace.yaml")])) as process:
        workspace = process.create_request_context()
        location = workspace.get_code_location(d.location.name)
        failed = [d.create("op_raises").run_id for _ in range(2)]
        for run_id in failed:
            d.instance.launch_run(run_id, workspace)  # as the daemon's run queue does
        for run_id in failed:
            d.wait(f"run {run_id} to fail", lambda run_id=run_id: d.run(run_id).status == DagsterRunStatus.FAILURE)
        retries = {}
        for run_id, left in zip(failed, ("before the failed run names it", "before the submit")):
            d.instance.add_run_tags(run_id, {"dagster/will_retry": "true"})
            run = d.run(run_id)
            remote_job = location.get_job(JobSubsetSelector(
                location_name=location.name, repository_name=run.remote_job_origin.repository_origin.repository_name,
                job_name=run.job_name, op_selection=None,
            ))
            retry = create_reexecuted_run(
                d.instance, parent_run=run, request_context=workspace, code_location=location, remote_job=remote_job,
                strategy=ReexecutionStrategy.FROM_FAILURE, extra_tags={"dagster/retry_number": "1"},
                use_parent_run_tags=True,
            )
            if left == "before the submit":
                d.instance.add_run_tags(run_id, {"dagster/auto_retry_run_id": retry.run_id})
            retries[run_id] = (retry.run_id, left)

    d.start_daemon()
    for run_id, (retry_id, left) in retries.items():
        d.wait(f"the retry left {left} to run and be judged",
               lambda retry_id=retry_id: d.run(retry_id).tags.get("runretry/state"))
        failed_run = d.run(run_id)
        assert failed_run.tags["runretry/state"] == "resubmitted", (left, engine_messages(d, run_id))
        assert failed_run.tags["dagster/auto_retry_run_id"] == retry_id, left
        assert any("already exists but never started" in m for m in engine_messages(d, run_id)), left
        assert d.run(retry_id).status == DagsterRunStatus.FAILURE, left  # it ran
        assert [r.run_id for r in d.group(run_id)] == [run_id, retry_id], left
        assert d.instance.get_run_by_id(launch.retry_run_id(run_id)) is None, left


def test_hostile_policy_falls_back_to_default(deployment_factory: Any) -> None:
    # (d) A policy that panics, under on_policy_error="default": the default policy decides.
    d = deployment_factory("enforce", retries_enabled=False, policy=os.environ["RUNRETRY_E2E_HOSTILE_POLICY"],
                           on_policy_error="default")
    root = d.launch("op_raises")
    d.wait("the retry", lambda: d.run(root).tags.get("dagster/auto_retry_run_id"))
    assert any("decided with the default policy instead" in m for m in engine_messages(d, root))


def test_malformed_policy_file_is_reported_and_the_retry_still_happens(
    deployment_factory: Any, tmp_path: Path
) -> None:
    # (d) Garbage where the policy should be: a clear error, no crashed tick, no lost retry.
    bad = tmp_path / "policy.wasm"
    bad.write_bytes(b"this is not a wasm component")
    d = deployment_factory("enforce", retries_enabled=False, policy=str(bad), on_policy_error="default")
    root = d.launch("op_raises")
    d.wait("the retry", lambda: d.run(root).tags.get("dagster/auto_retry_run_id"))
    messages = engine_messages(d, root)
    assert any(f"policy {bad} failed (invalid policy component)" in m for m in messages), messages
    # The sensor's log (the daemon's output) names the file and what is wrong with it, at ERROR:
    # once when the policy is loaded, and again for the decision that fell back.
    loaded = log_line(d, f"runretry: policy {bad} does not load (invalid policy component)")
    decided = log_line(d, f"runretry: run {root}: policy {bad} failed (invalid policy component)")
    for line in (loaded, decided):
        assert " - ERROR - " in line and "runretry_sensor" in line and "is not a WebAssembly file" in line, line
    assert "on_policy_error='default' applies to every decision" in loaded, loaded
    assert "decided with the default policy instead" in decided, decided
    retry = d.run(d.run(root).tags["dagster/auto_retry_run_id"])
    assert retry.parent_run_id == root and retry.tags["dagster/retry_number"] == "1"
    ticks = d.sensor_ticks()
    assert ticks and not any(t.status == TickStatus.FAILURE for t in ticks)


# Regression (#31, finding 5): a missing policy file raised FileNotFoundError on every tick, so
# under on_policy_error="default" no run was retried at all.
def test_missing_policy_file_falls_back_to_default_and_the_retry_happens(
    deployment_factory: Any, tmp_path: Path
) -> None:
    missing = tmp_path / "not-deployed.wasm"
    d = deployment_factory("enforce", retries_enabled=False, policy=str(missing), on_policy_error="default")
    root = d.launch("op_raises")
    d.wait("the retry", lambda: d.run(root).tags.get("dagster/auto_retry_run_id"))
    messages = engine_messages(d, root)
    assert any(f"policy {missing} failed (" in m and "decided with the default policy instead" in m
               for m in messages), messages
    # The sensor's log names the file and why it does not load, once at load and per decision.
    loaded = log_line(d, f"runretry: policy {missing} does not load")
    decided = log_line(d, f"runretry: run {root}: policy {missing} failed (")
    for line in (loaded, decided):
        assert " - ERROR - " in line and "runretry_sensor" in line and "No such file or directory" in line, line
    assert "on_policy_error='default' applies to every decision" in loaded, loaded
    retry = d.run(d.run(root).tags["dagster/auto_retry_run_id"])
    assert retry.parent_run_id == root and retry.tags["dagster/retry_number"] == "1"
    ticks = d.sensor_ticks()
    assert ticks and not any(t.status == TickStatus.FAILURE for t in ticks)


def test_missing_policy_file_under_fail_fails_the_tick_naming_the_file(deployment_factory: Any, tmp_path: Path) -> None:
    # on_policy_error="fail": the tick fails with the host's error (as `Policy.load` raises it),
    # which names the file, instead of deciding without the policy.
    missing = tmp_path / "not-deployed.wasm"
    d = deployment_factory("enforce", retries_enabled=False, policy=str(missing), on_policy_error="fail")
    tick = d.sensor_ticks()[0]
    assert tick.status == TickStatus.FAILURE, tick
    error = tick.error.to_string() if tick.error else ""
    assert f"policy {missing}: cannot read" in error and "BadInput" in error, error


@pytest.fixture(scope="session")
def report() -> Any:
    """The shadow agreement table, written where the driver asks (RUNRETRY_E2E_REPORT)."""
    rows: list[str] = []
    yield rows
    path = os.environ.get("RUNRETRY_E2E_REPORT")
    if path and rows:
        Path(path).write_text("| scenario | failed run's retry number | Dagster | runretry | verdict |\n"
                              "|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
