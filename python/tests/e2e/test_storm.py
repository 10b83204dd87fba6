"""A job that fails the same way on every tick of its sensor, against a live Dagster 1.13.29:
Dagster's own retries give every tick ``1 + max_retries`` runs; runretry's sensor in enforce mode
with the circuit-breaker example policy stops retrying after ``runretry/circuit_threshold`` ticks
failed the same way, tags the failed runs and says why in an engine event, and retries again once
a run of the job has succeeded. The cases exported from Dagster's ticks, replayed with the
breaker, count the runs it would have saved."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dagster import DagsterRunStatus, RunsFilter

import runretry
from conftest import Deployment, engine_messages
from defs import in_flight_or_undecided
from runretry.dagster import export_cases

THRESHOLD = 2  # the storm job's runretry/circuit_threshold
MAX_RETRIES = 1  # its dagster/max_retries
FAILURE, SUCCESS = DagsterRunStatus.FAILURE, DagsterRunStatus.SUCCESS


def ticks(d: Deployment) -> list[list[Any]]:
    """The storm job's run groups, one per tick, oldest first, while none is in flight or
    undecided (else an empty list: not a moment to look)."""
    runs = d.instance.get_runs(RunsFilter(job_name="storm"))
    if any(in_flight_or_undecided(r) for r in runs):
        return []
    created = {r.run_id: d.instance.get_run_record_by_id(r.run_id).create_timestamp for r in runs}
    roots = sorted({r.root_run_id or r.run_id for r in runs}, key=lambda root: created[root])
    return [d.group(root) for root in roots]


def at_least(d: Deployment, count: int) -> list[list[Any]]:
    found = ticks(d)
    return found if len(found) >= count else []


def pause(d: Deployment) -> list[list[Any]]:
    """Stop the storm sensor's ticks and wait for the last one to finish: every tick, final."""
    (d.home / "storm-paused").touch()
    return d.wait("the last tick to finish", lambda: ticks(d))


def test_dagster_retries_every_tick_the_circuit_breaker_stops_until_a_success(deployment_factory: Any) -> None:
    # Dagster's own retries: every tick is a root run and its retry, all failing.
    dagster = deployment_factory("shadow", retries_enabled=True, storm=True)
    dagster.wait(f"{THRESHOLD + 2} ticks under Dagster's retries", lambda: at_least(dagster, THRESHOLD + 2))
    daemon_ticks = pause(dagster)
    for tick in daemon_ticks:
        assert [r.status for r in tick] == [FAILURE] * (1 + MAX_RETRIES), tick
        assert [r.tags.get("dagster/retry_number") for r in tick] == [None, "1"]
        assert tick[0].tags["dagster/sensor_name"] == "storm_ticks"

    # Replay: the breaker, deciding the cases exported from Dagster's ticks, declines the retry
    # of every tick after the first THRESHOLD. runretry replay over these cases reports the same
    # (tests/replay/ keeps an export of this scenario; cli/tests/all/replay.rs replays it).
    out = Path(os.environ.get("RUNRETRY_E2E_EXPORT_DIR") or dagster.home) / "storm-cases.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    assert export_cases(dagster.instance, out, jobs=["storm"]) == len(daemon_ticks) * (1 + MAX_RETRIES)
    cases = [json.loads(line) for line in out.read_text().splitlines()]
    for n, case in enumerate(cases):
        assert len(case["run"]["history"]) == n, "each case holds every earlier run of the job"
    breaker = runretry.Policy.load(os.environ["RUNRETRY_E2E_CIRCUIT_BREAKER_POLICY"])
    default = runretry.Policy.default()
    avoided = [c["run"]["run_id"] for c in cases if default.decide(c)["retry"] and not breaker.decide(c)["retry"]]
    assert avoided == [tick[0].run_id for tick in daemon_ticks[THRESHOLD:]]

    # Enforce with the circuit breaker: THRESHOLD ticks retried, then one run per tick.
    d = deployment_factory("enforce", retries_enabled=False, storm=True,
                           policy=os.environ["RUNRETRY_E2E_CIRCUIT_BREAKER_POLICY"])
    d.wait(f"{THRESHOLD + 2} ticks under the breaker", lambda: at_least(d, THRESHOLD + 2))
    # The job is fixed: a run succeeds, closing the circuit. Broken again: retries resume.
    (d.home / "storm-fixed").touch()
    d.wait("a tick that succeeds", lambda: any(t[0].status == SUCCESS for t in ticks(d)))
    (d.home / "storm-fixed").unlink()
    succeeded = len(ticks(d))
    d.wait("a failing tick after the success", lambda: any(t[0].status == FAILURE for t in ticks(d)[succeeded:]))
    enforced = pause(d)

    fixed = next(i for i, t in enumerate(enforced) if t[0].status == SUCCESS)
    assert fixed >= THRESHOLD + 2, enforced
    for i, tick in enumerate(enforced[:fixed]):
        root = tick[0]
        if i < THRESHOLD:
            assert [r.status for r in tick] == [FAILURE, FAILURE], (i, tick)
            assert root.tags["runretry/state"] == "launched" and "runretry/circuit" not in root.tags
            continue
        assert [r.run_id for r in tick] == [root.run_id], (i, "one run per tick once the circuit is open")
        assert (root.tags["runretry/circuit"], root.tags["dagster/will_retry"], root.tags["runretry/state"]) == (
            "open", "false", "none")
        why = [m for m in engine_messages(d, root.run_id) if "circuit open" in m]
        assert why and why[0].startswith(
            f"runretry: circuit open: the last {THRESHOLD} run groups of storm within 24 h failed as this run "
            'did (STEP_FAILURE: dagster._core.errors.DagsterExecutionStepExecutionError: Error occurred while '
            'executing op "fetch": <- ConnectionError: upstream API unavailable after # tries)'), why
    resumed = next(t for t in enforced[fixed:] if t[0].status == FAILURE)
    assert [r.status for r in resumed] == [FAILURE, FAILURE], "retries resume after a success"
    assert resumed[0].tags["runretry/state"] == "launched" and "runretry/circuit" not in resumed[0].tags
