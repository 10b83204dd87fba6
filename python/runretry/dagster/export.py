"""``export_cases``: failed runs as JSON Lines cases, for ``runretry decide --batch`` and replay."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import datetime
from typing import IO, Any

from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.storage.dagster_run import RunsFilter

from runretry.dagster.case import build_case
from runretry.dagster.connections import held_connections


def export_cases(
    instance: DagsterInstance,
    out: str | os.PathLike[str] | IO[str],
    *,
    since: datetime | None = None,
    jobs: Sequence[str] | None = None,
    before_retry: bool = True,
    limit: int | None = None,
) -> int:
    """Write one case per failed run (oldest first) to ``out`` (a path or a text stream), as
    JSON Lines; returns how many. ``since`` keeps runs created at or after it, ``jobs`` keeps
    those jobs. ``before_retry`` (the default) writes each case as it stood when the run failed,
    so replaying it asks a policy the question Dagster answered."""
    filters = RunsFilter(
        statuses=[DagsterRunStatus.FAILURE],
        created_after=since,
        job_name=jobs[0] if jobs is not None and len(jobs) == 1 else None,
    )
    runs = [r for r in instance.get_runs(filters, limit=limit) if jobs is None or r.job_name in jobs]
    runs.reverse()  # get_runs is newest first; replay goes in the order Dagster saw them
    stream: Any = open(out, "w", encoding="utf-8") if isinstance(out, (str, os.PathLike)) else out
    try:
        with held_connections(instance):
            for run in runs:
                case = build_case(instance, run, before_retry=before_retry)
                stream.write(json.dumps(case, sort_keys=True) + "\n")
    finally:
        if stream is not out:
            stream.close()
    return len(runs)
