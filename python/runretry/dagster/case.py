"""Cases from a live instance: ``build_case`` fills runretry's case format from DagsterInstance APIs.

Every field is read where Dagster 1.13.29 reads it when it retries (``docs/dagster-semantics.md``,
``docs/dagster-asset-reexecution.md`` §4): the run and its group from run storage, the plan from
the execution-plan snapshot, step statuses from the event log exactly as
``_derive_state_of_past_run`` derives them, and asset facts from the run's asset events.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from dagster import AssetCheckKey, AssetKey, DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus, EventLogEntry
from dagster._core.errors import DagsterRunNotFoundError
from dagster._core.event_api import RunStatusChangeRecordsFilter
from dagster._core.storage.dagster_run import RunsFilter

# What Dagster reads to derive step state for re-execution (plan/state.py).
STEP_EVENTS = {
    DagsterEventType.STEP_START,
    DagsterEventType.STEP_FAILURE,
    DagsterEventType.STEP_SUCCESS,
    DagsterEventType.STEP_OUTPUT,
    DagsterEventType.STEP_SKIPPED,
    DagsterEventType.RESOURCE_INIT_FAILURE,
}

# `run.history`'s bounds by default: the job's last 100 runs, none older than 7 days.
HISTORY_RUNS = 100
HISTORY_SECONDS = 7 * 24 * 3600
# A history entry keeps the first 1 KiB of a failure's error.
FAILURE_MESSAGE_BYTES = 1024
# Who launched a run, from the tags Dagster puts on it (a retry inherits its root's).
LAUNCH_ORIGIN_TAGS = (("dagster/schedule_name", "SCHEDULE"), ("dagster/sensor_name", "SENSOR"), ("dagster/backfill", "BACKFILL"))

# Tags that record a retry decision on the failed run: absent before the failure was handled.
DECISION_TAGS = ("dagster/will_retry", "dagster/auto_retry_run_id")
BACKFILL_TAG = "dagster/backfill"


def asset_key_string(key: AssetKey) -> str:
    """An asset key as the case format writes it (escaped, so a ``/`` inside a part stays exact)."""
    return key.to_escaped_user_string()


def check_key_string(key: AssetCheckKey) -> str:
    """A check key as the case format writes it: ``<asset key>:<check name>``."""
    return f"{asset_key_string(key.asset_key)}:{key.name}"


def parse_asset_key(text: str) -> AssetKey:
    """The inverse of :func:`asset_key_string`."""
    return AssetKey.from_escaped_user_string(text)


def parse_check_key(text: str) -> AssetCheckKey:
    """The inverse of :func:`check_key_string` (check names hold no ``:``)."""
    asset, _, name = text.rpartition(":")
    return AssetCheckKey(parse_asset_key(asset), name)


def run_retries_config(instance: DagsterInstance) -> dict[str, Any]:
    """The instance's ``run_retries`` block, as the case's ``config``, with the running
    Dagster's version (whose rules apply)."""
    settings = instance.get_settings("run_retries") or {}
    config: dict[str, Any] = {"enabled": bool(settings.get("enabled", False))}
    if settings.get("max_retries") is not None:
        config["max_retries"] = int(settings["max_retries"])
    if settings.get("retry_on_asset_or_op_failure") is not None:
        config["retry_on_asset_or_op_failure"] = bool(settings["retry_on_asset_or_op_failure"])
    version = dagster_version()
    if version is not None:
        config["dagster_version"] = version
    return config


def dagster_version() -> str | None:
    """The running Dagster's release, ``X.Y.Z``; ``None`` for a build that names no release (a
    source checkout's ``1!0+dev``), whose case then gets the newest rules runretry has."""
    import dagster

    parts = dagster.__version__.split(".")
    return dagster.__version__ if len(parts) == 3 and all(part.isdigit() for part in parts) else None


