"""Launching a re-execution from inside a code server, where a sensor runs.

Dagster's daemon re-executes with ``instance.create_reexecuted_run`` on a workspace it owns; a
sensor has no workspace, and its ``RunRequest`` cannot name a parent run. So the run is built
here from the same parts Dagster uses (the job subset, the execution plan with the known state
of the parent chain, ``instance.create_run``) and given to the run coordinator. The code
location is this process's own code, reported under the origin the daemon knows it by, so the
new run carries exactly the origins a daemon-made retry would.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from typing import Any

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.errors import DagsterRunAlreadyExists
from dagster._core.execution.plan.state import KnownExecutionState
from dagster._core.remote_representation.code_location import CodeLocation, InProcessCodeLocation
try:
    from dagster._core.remote_origin import (
        CodeLocationOrigin,
        GrpcServerCodeLocationOrigin,
        InProcessCodeLocationOrigin,
    )
except ImportError:  # Dagster before 1.11 keeps them beside the remote representations
    from dagster._core.remote_representation.origin import (  # type: ignore[no-redef]
        CodeLocationOrigin,
        GrpcServerCodeLocationOrigin,
        InProcessCodeLocationOrigin,
    )
from dagster._core.run_coordinator import QueuedRunCoordinator

from runretry.dagster.case import parse_asset_key, parse_check_key

# A fixed namespace: the retry of a failed run has one possible id (see `retry_run_id`).
RETRY_ID_NAMESPACE = uuid.UUID("6f1d3c52-5d0e-4b7e-9a57-2d1c1f3b8a10")

_locations: dict[CodeLocationOrigin, CodeLocation] = {}
_locations_lock = threading.Lock()


def retry_run_id(failed_run_id: str) -> str:
    """The id of ``failed_run_id``'s automatic retry. Deterministic, so a second attempt to
    create it (a re-run tick, an overlapping one, a restarted sensor) fails in run storage
    instead of making a second retry."""
    return str(uuid.uuid5(RETRY_ID_NAMESPACE, failed_run_id))


class _OwnCodeLocation(InProcessCodeLocation):
    """This process's code under the origin the daemon's workspace knows it by."""

    def __init__(self, origin: CodeLocationOrigin, instance: DagsterInstance):
        # Set before the base class runs: it builds repository handles from `self.origin`.
        self._daemon_origin = origin
        loadable = getattr(origin, "loadable_target_origin")
        super().__init__(
            InProcessCodeLocationOrigin(loadable_target_origin=loadable, location_name=origin.location_name),
            instance,
        )

    @property
    def origin(self) -> Any:  # the daemon's origin, not the in-process one
        return self._daemon_origin


def code_location(instance: DagsterInstance, origin: CodeLocationOrigin) -> CodeLocation:
    """A code location for ``origin``: a client of the server for a standalone gRPC server,
    else this process's own code (loaded once per process)."""
    if isinstance(origin, GrpcServerCodeLocationOrigin):
        return origin.create_location(instance)
    with _locations_lock:
        if origin not in _locations:
            if isinstance(origin, InProcessCodeLocationOrigin):
                _locations[origin] = InProcessCodeLocation(origin, instance)
            elif getattr(origin, "loadable_target_origin", None) is not None:
                _locations[origin] = _OwnCodeLocation(origin, instance)
            else:
                raise TypeError(
                    f"runretry cannot launch runs for a code location of type {type(origin).__name__}"
                )
        return _locations[origin]


def create_retry_run(
    instance: DagsterInstance,
    location: CodeLocation,
    parent: DagsterRun,
    decision: Mapping[str, Any],
    run_id: str,
) -> DagsterRun:
    """Create (NOT_STARTED) the re-execution ``decision`` describes, as ``create_reexecuted_run``
    would: the decided strategy, steps, asset selections and the decision's whole tag map.
    Raises ``DagsterRunAlreadyExists`` when ``run_id`` exists."""
    origin = parent.remote_job_origin
    if origin is None:
        raise ValueError(f"run {parent.run_id} has no remote job origin, so it cannot be re-executed")
    repository_name = origin.repository_origin.repository_name
    repository = location.get_repository(repository_name)
    strategy = decision["strategy"]
    assets = decision.get("asset_selection")
    checks = decision.get("asset_check_selection")
    remote_job = location.get_job(
        JobSubsetSelector(
            location_name=location.name,
            repository_name=repository_name,
            job_name=parent.job_name,
            op_selection=parent.op_selection,
            asset_selection=None if assets is None else [parse_asset_key(k) for k in assets],
            asset_check_selection=None if checks is None else [parse_check_key(k) for k in checks],
        )
    )
    # Only FROM_FAILURE re-executes a step subset; the other strategies run the whole (subset) job.
    steps = list(decision["steps"]) if strategy == "FROM_FAILURE" else None
    known_state = (
        KnownExecutionState.build_for_reexecution(instance, parent).update_for_step_selection(steps)
        if steps is not None  # an empty FROM_FAILURE retry (before Dagster 1.11.3) has a known state too
        else None
    )
    plan = location.get_execution_plan(
        remote_job, parent.run_config, step_keys_to_execute=steps, known_state=known_state, instance=instance
    )
    return instance.create_run(
        job_name=parent.job_name,
        run_id=run_id,
        run_config=parent.run_config,
        resolved_op_selection=parent.resolved_op_selection,
        step_keys_to_execute=steps,
        status=DagsterRunStatus.NOT_STARTED,
        tags=dict(decision["new_run_tags"]),
        root_run_id=parent.root_run_id or parent.run_id,
        parent_run_id=parent.run_id,
        job_snapshot=remote_job.job_snapshot,
        execution_plan_snapshot=plan.execution_plan_snapshot,
        parent_job_snapshot=remote_job.parent_job_snapshot,
        op_selection=parent.op_selection,
        asset_selection=remote_job.asset_selection,
        asset_check_selection=remote_job.asset_check_selection,
        remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
        asset_graph=repository.asset_graph,
    )


def submit(instance: DagsterInstance, run_id: str) -> None:
    """Queue a NOT_STARTED run; the daemon's run queue launches it. A sensor has no workspace to
    launch with, so only the queued run coordinator (Dagster's default) can take the run."""
    if not isinstance(instance.run_coordinator, QueuedRunCoordinator):
        raise TypeError(
            "runretry's enforce mode needs the QueuedRunCoordinator (Dagster's default run coordinator); "
            f"this instance uses {type(instance.run_coordinator).__name__}"
        )
    instance.submit_run(run_id, workspace=None)  # type: ignore[arg-type]  # unused by the queue


__all__ = ["DagsterRunAlreadyExists", "code_location", "create_retry_run", "retry_run_id", "submit"]
