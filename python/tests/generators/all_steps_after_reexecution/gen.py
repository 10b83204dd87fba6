"""Ground truth for tests/conformance/10-all-steps-after-reexecution.json, from a real Dagster
1.13.29 (no mocks).

A temporary DAGSTER_HOME on SQLite with run retries enabled, the QueuedRunCoordinator (so a
retry the daemon logic creates is left QUEUED, never run) and Dagster's SyncInMemoryRunLauncher
(so `instance.launch_run`, as the run queue daemon calls it, executes the run in this process;
the jobs use the in-process executor). The code location is defs.py, loaded through a
workspace.yaml and a WorkspaceProcessContext, as dagster-daemon loads it.

Each scenario makes a failed run R whose execution-plan snapshot holds resolved dynamic keys
`x[k]` (a FROM_FAILURE re-execution, by hand or automatic), and tagged ALL_STEPS. The case for
R is built with runretry's own `build_case(instance, R, before_retry=True)`; then Dagster's
daemon decides: `consume_new_runs_for_automatic_reexecution(workspace_context, [R's record],
logger)`, the auto-run-reexecution daemon's entry point (`should_retry`, then `retry_run`,
which calls `create_reexecuted_run(strategy=ALL_STEPS, extra_tags={retry_number},
use_parent_run_tags=True)`). `expect` is read from the retry run it creates.

Usage: python gen.py [OUTPUT.json [REPORT.json]]   (a venv with dagster==1.13.29; defs.py beside this file)
"""

import importlib.util
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASE_PY = str(Path(__file__).resolve().parents[3] / "runretry/dagster/case.py")
LOCATION = "dynamic_jobs"
SECTION = "§10 ALL_STEPS after a re-execution of a dynamic job"
RESOLVED = re.compile(r"^.+\[(?!\?\]).+\]$")  # `name[k]`, not `name[?]`
# Tags a retry gets after it is created (launch, its own failure); runretry's shadow.compare
# skips them unless decided. A created, QUEUED retry has none of them but dagster/code_location.
TAGS_SET_AFTER_CREATION = {
    ".dagster/grpc_info",
    "dagster/failure_reason",
    "dagster/will_retry",
    "dagster/auto_retry_run_id",
}