def build_case(
    instance: DagsterInstance,
    run: DagsterRun,
    failure_event: EventLogEntry | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    repository_def: Any = None,
    before_retry: bool = False,
    history_runs: int = HISTORY_RUNS,
    history_seconds: float = HISTORY_SECONDS,
) -> dict[str, Any]:
    """The case for ``run``'s failure, from the instance.

    ``failure_event`` is the run's RUN_FAILURE entry (found in the log when omitted).
    ``config`` replaces the instance's ``run_retries`` block. ``repository_def``, when given (a
    sensor has it), adds what the plan snapshot lacks: which checks are blocking and whether a
    multi-asset can be subset. ``before_retry`` gives the case as it stood when the failure was
    stored: without the retry-decision tags and without runs created after the failure (what a
    shadow comparison needs, since Dagster's daemon may already have acted). ``history_runs``
    and ``history_seconds`` bound ``run.history``, the job's earlier runs (0 runs: none).
    """
    if failure_event is None:
        failure_event = last_failure_event(instance, run.run_id)
    tags = dict(run.tags)
    failed_at = failure_event.timestamp if (before_retry and failure_event is not None) else None
    if before_retry:
        for tag in DECISION_TAGS:
            tags.pop(tag, None)
    case_run: dict[str, Any] = {
        "run_id": run.run_id,
        "status": run.status.value,
        "tags": tags,
        "root_run_id": run.root_run_id,
        "parent_run_id": run.parent_run_id,
        "job": run.job_name,
        "group": run_group(instance, run, created_before=failed_at),
        "step_keys_to_execute": list(run.step_keys_to_execute) if run.step_keys_to_execute else None,
        "op_selection": list(run.op_selection) if run.op_selection else None,
        "job_tags": job_tags(instance, run),
        "backfill": backfill(instance, tags.get(BACKFILL_TAG)),
        "asset_selection": sorted(asset_key_string(k) for k in run.asset_selection)
        if run.asset_selection is not None
        else None,
        "asset_check_selection": sorted(check_key_string(k) for k in run.asset_check_selection)
        if run.asset_check_selection is not None
        else None,
        "steps": plan_steps(instance, run, repository_def),
        "materialized_assets": sorted(asset_key_string(k) for k in materialized_assets(instance, run.run_id)),
        "check_evaluations": check_evaluations(instance, run.run_id),
        "history": history(instance, run, limit=history_runs, window_seconds=history_seconds),
    }
    if before_retry:
        for member in case_run["group"]:
            if member["run_id"] == run.run_id:
                member["tags"] = dict(tags)
    return {
        "config": dict(config) if config is not None else run_retries_config(instance),
        "run": case_run,
        "failure": failure(run, failure_event),
    }


def history(
    instance: DagsterInstance, run: DagsterRun, *, limit: int = HISTORY_RUNS, window_seconds: float = HISTORY_SECONDS
) -> list[dict[str, Any]]:
    """``run.history``: the job's most recent runs created before ``run`` in its code location,
    newest first, at most ``limit`` and none created more than ``window_seconds`` earlier. Two
    queries whatever the instance holds: the runs, then the failure events of those that failed."""
    if limit <= 0:
        return []
    record = instance.get_run_record_by_id(run.run_id)
    created = record.create_timestamp if record is not None else datetime.now(timezone.utc)
    filters = RunsFilter(
        job_name=run.job_name, created_before=created, created_after=created - timedelta(seconds=window_seconds)
    )
    # The code location is compared here, not in the query: a tag filter made the query four
    # times slower on SQLite. Runs of a job of the same name in another location are rare; twice
    # the limit leaves room for them.
    location = run_location(run)
    records = [
        r
        for r in instance.get_run_records(filters, limit=2 * limit + 1)
        if r.dagster_run.run_id != run.run_id
        and (location is None or run_location(r.dagster_run) in (None, location))
    ][:limit]
    failures = failure_events(instance, run.job_name, [r for r in records if r.dagster_run.status == DagsterRunStatus.FAILURE])
    entries = []
    for r in records:
        past = r.dagster_run
        entry: dict[str, Any] = {"run_id": past.run_id, "status": past.status.value, "launched_by": launch_origin(past)}
        if past.root_run_id:
            entry["root_run_id"] = past.root_run_id
        retry_number = past.tags.get("dagster/retry_number")
        if retry_number is not None and retry_number.isdigit():
            entry["retry_number"] = int(retry_number)
        if r.start_time is not None:
            entry["start_time"] = r.start_time
        if r.end_time is not None:
            entry["end_time"] = r.end_time
        if past.status == DagsterRunStatus.FAILURE:
            reason, message = failures.get(past.run_id, (None, ""))
            entry["failure_reason"] = reason or past.tags.get("dagster/failure_reason")
            entry["failure_message"] = message
        entries.append({k: v for k, v in entry.items() if v not in (None, "")})
    return entries


