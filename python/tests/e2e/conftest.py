"""A real Dagster deployment per test: a temporary DAGSTER_HOME on SQLite (or on a PostgreSQL
database of the test's own, created and dropped here), the code location in ``defs.py``, and
``dagster-daemon`` on this machine, always stopped afterwards. No mocks."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.execution.plan.resume_retry import ReexecutionStrategy
from dagster._core.scheduler.instigation import InstigatorTick, TickStatus
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget

from runretry.dagster import launch

HERE = Path(__file__).parent
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
# A guard against a hung deployment, never an assertion on timing.
SETTLE_TIMEOUT = float(os.environ.get("RUNRETRY_E2E_TIMEOUT", "300"))


class Deployment:
    """One Dagster deployment: its instance, its daemon, a way to launch jobs, and waits on
    outcomes."""

    def __init__(self, home: Path, instance: DagsterInstance, env: dict[str, str]):
        self.home = home
        self.instance = instance
        self.env = env
        self.log = home / "daemon.log"
        self.daemon: subprocess.Popen | None = None
        origins = WorkspaceFileTarget(paths=[str(home / "workspace.yaml")]).create_origins()
        self.location = launch.code_location(instance, origins[0])

    def start_daemon(self) -> None:
        """Start ``dagster-daemon`` on this DAGSTER_HOME (its output appended to ``daemon.log``)
        and wait for runretry's sensor to finish a tick under it. Also a restart: all state is
        in the home's storage."""
        assert self.daemon is None, "the daemon is already running"
        since = time.time()
        with self.log.open("a") as out:
            self.daemon = subprocess.Popen(
                [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(self.home / "workspace.yaml")],
                cwd=self.home, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.wait("runretry's sensor to tick", lambda: any(t.timestamp >= since for t in self.sensor_ticks()))

    def stop_daemon(self) -> None:
        """Stop the daemon as a service manager does: SIGTERM to its process group (which holds
        its code server and any run worker), SIGKILL if it does not go."""
        daemon, self.daemon = self.daemon, None
        if daemon is None:
            return
        try:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(daemon.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            daemon.wait()

    def create(self, job_name: str, tags: dict[str, str] | None = None) -> DagsterRun:
        """Create (NOT_STARTED) a run of ``job_name``, as the UI's launch button does."""
        repository = next(iter(self.location.get_repositories().values()))
        remote_job = self.location.get_job(
            JobSubsetSelector(location_name=self.location.name, repository_name=repository.name, job_name=job_name,
                              op_selection=None)
        )
        plan = self.location.get_execution_plan(remote_job, {}, step_keys_to_execute=None, known_state=None,
                                                 instance=self.instance)
        return self.instance.create_run(
            job_name=job_name, run_id=None, run_config={}, resolved_op_selection=None, step_keys_to_execute=None,
            status=DagsterRunStatus.NOT_STARTED, tags={**remote_job.tags, **(tags or {})}, root_run_id=None,
            parent_run_id=None, job_snapshot=remote_job.job_snapshot,
            execution_plan_snapshot=plan.execution_plan_snapshot, parent_job_snapshot=remote_job.parent_job_snapshot,
            op_selection=None, asset_selection=remote_job.asset_selection,
            asset_check_selection=remote_job.asset_check_selection, remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(), asset_graph=repository.asset_graph,
        )

    def launch(self, job_name: str, tags: dict[str, str] | None = None) -> str:
        """Queue a run of ``job_name``, as the UI's launch button does."""
        run = self.create(job_name, tags)
        launch.submit(self.instance, run.run_id)
        return run.run_id

    def reexecute(self, run_id: str, strategy: ReexecutionStrategy, use_parent_run_tags: bool = True,
                  extra_tags: dict[str, str] | None = None) -> str:
        """Re-execute ``run_id`` by hand and queue it, as the UI's re-execute button does (a
        manual re-execution: no `dagster/retry_number`)."""
        target = WorkspaceFileTarget(paths=[str(self.home / "workspace.yaml")])
        with WorkspaceProcessContext(self.instance, target) as process:
            workspace = process.create_request_context()
            location = workspace.get_code_location(self.location.name)
            parent = self.run(run_id)
            remote_job = location.get_job(JobSubsetSelector(
                location_name=location.name,
                repository_name=parent.remote_job_origin.repository_origin.repository_name,
                job_name=parent.job_name, op_selection=parent.op_selection,
            ))
            run = create_reexecuted_run(
                self.instance, parent_run=parent, request_context=workspace, code_location=location,
                remote_job=remote_job, strategy=strategy, extra_tags=extra_tags,
                use_parent_run_tags=use_parent_run_tags,
            )
            self.instance.submit_run(run.run_id, workspace)
        return run.run_id

    def plan_keys(self, run_id: str) -> list[str]:
        """The step keys of the run's execution-plan snapshot, sorted."""
        snapshot = self.instance.get_execution_plan_snapshot(self.run(run_id).execution_plan_snapshot_id)
        return sorted(step.key for step in snapshot.steps)

    def executed_steps(self, run_id: str) -> list[str]:
        """The step keys the run started, mapped instances as `name[k]`, sorted."""
        return sorted({e.dagster_event.step_key for e in self.instance.all_logs(run_id, of_type=DagsterEventType.STEP_START)})

    def wait(self, what: str, ready: Callable[[], Any]) -> Any:
        """Poll ``ready`` until it returns something truthy; fail with the daemon's log if the
        deployment never gets there."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while time.monotonic() < deadline:
            value = ready()
            if value:
                return value
            time.sleep(0.5)
        tail = self.log.read_text(errors="replace")[-6000:]
        pytest.fail(f"timed out waiting for {what}; dagster-daemon's log ends with:\n{tail}")

    def run(self, run_id: str) -> DagsterRun:
        found = self.instance.get_run_by_id(run_id)
        assert found is not None, f"run {run_id} is gone"
        return found

    def group(self, run_id: str) -> list[DagsterRun]:
        """The run group, in creation order."""
        _, runs = self.instance.get_run_group(run_id)
        return sorted(runs, key=lambda r: self.instance.get_run_record_by_id(r.run_id).create_timestamp)

    def sensor_ticks(self) -> list[InstigatorTick]:
        """runretry's sensor's finished ticks, newest first."""
        return [t for s in self.instance.all_instigator_state() if s.name == "runretry_sensor"
                for t in self.instance.get_ticks(s.instigator_origin_id, s.selector_id)
                if t.status != TickStatus.STARTED]


def engine_messages(d: Deployment, run_id: str) -> list[str]:
    """The messages of the run's engine events, in log order."""
    return [e.message or "" for e in d.instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)]


#: Where the machine's PostgreSQL answers (trust auth; tests make their own databases).
POSTGRES = ("127.0.0.1", 5432)


def create_reexecuted_run(instance: DagsterInstance, **kwargs: Any) -> DagsterRun:
    """``instance.create_reexecuted_run``, on every supported Dagster: 1.10 takes no
    ``request_context``."""
    import inspect

    if "request_context" not in inspect.signature(instance.create_reexecuted_run).parameters:
        kwargs.pop("request_context", None)
    return instance.create_reexecuted_run(**kwargs)


@contextlib.contextmanager
def postgres_database(purpose: str) -> Iterator[str]:
    """A PostgreSQL database of this test's own, dropped afterwards whatever happened; yields its
    SQLAlchemy URL. Skips the test, saying why, only when no server answers on 127.0.0.1:5432.

    The URL names psycopg2 (``postgresql+psycopg2://``): SQLAlchemy 2.1 reads a bare
    ``postgresql://`` as psycopg 3, and dagster-postgres depends on psycopg2."""
    import psycopg2

    try:
        socket.create_connection(POSTGRES, timeout=2).close()
    except OSError as error:
        pytest.skip(f"no PostgreSQL server answers on {POSTGRES[0]}:{POSTGRES[1]} ({error})")
    admin = psycopg2.connect(host=POSTGRES[0], port=POSTGRES[1], user="postgres", dbname="postgres")
    admin.autocommit = True
    name = f"runretry_{purpose}_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://postgres@{POSTGRES[0]}:{POSTGRES[1]}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def storage_yaml(postgres_url: str | None) -> str:
    """dagster.yaml's storage: SQLite in DAGSTER_HOME (Dagster's default) or the database at
    ``postgres_url`` for runs, events and schedules alike (dagster-postgres)."""
    if postgres_url is None:
        return ""
    return f"storage:\n  postgres:\n    postgres_url: {postgres_url}\n"


def _write_home(home: Path, retries_enabled: bool, postgres_url: str | None = None) -> None:
    (home / "dagster.yaml").write_text(storage_yaml(postgres_url) + textwrap.dedent(f"""\
        run_retries:
          enabled: {str(retries_enabled).lower()}
        run_coordinator:
          module: dagster.core.run_coordinator
          class: QueuedRunCoordinator
          config:
            dequeue_interval_seconds: 1
        telemetry:
          enabled: false
        """))
    (home / "workspace.yaml").write_text(textwrap.dedent(f"""\
        load_from:
          - python_file:
              relative_path: {HERE / "defs.py"}
              location_name: e2e
              working_directory: {HERE}
        """))


@pytest.fixture
def deployment_factory(tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    """Start a deployment: ``mode`` of the sensor, Dagster's own retries on or off, a policy
    (a file, or a service's address with ``token``) and its ``on_policy_error``, whether
    ``storm_ticks`` launches the ``storm`` job, and its ``storage`` (``"sqlite"`` or
    ``"postgres"``). Every daemon started is stopped, and every database dropped, at the end of
    the test."""
    deployments: list[Deployment] = []
    databases = contextlib.ExitStack()

    def start(mode: str, retries_enabled: bool, policy: str | None = None, on_policy_error: str = "fail",
              storm: bool = False, storage: str = "sqlite", token: str | None = None) -> Deployment:
        home = tmp_path / f"home-{len(deployments)}"
        home.mkdir()
        postgres_url = databases.enter_context(postgres_database("e2e")) if storage == "postgres" else None
        _write_home(home, retries_enabled, postgres_url)
        env = {**os.environ, "DAGSTER_HOME": str(home), "RUNRETRY_E2E_MODE": mode,
               "RUNRETRY_E2E_POLICY": policy or "", "RUNRETRY_E2E_ON_POLICY_ERROR": on_policy_error,
               "RUNRETRY_E2E_STORM": "1" if storm else "", "DAGSTER_DISABLE_TELEMETRY": "1",
               "RUNRETRY_E2E_POLICY_TOKEN": token or ""}
        os.environ.update({k: env[k] for k in ("DAGSTER_HOME", "RUNRETRY_E2E_MODE", "RUNRETRY_E2E_POLICY",
                                               "RUNRETRY_E2E_ON_POLICY_ERROR", "RUNRETRY_E2E_STORM",
                                               "RUNRETRY_E2E_POLICY_TOKEN")})
        # Create the SQLite storages before the daemon starts: two processes migrating the same
        # fresh databases at once fail.
        instance = DagsterInstance.from_config(str(home))
        instance.get_runs(limit=1)
        instance.all_instigator_state()
        deployment = Deployment(home, instance, env)
        deployments.append(deployment)
        deployment.start_daemon()
        return deployment

    try:
        yield start
    finally:
        for deployment in deployments:
            deployment.stop_daemon()
            deployment.instance.dispose()
        databases.close()