def load_case_module():
    spec = importlib.util.spec_from_file_location("rrcase", CASE_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_home(home: Path) -> None:
    (home / "dagster.yaml").write_text(textwrap.dedent("""\
        run_retries:
          enabled: true
          max_retries: 0
          retry_on_asset_or_op_failure: true
        run_coordinator:
          module: dagster.core.run_coordinator
          class: QueuedRunCoordinator
        run_launcher:
          module: dagster._core.launcher.sync_in_memory_run_launcher
          class: SyncInMemoryRunLauncher
        telemetry:
          enabled: false
        """))
    (home / "workspace.yaml").write_text(textwrap.dedent(f"""\
        load_from:
          - python_file:
              relative_path: {HERE / "defs.py"}
              location_name: {LOCATION}
              working_directory: {HERE}
        """))


class World:
    def __init__(self, home: Path):
        from dagster import DagsterInstance
        from dagster._core.workspace.context import WorkspaceProcessContext
        from dagster._core.workspace.load_target import WorkspaceFileTarget

        self.instance = DagsterInstance.from_config(str(home))
        self.context = WorkspaceProcessContext(
            self.instance, WorkspaceFileTarget(paths=[str(home / "workspace.yaml")])
        )
        self.logger = logging.getLogger("gen22")

    def close(self):
        self.context.__exit__(None, None, None)
        self.instance.dispose()

    def workspace(self):
        return self.context.create_request_context()

    def run(self, run_id):
        return self.instance.get_run_by_id(run_id)

    def remote_job(self, workspace, job_name, op_selection=None):
        from dagster._core.definitions.selector import JobSubsetSelector

        location = workspace.get_code_location(LOCATION)
        repository = next(iter(location.get_repositories().values()))
        return location, repository, location.get_job(JobSubsetSelector(
            location_name=LOCATION, repository_name=repository.name, job_name=job_name,
            op_selection=op_selection,
        ))

    def launch(self, job_name, tags=None):
        """A run of the job as the UI's launch button makes it (job run tags, then launch tags),
        queued, then launched as the run queue daemon does."""
        from dagster import DagsterRunStatus

        workspace = self.workspace()
        location, repository, remote_job = self.remote_job(workspace, job_name)
        plan = location.get_execution_plan(remote_job, {}, step_keys_to_execute=None, known_state=None,
                                           instance=self.instance)
        run = self.instance.create_run(
            job_name=job_name, run_id=None, run_config={}, resolved_op_selection=None, step_keys_to_execute=None,
            status=DagsterRunStatus.NOT_STARTED, tags={**remote_job.run_tags, **(tags or {})}, root_run_id=None,
            parent_run_id=None, job_snapshot=remote_job.job_snapshot,
            execution_plan_snapshot=plan.execution_plan_snapshot, parent_job_snapshot=remote_job.parent_job_snapshot,
            op_selection=None, asset_selection=remote_job.asset_selection,
            asset_check_selection=remote_job.asset_check_selection, remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(), asset_graph=repository.asset_graph,
        )
        return self.submit_and_execute(run.run_id, workspace)

    def submit_and_execute(self, run_id, workspace=None):
        """instance.submit_run (QUEUED), then instance.launch_run as the run queue daemon does
        (the SyncInMemoryRunLauncher executes it here)."""
        from dagster import DagsterRunStatus

        workspace = workspace or self.workspace()
        self.instance.submit_run(run_id, workspace)
        assert self.run(run_id).status == DagsterRunStatus.QUEUED
        self.instance.launch_run(run_id, workspace)
        run = self.run(run_id)
        assert run.status == DagsterRunStatus.FAILURE, (run_id, run.status)
        return run

    def reexecute_by_hand(self, parent_id, use_parent_run_tags, extra_tags=None):
        """A manual FROM_FAILURE re-execution, as the UI's "Re-execute from failure" makes it
        (create_reexecuted_run with no retry number), submitted and run."""
        from dagster._core.execution.plan.resume_retry import ReexecutionStrategy

        workspace = self.workspace()
        parent = self.run(parent_id)
        location, _, remote_job = self.remote_job(workspace, parent.job_name, parent.op_selection)
        run = self.instance.create_reexecuted_run(
            parent_run=parent, request_context=workspace, code_location=location, remote_job=remote_job,
            strategy=ReexecutionStrategy.FROM_FAILURE, extra_tags=extra_tags,
            use_parent_run_tags=use_parent_run_tags,
        )
        return self.submit_and_execute(run.run_id, workspace)

    def daemon_pass(self, failed_id):
        """One pass of Dagster's auto-run-reexecution daemon over the failed run's record; the
        retry it creates (QUEUED, not run), or None."""
        from dagster._daemon.auto_run_reexecution.auto_run_reexecution import (
            consume_new_runs_for_automatic_reexecution,
        )

        record = self.instance.get_run_record_by_id(failed_id)
        list(consume_new_runs_for_automatic_reexecution(self.context, [record], self.logger))
        children = [r for r in self.instance.get_run_group(failed_id)[1] if r.parent_run_id == failed_id]
        assert len(children) <= 1, children
        return children[0] if children else None

    def automatic_retry(self, failed_id):
        """The daemon's retry of the failed run, then run as the queue daemon would."""
        child = self.daemon_pass(failed_id)
        assert child is not None, f"Dagster did not retry {failed_id}"
        self.instance.launch_run(child.run_id, self.workspace())
        return self.run(child.run_id)

    def plan_keys(self, run):
        snapshot = self.instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
        return sorted(step.key for step in snapshot.steps)

    def group_ids(self, run_id):
        runs = self.instance.get_run_group(run_id)[1]
        return [r.run_id for r in sorted(runs, key=lambda r: self.instance.get_run_record_by_id(r.run_id).create_timestamp)]


def scenario_manual(world, job, use_parent_run_tags):
    """Run 1 is launched with no retry budget (`dagster/max_retries: "0"`) so the daemon leaves
    it; it is re-executed by hand FROM_FAILURE (with a budget of 2 when it inherits the
    parent's tags) and that fails too."""
    run1 = world.launch(job, tags={"dagster/max_retries": "0"})
    assert run1.tags.get("dagster/will_retry") == "false"
    assert world.daemon_pass(run1.run_id) is None
    extra = {"dagster/max_retries": "2"} if use_parent_run_tags else None
    return world.reexecute_by_hand(run1.run_id, use_parent_run_tags, extra)


def scenario_after_automatic_retry(world, job):
    """Run 1 (launched with a budget of 1) fails and is retried automatically with ALL_STEPS;
    the retry fails too and exhausts the budget; the user re-executes it by hand FROM_FAILURE
    with a budget of 3, and that fails."""
    run1 = world.launch(job, tags={"dagster/max_retries": "1"})
    run2 = world.automatic_retry(run1.run_id)
    assert run2.tags["dagster/retry_number"] == "1" and run2.step_keys_to_execute is None
    assert run2.tags.get("dagster/will_retry") == "false"
    assert world.daemon_pass(run2.run_id) is None
    return world.reexecute_by_hand(run2.run_id, True, {"dagster/max_retries": "3"})


def scenario_automatic_from_failure(world, job):
    """The job's `run_tags` lack the strategy its definition `tags` hold: run 1 runs without
    it and is retried automatically FROM_FAILURE (the default); the retry gets the definition's
    ALL_STEPS tag from create_reexecuted_run's merge, fails, and is the failed run."""
    run1 = world.launch(job)
    assert "dagster/retry_strategy" not in run1.tags
    run2 = world.automatic_retry(run1.run_id)
    assert run2.tags["dagster/retry_number"] == "1" and run2.tags.get("dagster/is_resume_retry") == "true"
    assert run2.tags["dagster/retry_strategy"] == "ALL_STEPS"
    return run2


def stable_ids(value, ids):
    text = json.dumps(value)
    for real, stable in ids.items():
        text = text.replace(real, stable)
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", text), text
    return json.loads(text)


def make_case(world, rrcase, name, failed, notes):
    from dagster._core.execution.plan.resume_retry import ReexecutionStrategy
    from dagster._daemon.auto_run_reexecution.auto_run_reexecution import get_reexecution_strategy

    failed = world.run(failed.run_id)
    failed_plan = world.plan_keys(failed)
    resolved = [k for k in failed_plan if RESOLVED.match(k)]
    assert resolved, f"{name}: the failed run's plan has no resolved key: {failed_plan}"
    case = rrcase.build_case(world.instance, failed, before_retry=True)

    child = world.daemon_pass(failed.run_id)
    assert child is not None, f"{name}: Dagster did not retry"
    failed_after = world.run(failed.run_id)
    assert failed_after.tags["dagster/auto_retry_run_id"] == child.run_id
    assert get_reexecution_strategy(failed_after, world.instance) == ReexecutionStrategy.ALL_STEPS
    assert child.step_keys_to_execute is None  # ALL_STEPS: the whole plan
    assert "dagster/is_resume_retry" not in child.tags
    steps = world.plan_keys(child)
    assert not [k for k in steps if RESOLVED.match(k)], f"{name}: retry plan has resolved keys {steps}"
    new_run_tags = {k: v for k, v in child.tags.items() if k not in TAGS_SET_AFTER_CREATION}

    ids = {rid: f"run-{i}" for i, rid in enumerate(world.group_ids(failed.run_id), 1)}
    out = {
        "name": name,
        "section": SECTION,
        "kind": "should_retry",
        **case,
        "expect": {
            "retry": True,
            "action": "LAUNCH_NEW",
            "retry_number": int(child.tags["dagster/retry_number"]),
            "strategy": "ALL_STEPS",
            "steps": steps,
            "new_run_tags": new_run_tags,
            "will_retry_tag": failed_after.tags["dagster/will_retry"],
        },
        "notes": notes,
    }
    out = stable_ids(out, ids)
    report = {
        "name": name,
        "group": [ids[r] for r in world.group_ids(failed.run_id)],
        "failed_run": ids[failed.run_id],
        "failed_plan": failed_plan,
        "failed_step_keys_to_execute": sorted(failed.step_keys_to_execute or []),
        "retry_steps": steps,
        "retry_tags": stable_ids(dict(child.tags), ids),
    }
    return out, report


def main(output, report_path):
    rrcase = load_case_module()
    home = Path(tempfile.mkdtemp(prefix="gen22-home-"))
    write_home(home)
    os.environ["DAGSTER_HOME"] = str(home)
    cases, reports = [], []
    try:
        specs = []
        for job, label in (("dyn_middle", "dynamic"), ("dyn_first", "dynamic_fan_out_first")):
            specs += [
                (f"all_steps_after_manual_from_failure_reexecution_{label}", job,
                 lambda w, j: scenario_manual(w, j, True),
                 "Recorded from a real Dagster 1.13.29 instance: run-1 launched with dagster/max_retries 0 fails and is "
                 "not retried; re-executed by hand FROM_FAILURE (create_reexecuted_run, use_parent_run_tags "
                 "True, extra tag dagster/max_retries 2), run-2 fails. Its plan snapshot lists resolved keys; "
                 "the daemon's ALL_STEPS retry is planned without known state, so mapped steps are name[?]."),
                (f"all_steps_after_manual_from_failure_reexecution_{label}_without_parent_tags", job,
                 lambda w, j: scenario_manual(w, j, False),
                 "Recorded from a real Dagster 1.13.29 instance: as the case with parent tags, but the re-execution is made "
                 "with use_parent_run_tags False: run-2 has the job's tags (dagster/max_retries 2), not "
                 "run-1's launch tags."),
                (f"all_steps_after_automatic_retry_and_manual_from_failure_reexecution_{label}", job,
                 scenario_after_automatic_retry,
                 "Recorded from a real Dagster 1.13.29 instance: run-1 (dagster/max_retries 1) fails, the daemon retries it "
                 "ALL_STEPS (run-2, retry 1), run-2 fails and exhausts the budget; re-executed by hand "
                 "FROM_FAILURE with dagster/max_retries 3, run-3 fails and is retried ALL_STEPS as retry 3."),
            ]
        specs.append(
            ("all_steps_after_automatic_from_failure_retry_dynamic", "dyn_middle_split_tags",
             scenario_automatic_from_failure,
             "Recorded from a real Dagster 1.13.29 instance: the job's run_tags (dagster/max_retries 2) lack the "
             "dagster/retry_strategy ALL_STEPS of its definition tags, so run-1 is retried automatically "
             "FROM_FAILURE (the default); create_reexecuted_run merges the definition tags (remote_job.tags, "
             "the case's job_tags) into run-2, which fails with resolved keys in its plan and is retried "
             "ALL_STEPS."),
        )
        for name, job, scenario, notes in specs:
            world = World(home)
            try:
                failed = scenario(world, job)
                case, report = make_case(world, rrcase, name, failed, notes)
            finally:
                world.close()
            cases.append(case)
            reports.append(report)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    Path(output).write_text(json.dumps(cases, indent=2, ensure_ascii=False) + "\n")
    report_path = Path(report_path)
    report_path.write_text(json.dumps(reports, indent=2) + "\n")
    print(f"wrote {len(cases)} cases to {output}; the runs' plans and retries in {report_path}")


if __name__ == "__main__":
    main(
        sys.argv[1] if len(sys.argv) > 1 else "10-all-steps-after-reexecution.json",
        sys.argv[2] if len(sys.argv) > 2 else os.path.join(tempfile.gettempdir(), "all-steps-after-reexecution.report.json"),
    )