def run_location(run: DagsterRun) -> str | None:
    """The code location ``run`` was launched from: Dagster's ``dagster/code_location`` tag (it
    writes one on every run from 1.12.9), else the run's job origin."""
    tagged = run.tags.get("dagster/code_location")
    if tagged:
        return tagged
    origin = run.remote_job_origin
    return origin.location_name if origin is not None else None


def launch_origin(run: DagsterRun) -> str:
    """Who or what launched ``run``: a schedule, a sensor, a backfill, or by hand."""
    return next((origin for tag, origin in LAUNCH_ORIGIN_TAGS if run.tags.get(tag)), "MANUAL")


#: Without a job filter in SQL (PostgreSQL and MySQL storages), RUN_FAILURE events of every job
#: in the window are read a page at a time, at most this many pages of this many events.
FAILURE_PAGES = 10
FAILURE_PAGE = 1_000


def failure_events(instance: DagsterInstance, job_name: str, failed: list[Any]) -> dict[str, tuple[str | None, str]]:
    """Per failed run of ``failed`` (run records): its failure reason and the start of its error,
    from the job's RUN_FAILURE events, newest first: one query where the storage filters events
    by job (SQLite); elsewhere (dagster-postgres, dagster-mysql refuse a job filter) every job's
    failures in the window, a page at a time, until each run's is found. A run whose event is
    past the last page keeps its reason tag and has no message."""
    if not failed:
        return {}
    wanted = {r.dagster_run.run_id for r in failed}
    oldest = min(r.create_timestamp.timestamp() for r in failed)
    found: dict[str, tuple[str | None, str]] = {}

    def read(records: Any) -> None:
        for record in records:
            entry = record.event_log_entry
            if entry.run_id in wanted and entry.run_id not in found and entry.dagster_event is not None:
                data = entry.dagster_event.event_specific_data
                found[entry.run_id] = (reason_of(data), error_text(data) or entry.dagster_event.message or "")

    if getattr(instance.event_log_storage, "supports_run_status_change_job_name_filter", True):
        read(instance.fetch_run_status_changes(
            RunStatusChangeRecordsFilter(event_type=DagsterEventType.RUN_FAILURE, job_names=[job_name],
                                         after_timestamp=oldest - 1),
            limit=2 * len(failed) + 20,
        ).records)
        return found
    cursor = None
    for _ in range(FAILURE_PAGES):
        page = instance.fetch_run_status_changes(
            RunStatusChangeRecordsFilter(event_type=DagsterEventType.RUN_FAILURE, after_timestamp=oldest - 1),
            limit=FAILURE_PAGE, cursor=cursor,
        )
        read(page.records)
        if len(found) == len(wanted) or not page.has_more:
            break
        cursor = page.cursor
    return found


def reason_of(data: Any) -> str | None:
    """The reason a RUN_FAILURE event's ``JobFailureData`` records, if any."""
    reason = getattr(data, "failure_reason", None)
    return reason.value if reason is not None else None


def error_text(data: Any) -> str:
    """A failure's error as Dagster shows it (the error's message, then each cause's), cut to
    1 KiB: the step's error for a step failure, else the run's."""
    step = getattr(data, "first_step_failure_event", None)
    error = getattr(getattr(step, "event_specific_data", None), "error", None) or getattr(data, "error", None)
    parts = []
    while error is not None:
        parts.append((error.message or "").strip())
        error = error.cause
    text = "\nThe above exception was caused by: ".join(p for p in parts if p)
    return text.encode("utf-8")[:FAILURE_MESSAGE_BYTES].decode("utf-8", "ignore")


def last_failure_event(instance: DagsterInstance, run_id: str) -> EventLogEntry | None:
    """The run's last RUN_FAILURE entry, if any."""
    records = instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)
    return records[-1] if records else None


def failure(run: DagsterRun, entry: EventLogEntry | None) -> dict[str, Any]:
    """``failure``: the reason from the event's ``JobFailureData`` (null when none was recorded,
    as for monitoring kills), its error as ``history`` holds it (else the event's message), and
    its time (``now``)."""
    reason = None
    message = None
    if entry is not None and entry.dagster_event is not None:
        data = entry.dagster_event.event_specific_data
        reason = reason_of(data)
        message = error_text(data) or entry.dagster_event.message or entry.user_message
    out: dict[str, Any] = {"reason": reason}
    if message:
        out["message"] = message
    if entry is not None:
        out["now"] = entry.timestamp  # when it failed: what the policy's wall clock reads
    return out


