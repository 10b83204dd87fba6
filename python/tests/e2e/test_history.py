"""``run.history`` and ``failure.now`` from real instances (contract 0.3.0): what ``build_case``
reads, its bounds, and its cost on a SQLite instance holding 10,000 runs of the job and on a
PostgreSQL one (dagster-postgres, a database of the test's own) holding 100,000."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus
from dagster._core.events import DagsterEvent, DagsterEventType, JobFailureData, RunFailureReason
from dagster._core.events.log import EventLogEntry
from dagster._core.execution.plan.objects import ErrorSource, StepFailureData
from dagster._utils.error import SerializableErrorInfo

import runretry
from conftest import POSTGRES, postgres_database, storage_yaml
from dagster._core.storage.runs.schema import RunsTable, RunTagsTable
from dagster._core.storage.tags import BACKFILL_ID_TAG, PARTITION_NAME_TAG, PARTITION_SET_TAG
from dagster._serdes import serialize_value
from dagster._time import get_current_datetime
from runretry.dagster import build_case, held_connections
from runretry.dagster.case import HISTORY_RUNS, history

JOB = "nightly_load"


#: Runs of the job on each kind of instance.
RUNS = {"sqlite": 10_000, "postgres": 100_000}
#: The newest runs get failure events; the history reads at most HISTORY_RUNS of them.
WITH_EVENTS = 300


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def instance(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterInstance]:
    if request.param == "sqlite":
        with DagsterInstance.local_temp() as instance:
            yield instance
        return
    with postgres_database("history") as url:
        home = tmp_path_factory.mktemp("postgres-home")
        (home / "dagster.yaml").write_text(storage_yaml(url))
        instance = DagsterInstance.from_config(str(home))
        try:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            yield instance
        finally:
            instance.dispose()


def runs_of(instance: DagsterInstance) -> int:
    return RUNS["postgres" if type(instance.run_storage).__name__.startswith("Postgres") else "sqlite"]


def add_run(instance: DagsterInstance, index: int, status: DagsterRunStatus, tags: dict[str, str]) -> DagsterRun:
    run = DagsterRun(job_name=JOB, run_id=run_id(index), status=status,
                     tags={"dagster/code_location": "here", **tags})
    instance.add_run(run)
    if status == DagsterRunStatus.FAILURE:
        cause = SerializableErrorInfo("ModuleNotFoundError: No module named 'pandas'\n", [], "ModuleNotFoundError")
        error = SerializableErrorInfo(
            'dagster._core.errors.DagsterExecutionStepExecutionError: Error occurred while executing op "load":\n',
            [], "DagsterExecutionStepExecutionError", cause=cause,
        )
        step_failure = DagsterEvent(
            event_type_value=DagsterEventType.STEP_FAILURE.value, job_name=JOB,
            event_specific_data=StepFailureData(error=error, user_failure_data=None,
                                                error_source=ErrorSource.USER_CODE_ERROR),
        )
        data = JobFailureData(error=None, failure_reason=RunFailureReason.STEP_FAILURE,
                              first_step_failure_event=step_failure)
        event = DagsterEvent(event_type_value=DagsterEventType.RUN_FAILURE.value, job_name=JOB,
                             message=f'Execution of run for "{JOB}" failed.', event_specific_data=data)
        instance.store_event(EventLogEntry(error_info=None, level="ERROR", user_message="", run_id=run.run_id,
                                           timestamp=time.time(), job_name=JOB, dagster_event=event))
    return run


@pytest.fixture(scope="module")
def failed_run(instance: DagsterInstance) -> DagsterRun:
    failed = populate(instance)
    if runs_of(instance) == RUNS["postgres"]:
        # A live database has statistics (autovacuum keeps them); right after a bulk load the
        # planner would sort all 100,000 runs instead of reading the newest by index.
        import psycopg2

        conn = psycopg2.connect(instance.run_storage.postgres_url.replace("+psycopg2", ""))
        conn.autocommit = True
        conn.cursor().execute("ANALYZE")
        conn.close()
    return failed


def run_id(index: int) -> str:
    return f"run-{index:06d}"


def populate(instance: DagsterInstance) -> DagsterRun:
    """The job's runs: a success every tenth, scheduled ones failing the same way; the case is
    built for the last. All but the newest few hundred are written in bulk, as Dagster's own
    storage writes one (its row values, its tables) but on one connection: one ``add_run`` per
    run opens a connection each, minutes for 100,000 runs on PostgreSQL."""
    count = runs_of(instance)
    bulk = []
    for i in range(count):
        status = DagsterRunStatus.SUCCESS if i % 10 == 0 else DagsterRunStatus.FAILURE
        tags = {"dagster/schedule_name": "nightly"} if i % 2 else {}
        if i < count - WITH_EVENTS:
            bulk.append(DagsterRun(job_name=JOB, run_id=run_id(i), status=status,
                                   tags={"dagster/code_location": "here", **tags}))
            continue
        add_runs(instance, bulk)
        bulk = []
        add_run(instance, i, status, tags)
    add_runs(instance, bulk)
    return add_run(instance, count, DagsterRunStatus.FAILURE, {"dagster/schedule_name": "nightly"})


def add_runs(instance: DagsterInstance, runs: list[DagsterRun], chunk: int = 5_000) -> None:
    """``instance.add_run`` for each of ``runs``, in order, through one connection per chunk:
    the rows Dagster's ``SqlRunStorage.add_run`` writes (the columns its
    ``_get_run_insertion_values`` gives the first run; that function asks the database about a
    column on every call, 8 ms a run here)."""
    if not runs:
        return
    storage = instance.run_storage
    columns = storage._get_run_insertion_values(runs[0], get_current_datetime()).keys()
    for start in range(0, len(runs), chunk):
        part = runs[start:start + chunk]
        created = get_current_datetime()
        rows = [{column: value for column, value in row_of(r, created).items() if column in columns} for r in part]
        with storage.connect() as conn:
            conn.execute(RunsTable.insert(), rows)
            conn.execute(RunTagsTable.insert(),
                         [{"run_id": r.run_id, "key": k, "value": v} for r in part for k, v in r.tags_for_storage().items()])


def row_of(run: DagsterRun, created: datetime) -> dict[str, Any]:
    """``SqlRunStorage._get_run_insertion_values`` (dagster 1.13), without its column check."""
    return {
        "run_id": run.run_id,
        "pipeline_name": run.job_name,
        "status": run.status.value,
        "run_body": serialize_value(run),
        "snapshot_id": run.job_snapshot_id,
        "partition": run.tags.get(PARTITION_NAME_TAG),
        "partition_set": run.tags.get(PARTITION_SET_TAG),
        "backfill_id": run.tags.get(BACKFILL_ID_TAG),
        "create_timestamp": created,
    }


def test_history_is_the_jobs_last_runs_newest_first_with_their_failures(instance: DagsterInstance,
                                                                        failed_run: DagsterRun) -> None:
    case = build_case(instance, failed_run)
    history = case["run"]["history"]
    assert len(history) == HISTORY_RUNS
    newest = runs_of(instance) - 1
    assert [h["run_id"] for h in history[:3]] == [run_id(newest), run_id(newest - 1), run_id(newest - 2)], history[:3]
    latest = history[0]
    assert latest["status"] == "FAILURE" and latest["launched_by"] == "SCHEDULE", latest
    assert latest["failure_reason"] == "STEP_FAILURE", latest
    assert "ModuleNotFoundError: No module named 'pandas'" in latest["failure_message"], latest
    assert len(latest["failure_message"].encode()) <= 1024
    assert history[1]["launched_by"] == "MANUAL" and "start_time" not in history[1]
    assert any(h["status"] == "SUCCESS" for h in history)
    assert case["failure"]["now"] > 1.7e9, case["failure"]
    # The running Dagster's release, whose rules apply (contract 0.4.0).
    import dagster

    assert case["config"]["dagster_version"] == dagster.__version__ == "1.13.29", case["config"]
    # The default policy ignores both: the decision is the one without them.
    without: dict[str, Any] = build_case(instance, failed_run, history_runs=0)
    assert without["run"]["history"] == []
    del without["failure"]["now"]
    assert runretry.Policy.default().decide(case) == runretry.Policy.default().decide(without)


def best_of_5(fn: Any) -> float:
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        fn()
        timings.append(time.perf_counter() - started)
    return min(timings)


def test_building_a_case_on_an_instance_with_many_runs_is_fast(instance: DagsterInstance,
                                                               failed_run: DagsterRun) -> None:
    # A guard with room for a loaded CI machine; the figures themselves go in docs/performance.md.
    per_call = best_of_5(lambda: build_case(instance, failed_run))
    history_alone = best_of_5(lambda: history(instance, failed_run))
    with held_connections(instance):
        held = best_of_5(lambda: build_case(instance, failed_run))
        held_history = best_of_5(lambda: history(instance, failed_run))
    storage = type(instance.run_storage).__name__
    print(f"build_case with a {HISTORY_RUNS}-run history on {runs_of(instance) + 1:,} runs ({storage}), best of 5: "
          f"{per_call * 1000:.1f} ms (the history alone {history_alone * 1000:.1f} ms); "
          f"with held connections, as the sensor builds it: {held * 1000:.1f} ms "
          f"(the history alone {held_history * 1000:.1f} ms)")
    assert held < 0.5 and per_call < 0.5, (held, per_call)


def open_connections(instance: DagsterInstance, settle_to: int | None = None) -> int:
    """Connections to the instance's PostgreSQL database, as the server counts them; with
    ``settle_to``, first waits (up to 10 s) for closed ones to leave that count, since a server
    process outlives its closed connection by a moment."""
    import psycopg2

    database = instance.run_storage._engine.url.database
    admin = psycopg2.connect(host=POSTGRES[0], port=POSTGRES[1], user="postgres", dbname="postgres")
    admin.autocommit = True
    deadline = time.monotonic() + 10
    try:
        with admin.cursor() as cursor:
            while True:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,))
                count = cursor.fetchone()[0]
                if settle_to is None or count <= settle_to or time.monotonic() > deadline:
                    return count
                time.sleep(0.05)
    finally:
        admin.close()


def test_held_connections_give_the_same_case_and_are_closed_after(instance: DagsterInstance,
                                                                  failed_run: DagsterRun) -> None:
    def engines() -> tuple[Any, Any]:
        return getattr(instance.run_storage, "_engine", None), getattr(instance.event_log_storage, "_engine", None)

    own = engines()
    postgres = type(instance.run_storage).__name__.startswith("Postgres")
    expected = build_case(instance, failed_run)
    if postgres:
        # Between calls the storages' own engines hold nothing.
        assert open_connections(instance, settle_to=0) == 0
    with held_connections(instance):
        held = build_case(instance, failed_run)
        if postgres:
            # Kept between calls: one per storage (run and event log), not one per call.
            assert open_connections(instance) in (1, 2)
        again = build_case(instance, failed_run)
    assert held == expected == again
    # The storages' own engines are back, and nothing the block opened stays open.
    assert engines() == own
    if postgres:
        assert type(instance.run_storage._engine.pool).__name__ == "NullPool"
        assert open_connections(instance, settle_to=0) == 0