def run_group(instance: DagsterInstance, run: DagsterRun, created_before: float | None = None) -> list[dict[str, Any]]:
    """The run group as ``get_run_group`` sees it (root first, deleted runs absent). A deleted
    root leaves the run alone, so the policy finds no root (Dagster's DagsterRunNotFoundError).
    ``created_before`` drops runs created after that time (the failed run itself always stays)."""
    try:
        found = instance.get_run_group(run.run_id)
    except DagsterRunNotFoundError:
        found = None
    runs = list(found[1]) if found else [run]
    if created_before is not None and len(runs) > 1:
        records = instance.get_run_records(RunsFilter(run_ids=[r.run_id for r in runs]))
        created = {r.dagster_run.run_id: r.create_timestamp.timestamp() for r in records}
        runs = [r for r in runs if r.run_id == run.run_id or created.get(r.run_id, 0.0) <= created_before]
    return [
        {"run_id": r.run_id, "parent_run_id": r.parent_run_id, "tags": dict(r.tags), "status": r.status.value}
        for r in runs
    ]


def job_tags(instance: DagsterInstance, run: DagsterRun) -> dict[str, str]:
    """The job definition's tags, from the run's job snapshot (what the daemon merges first)."""
    if not run.job_snapshot_id:
        return {}
    snapshot = instance.get_job_snapshot(run.job_snapshot_id)
    return {k: str(v) for k, v in (snapshot.tags or {}).items()}


def backfill(instance: DagsterInstance, backfill_id: str | None) -> dict[str, Any] | None:
    """``backfill``: the backfill named by the run's tag, or its absence."""
    if backfill_id is None:
        return None
    found = instance.get_backfill(backfill_id)
    if found is None:
        return {"id": backfill_id, "exists": False, "status": None}
    return {"id": backfill_id, "exists": True, "status": found.status.value}


def materialized_assets(instance: DagsterInstance, run_id: str) -> set[AssetKey]:
    """The assets the run materialised: one distinct-key query from Dagster 1.13, else (older
    releases have no such query) from the run's materialisation events."""
    distinct = getattr(instance, "get_asset_keys_for_run", None)
    if distinct is not None:
        return set(distinct(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION))
    entries = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    return {entry.asset_materialization.asset_key for entry in entries if entry.asset_materialization is not None}


def check_evaluations(instance: DagsterInstance, run_id: str) -> list[dict[str, Any]]:
    """Every ASSET_CHECK_EVALUATION of the run, in log order."""
    out = []
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.get_dagster_event().event_specific_data
        severity = getattr(evaluation, "severity", None)
        out.append(
            {
                "check": check_key_string(evaluation.asset_check_key),
                "passed": bool(evaluation.passed),
                "blocking": evaluation.blocking,
                "severity": severity.value if severity is not None else None,
            }
        )
    return out


def step_events(instance: DagsterInstance, run_id: str) -> tuple[dict[str, set[DagsterEventType]], dict[str, list[str]]]:
    """Per step key (resolved keys ``x[k]`` as such), the step event types logged; and per
    producer step, the mapping keys its dynamic outputs yielded."""
    seen: dict[str, set[DagsterEventType]] = defaultdict(set)
    mapping_keys: dict[str, list[str]] = defaultdict(list)
    for entry in instance.all_logs(run_id, of_type=STEP_EVENTS):
        event = entry.dagster_event
        # A RESOURCE_INIT_FAILURE outside a step has no handle; Dagster ignores it here too.
        if event is None or event.step_handle is None:
            continue
        key = event.step_handle.to_key()
        seen[key].add(event.event_type)
        if event.event_type == DagsterEventType.STEP_OUTPUT:
            mapping_key = event.step_output_data.mapping_key
            if mapping_key and mapping_key not in mapping_keys[key]:
                mapping_keys[key].append(mapping_key)
    return seen, mapping_keys


def status_of(types: Iterable[DagsterEventType] | None) -> str:
    """A step's status, with Dagster's precedence: a skip hides everything (rule 2 of
    ``docs/dagster-semantics.md`` §9), a failure beats a success, any other event is in progress."""
    types = set(types or ())
    if not types:
        return "NOT_STARTED"
    if DagsterEventType.STEP_SKIPPED in types:
        return "SKIPPED"
    if DagsterEventType.STEP_FAILURE in types:
        return "FAILURE"
    if DagsterEventType.RESOURCE_INIT_FAILURE in types:
        return "RESOURCE_INIT_FAILURE"
    if DagsterEventType.STEP_SUCCESS in types:
        return "SUCCESS"
    return "IN_PROGRESS"


def chain_mapping_keys(instance: DagsterInstance, run: DagsterRun, own: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Mapping keys of dynamic outputs across the parent chain, the newer run winning (as
    ``_derive_state_from_logs`` merges them)."""
    merged: dict[str, list[str]] = {}
    parent_id = run.parent_run_id
    chain = []
    while parent_id:
        parent = instance.get_run_by_id(parent_id)
        if parent is None:
            break
        chain.append(parent)
        parent_id = parent.parent_run_id
    for ancestor in reversed(chain):
        merged.update({k: v for k, v in step_events(instance, ancestor.run_id)[1].items() if v})
    merged.update({k: v for k, v in own.items() if v})
    return merged


def plan_steps(instance: DagsterInstance, run: DagsterRun, repository_def: Any = None) -> list[dict[str, Any]]:
    """``run.steps``: the plan snapshot's steps with their upstream keys, statuses from the log,
    dynamic producers' mapping keys, and asset fields from the outputs' properties."""
    if not run.execution_plan_snapshot_id:
        return []
    snapshot = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    seen, own_keys = step_events(instance, run.run_id)
    mapping_keys = chain_mapping_keys(instance, run, own_keys)
    steps = []
    for snap in snapshot.steps:
        upstream: list[str] = []
        for step_input in snap.inputs:
            for handle in step_input.upstream_output_handles:
                if handle.step_key not in upstream:
                    upstream.append(handle.step_key)
        step: dict[str, Any] = {"key": snap.key, "upstream": upstream}
        if snap.key.endswith("[?]"):
            # Instance events are tracked under the unresolved key (`_update_tracking_dict`).
            name = snap.key[: -len("[?]")]
            step["status"] = "MAPPED"
            step["instances"] = {
                key[len(name) + 1 : -1]: status_of(types)
                for key, types in seen.items()
                if key.startswith(name + "[") and key != snap.key
            }
        else:
            step["status"] = status_of(seen.get(snap.key))
        if any(output.properties and output.properties.is_dynamic for output in snap.outputs):
            step["dynamic_output"] = True
            step["mapping_keys"] = mapping_keys.get(snap.key, [])
        step.update(asset_fields(snap, repository_def))
        steps.append(step)
    return steps


def asset_fields(snap: Any, repository_def: Any = None) -> dict[str, Any]:
    """A step's assets, checks and required keys from its outputs' properties; blocking checks
    and ``can_subset`` from the repository's definitions when they are at hand."""
    assets: list[str] = []
    checks: list[str] = []
    required: list[str] = []
    check_keys: list[AssetCheckKey] = []
    asset_keys: list[AssetKey] = []
    for output in snap.outputs:
        props = output.properties
        if props is None:
            continue
        if props.asset_key is not None:
            key = asset_key_string(props.asset_key)
            assets.append(key)
            asset_keys.append(props.asset_key)
        elif props.asset_check_key is not None:
            key = check_key_string(props.asset_check_key)
            checks.append(key)
            check_keys.append(props.asset_check_key)
        else:
            continue
        if props.is_required:
            required.append(key)
    if not assets and not checks:
        return {}
    fields: dict[str, Any] = {"assets": assets, "checks": checks, "required_keys": required}
    if repository_def is not None:
        fields["blocking_checks"] = [
            check_key_string(k) for k in check_keys if _check_is_blocking(repository_def, k)
        ]
        fields["can_subset"] = _can_subset(repository_def, asset_keys, check_keys)
    return fields


def _check_is_blocking(repository_def: Any, key: AssetCheckKey) -> bool:
    try:
        return bool(repository_def.asset_graph.get(key).blocking)
    except Exception:  # a check the current code no longer defines: not known to block
        return False


def _can_subset(repository_def: Any, asset_keys: list[AssetKey], check_keys: list[AssetCheckKey]) -> bool | None:
    """Whether the definition behind the step can run part of its keys (None: unknown, or a
    step of checks alone, whose definition is not its asset's)."""
    by_key = repository_def.assets_defs_by_key
    for key in asset_keys:
        assets_def = by_key.get(key)
        if assets_def is not None:
            return bool(assets_def.can_subset)
    return None
