"""``runretry_sensor``: a run-failure sensor that decides retries with a runretry policy.

*shadow*: Dagster's own run retries stay on. For each failed run the sensor waits until the
daemon has acted, decides on the case as it stood at the failure, and records whether it agrees
(tag ``runretry/shadow``, an engine event, and a running summary in the sensor's log).

Either way the failed run gets ``runretry/policy_sha256``: the SHA-256 of the component that
decided.

*enforce*: with ``run_retries.enabled: false`` the sensor owns retries. It writes the decision's
``failed_run_tags``, logs its events and reason as engine events on the failed run, and launches
the re-execution (or resubmits an existing one); a retry with ``delay_seconds`` waits for a
later tick. All of its state lives in the failed run's tags, so a restarted daemon or sensor
picks pending retries up, and the retry's run id is derived from the failed run's, so no
failure is ever retried twice.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    EventLogEntry,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)
from dagster._core.event_api import EventLogCursor
from dagster._core.events import EngineEventData
from dagster._core.storage.dagster_run import RunsFilter

import runretry
from runretry.dagster import launch
from runretry.dagster.case import HISTORY_RUNS, HISTORY_SECONDS, build_case, run_location, run_retries_config
from runretry.dagster.connections import held_connections
from runretry.dagster.shadow import DECISION_TAG, SHADOW_TAG, compare
from runretry.remote import RemotePolicy

#: How long after its failure event a run may still be being stored by Dagster (see
#: `_failure_stored`); after that it is judged as it stands.
STORING_SECONDS = 60
FAILURE_REASON_TAG = "dagster/failure_reason"
STATE_TAG = "runretry/state"  # pending | launched | resubmitted | none | error
DUE_TAG = "runretry/due_at"  # epoch seconds of a delayed retry
# The run the sensor's tags were written on. Dagster copies a run's tags to a re-execution by
# hand, runretry's with them: without this, a re-executed run would look judged already (and
# a copied "pending" would be launched again).
JUDGED_TAG = ".runretry/judged"


def _judged(run: DagsterRun, tag: str) -> bool:
    """Whether this sensor wrote ``tag`` on ``run`` itself, not on a run it was copied from (a run
    tagged before the judged tag existed has none: its own tag is trusted, as it was then)."""
    judged = run.tags.get(JUDGED_TAG)
    return bool(run.tags.get(tag)) and (judged is None or judged == run.run_id)
AUTO_RETRY_TAG = "dagster/auto_retry_run_id"
WILL_RETRY_TAG = "dagster/will_retry"
# Which policy decided, as the SHA-256 of its component (the service's active version's for a
# RemotePolicy, the embedded default policy's when a fallback decided); "none" when none did.
POLICY_TAG = "runretry/policy_sha256"


def _decided_by(decision: dict[str, Any]) -> dict[str, str]:
    return {POLICY_TAG: decision.get("policy_sha256") or "none"}

Mode = Literal["shadow", "enforce"]
OnPolicyError = Literal["fail", "give-up", "default"]

_policies: dict[tuple[Any, ...], runretry.Policy] = {}
_policies_lock = threading.Lock()


def _job_name(job: Any) -> str:
    return job if isinstance(job, str) else job.name


def _remote(policy: Any) -> RemotePolicy | None:
    """The service that decides, when ``policy`` names one (an ``http(s)://`` address, or a
    ``RemotePolicy`` with its own token, deadline and ``on_unreachable``)."""
    if isinstance(policy, RemotePolicy):
        return policy
    if isinstance(policy, str) and policy.startswith(("http://", "https://")):
        return RemotePolicy(policy)
    return None


def _stamp(path: str) -> tuple[int, int] | None:
    """A file's version: modification time and size; None when missing or unreadable (then
    ``Policy.load`` says why, in ``on_policy_error``'s way)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


def _load_policy(path: str | None, on_policy_error: OnPolicyError, limits: dict[str, Any], log: Any) -> runretry.Policy:
    """The policy, loaded once per process and file version (a missing file is a version too:
    the tick after it appears loads it). A policy that does not load follows ``on_policy_error``
    as ``Policy.load`` does: under ``fail`` the tick raises its error, which names the file;
    under ``give-up`` or ``default`` the error goes to the sensor's log and decisions go on."""
    if path is None:
        key: tuple[Any, ...] = (None, on_policy_error, tuple(sorted(limits.items())))
    else:
        # The signature too, when keys are trusted: a policy re-signed is a new version.
        files = (path, path + ".sig") if "trusted_keys" in limits else (path,)
        version = tuple(_stamp(file) for file in files)
        key = (path, version, on_policy_error, tuple(sorted(limits.items())))
    with _policies_lock:
        if key not in _policies:
            if path is None:
                _policies[key] = runretry.Policy.default(**limits)
            else:
                try:
                    policy = runretry.Policy.load(path, on_policy_error=on_policy_error, **limits)
                except runretry.RunretryError as error:
                    log.error(f"runretry: policy {path} does not load ({error.kind}): {_detail(error)}; "
                              f"on_policy_error='fail': no failure is decided until it loads")
                    raise
                if policy.load_error is not None:
                    error = policy.load_error
                    log.error(f"runretry: policy {path} does not load ({error.kind}): {_detail(error)}; "
                              f"on_policy_error={on_policy_error!r} applies to every decision")
                _policies[key] = policy
        return _policies[key]


def _detail(error: runretry.RunretryError) -> str:
    """The error's text without its kind, which it starts with (the caller names the kind)."""
    return str(error).removeprefix(f"{error.kind}: ")


class _Cursor:
    """The sensor's cursor: where the failure feed was read up to, and (shadow) the failures
    waiting for the daemon to act, with when they were first seen."""

    def __init__(self, text: str | None):
        data = json.loads(text) if text else {}
        self.after: str | None = data.get("after")
        self.started: bool = data.get("started", False)
        self.waiting: dict[str, float] = data.get("waiting", {})

    def dump(self) -> str:
        return json.dumps({"after": self.after, "started": self.started, "waiting": self.waiting})


def _new_failures(instance: DagsterInstance, cursor: _Cursor) -> list[tuple[DagsterRun, EventLogEntry]]:
    """RUN_FAILURE events after the cursor (on the first tick: none, and the cursor starts at
    the newest failure, as Dagster's daemon does, so old failures are not retried now)."""
    if not cursor.started:
        newest = instance.fetch_run_status_changes(DagsterEventType.RUN_FAILURE, limit=1, ascending=False)
        cursor.after = newest.cursor if newest.records else None
        cursor.started = True
        return []
    out = []
    while True:
        result = instance.fetch_run_status_changes(
            DagsterEventType.RUN_FAILURE, limit=100, cursor=cursor.after, ascending=True
        )
        for record in result.records:
            run = instance.get_run_by_id(record.run_id)
            if run is not None and not _failure_stored(run, record.event_log_entry):
                return out  # the cursor stays before it: the next tick starts here
            if run is not None:
                out.append((run, record.event_log_entry))
            cursor.after = EventLogCursor.from_storage_id(record.storage_id).to_string()
        if not result.has_more:
            return out


def _failure_stored(run: DagsterRun, entry: EventLogEntry) -> bool:
    """Whether Dagster has finished storing the failure: the event comes first, then the run's
    status and (before 1.13.7, in a separate read and rewrite of the run) its failure reason
    tag. Tags written in between would be lost from the run, so such a run waits a tick."""
    if time.time() - entry.timestamp > STORING_SECONDS:
        return True  # never blocks the failures after it for long, whatever happened to this run
    if run.status != DagsterRunStatus.FAILURE:
        return False
    data = entry.dagster_event.event_specific_data if entry.dagster_event else None
    reason = getattr(data, "failure_reason", None)
    return reason is None or reason.value == "UNKNOWN" or FAILURE_REASON_TAG in run.tags


def _engine_events(instance: DagsterInstance, run: DagsterRun, messages: Sequence[str]) -> None:
    for message in messages:
        instance.report_engine_event(f"runretry: {message}", run, engine_event_data=EngineEventData())


def runretry_sensor(
    policy: str | os.PathLike[str] | RemotePolicy | None = None,
    mode: Mode = "shadow",
    on_policy_error: OnPolicyError = "fail",
    monitored_jobs: Sequence[Any] | None = None,
    *,
    name: str = "runretry_sensor",
    minimum_interval_seconds: int = 5,
    default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
    shadow_wait_seconds: float = 120.0,
    policy_limits: dict[str, Any] | None = None,
    trusted_keys: Sequence[str | os.PathLike[str]] | None = None,
    history_runs: int = HISTORY_RUNS,
    history_seconds: float = HISTORY_SECONDS,
) -> SensorDefinition:
    """A sensor for ``Definitions`` that decides run retries with a runretry policy.

    ``policy`` is a policy component's path (None: the embedded default policy, Dagster's own
    semantics), or the service that decides: an ``http(s)://`` address of ``runretry serve``,
    or a ``runretry.RemotePolicy`` (its token, deadline and ``on_unreachable``). A relative
    path is relative to the working directory of the process that runs the sensor (the code
    location's server), not to the file that defines it. ``mode`` is
    ``"shadow"`` (compare with Dagster's retries, launch nothing) or ``"enforce"`` (launch
    retries; set ``run_retries.enabled: false``). ``on_policy_error`` is what a failing policy
    leads to, including one that does not load (missing, unreadable, not a component):
    ``"fail"`` (no retry, the error logged; a policy that does not load fails every tick with
    its error until it loads), ``"give-up"`` (no retry, logged) or ``"default"`` (decide with
    the default policy, logged). ``monitored_jobs`` are jobs or job
    names (None: every job of this code location). ``shadow_wait_seconds`` bounds how long a
    shadow judgement waits for the daemon (past it, the daemon is taken not to retry).
    ``policy_limits`` are ``Policy.load``'s sandbox limits (``fuel``, ``deadline_ms``, ...).
    ``trusted_keys`` are public key files: only a policy signed by one of them (``POLICY.sig``
    beside it, from ``runretry sign``) loads; one that is not is a policy that does not load,
    and ``on_policy_error`` applies (docs/deployment.md, "Signed policies").
    ``history_runs`` and ``history_seconds`` bound the job's earlier runs each case carries
    (``run.history``: 100 runs, 7 days by default; 0 runs for none).
    """
    if mode not in ("shadow", "enforce"):
        raise ValueError(f"runretry_sensor: mode: {mode!r} is not a mode (\"shadow\" or \"enforce\")")
    if on_policy_error not in ("fail", "give-up", "default"):
        raise ValueError(
            f"runretry_sensor: on_policy_error: {on_policy_error!r} is not a mode (\"fail\", \"give-up\", \"default\")"
        )
    remote = _remote(policy)
    policy_path = os.fspath(policy) if policy is not None and remote is None else None
    job_names = None if monitored_jobs is None else {_job_name(j) for j in monitored_jobs}
    limits = dict(policy_limits or {})
    if trusted_keys is not None:
        limits["trusted_keys"] = tuple(os.fspath(key) for key in trusted_keys)
    bounds = {"history_runs": history_runs, "history_seconds": history_seconds}

    @sensor(name=name, minimum_interval_seconds=minimum_interval_seconds, default_status=default_status)
    def _sensor(context: SensorEvaluationContext) -> SkipReason:
        instance = context.instance
        cursor = _Cursor(context.cursor)
        location_name = context.code_location_origin.location_name if context.code_location_origin else None

        def monitored(run: DagsterRun) -> bool:
            if job_names is not None:
                return run.job_name in job_names
            in_location = location_name is None or run_location(run) == location_name
            return in_location and context.repository_def is not None and context.repository_def.has_job(run.job_name)

        engine = remote or _load_policy(policy_path, on_policy_error, limits, context.log)
        # The tick's instance is its own (made from the daemon's instance ref), so holding its
        # storages' connections for the tick touches nothing else.
        with held_connections(instance):
            failures = [(run, entry) for run, entry in _new_failures(instance, cursor) if monitored(run)]
            if mode == "shadow":
                for run, entry in failures:
                    cursor.waiting.setdefault(run.run_id, entry.timestamp)
                summary = _shadow_tick(context, engine, cursor, shadow_wait_seconds, bounds)
            else:
                summary = _enforce_tick(context, engine, failures, bounds)
        context.update_cursor(cursor.dump())
        return SkipReason(summary)

    return _sensor


# --- shadow ------------------------------------------------------------------------------------


def _daemon_outcome(instance: DagsterInstance, run: DagsterRun, waited: float, wait_limit: float):
    """(done, child): whether the daemon has acted on ``run``, and the retry run it created."""
    child_id = run.tags.get(AUTO_RETRY_TAG)
    if child_id:
        return True, instance.get_run_by_id(child_id)
    if not instance.run_retries_enabled:
        return True, None
    will_retry = run.tags.get(WILL_RETRY_TAG)
    if will_retry is not None and will_retry.lower() in ("false", "none", "0", ""):
        return True, None  # Dagster decided not to retry (its own boolean parsing)
    # "true" and no child yet: the daemon has not acted; past the limit, take it that it won't.
    return waited >= wait_limit, None


def _shadow_tick(
    context: SensorEvaluationContext, engine: runretry.Policy | RemotePolicy, cursor: _Cursor, wait: float, bounds: dict[str, Any]
) -> str:
    instance = context.instance
    judged = []
    for run_id, failed_at in list(cursor.waiting.items()):
        run = instance.get_run_by_id(run_id)
        if run is None:
            del cursor.waiting[run_id]
            continue
        done, child = _daemon_outcome(instance, run, time.time() - failed_at, wait)
        if not done:
            continue
        del cursor.waiting[run_id]
        if _judged(run, SHADOW_TAG):
            continue  # judged by an earlier tick whose cursor was not saved
        case = build_case(instance, run, repository_def=context.repository_def, before_retry=True, **bounds)
        try:
            decision = engine.decide(case)
        except runretry.RunretryError as error:
            context.log.error(f"runretry: could not decide for run {run_id} ({error.kind}): {error}")
            instance.add_run_tags(run_id, {SHADOW_TAG: "error", JUDGED_TAG: run_id})
            _engine_events(instance, run, [f"shadow: the policy could not decide ({error.kind}): {error}"])
            continue
        diffs = compare(decision, child, instance)
        verdict = "agree" if not diffs else "disagree"
        instance.add_run_tags(
            run_id,
            {SHADOW_TAG: verdict, JUDGED_TAG: run_id, **_decided_by(decision),
             DECISION_TAG: json.dumps(decision, sort_keys=True)},
        )
        what = f"{decision['action']} (retry {decision['retry_number']})" if decision["retry"] else decision["action"]
        detail = "; ".join(diffs) if diffs else "same decision"
        _engine_events(instance, run, [f"shadow: {verdict}s with Dagster: runretry decides {what}: {detail}. "
                                       f"Reason: {decision['reason']}"])
        (context.log.info if not diffs else context.log.warning)(f"runretry shadow: run {run_id}: {verdict}: {detail}")
        judged.append(verdict)
    if not judged:
        return f"runretry shadow: {len(cursor.waiting)} failure(s) waiting for the daemon"
    agreed = judged.count("agree")
    summary = f"runretry shadow: {agreed} of {len(judged)} judged failure(s) agreed with Dagster"
    context.log.info(summary)
    return summary


# --- enforce -----------------------------------------------------------------------------------


def _enforce_tick(
    context: SensorEvaluationContext,
    engine: runretry.Policy | RemotePolicy,
    failures: list[tuple[DagsterRun, EventLogEntry]],
    bounds: dict[str, Any],
) -> str:
    instance = context.instance
    done = []
    for run, entry in failures:
        outcome = _decide(context, engine, run, entry, bounds)
        if outcome:
            done.append(outcome)
    # Retries decided earlier and due now, found from tags: they survive any restart.
    for run in instance.get_runs(RunsFilter(tags={STATE_TAG: "pending"})):
        # A run whose decision is not on it (lost to a concurrent rewrite of the run) is not
        # launched blind.
        due = float(run.tags.get(DUE_TAG, "0")) <= time.time()
        if _judged(run, STATE_TAG) and DECISION_TAG in run.tags and due:
            done.append(_launch(context, run, json.loads(run.tags[DECISION_TAG])))
    if not done:
        return "runretry enforce: nothing to do"
    # Dagster lists a tick without RunRequests as skipped; runretry launches its retries itself.
    return "runretry enforce (retries are launched by runretry, not by this tick's run requests): " + "; ".join(done)


def _decide(
    context: SensorEvaluationContext, engine: runretry.Policy | RemotePolicy, run: DagsterRun, entry: EventLogEntry, bounds: dict[str, Any]
) -> str | None:
    instance = context.instance
    run = instance.get_run_by_id(run.run_id) or run  # the freshest tags
    if _judged(run, STATE_TAG):
        return None  # decided by an earlier tick
    # A run another hand already retried still goes to the policy, as it does in Dagster's
    # daemon: a retry that exists but was never submitted (its creator died in between) is
    # RESUBMIT_EXISTING, one that started is no retry.
    # `enabled: false` only keeps Dagster's daemon out of the way; the sensor retries.
    config = {**run_retries_config(instance), "enabled": True}
    case = build_case(instance, run, entry, config=config, repository_def=context.repository_def, **bounds)
    try:
        decision = engine.decide(case)
    except runretry.RunretryError as error:
        # on_policy_error="fail": no decision, so no retry, as when Dagster's own retry raises.
        context.log.error(f"runretry: the policy could not decide for run {run.run_id} ({error.kind}): {error}")
        instance.add_run_tags(run.run_id, {STATE_TAG: "error", JUDGED_TAG: run.run_id, WILL_RETRY_TAG: "false"})
        _engine_events(instance, run, [f"the policy could not decide ({error.kind}): {error}"])
        return f"{run.run_id}: policy error"
    for event in decision["events"]:
        if event.startswith("policy ") and " failed (" in event:  # the fallback's note
            context.log.error(f"runretry: run {run.run_id}: {event}")
    failed_tags = {k: v for k, v in decision["failed_run_tags"].items() if k != AUTO_RETRY_TAG or not decision["retry"]}
    _engine_events(instance, run, [*decision["events"], f"decision: {decision['reason']}"])
    if decision["action"] == "LAUNCH_NEW":
        due = entry.timestamp + float(decision["delay_seconds"] or 0)
        instance.add_run_tags(
            run.run_id,
            {**failed_tags, STATE_TAG: "pending", JUDGED_TAG: run.run_id, **_decided_by(decision), DUE_TAG: f"{due:.3f}",
             DECISION_TAG: json.dumps(decision, sort_keys=True)},
        )
        if due <= time.time():
            return _launch(context, instance.get_run_by_id(run.run_id) or run, decision)
        return f"{run.run_id}: retry {decision['retry_number']} due in {due - time.time():.0f} s"
    if decision["action"] == "RESUBMIT_EXISTING":
        # Submitted before the state is written: a tick that dies in between leaves no state, so
        # the failure is decided again (its cursor was not saved) instead of never submitted.
        existing = instance.get_run_by_id(decision["resubmit_run_id"])
        if existing is not None and existing.status == DagsterRunStatus.NOT_STARTED:
            launch.submit(instance, existing.run_id)
        instance.add_run_tags(
            run.run_id, {**failed_tags, STATE_TAG: "resubmitted", JUDGED_TAG: run.run_id, **_decided_by(decision)}
        )
        return f"{run.run_id}: resubmitted {decision['resubmit_run_id']}"
    instance.add_run_tags(run.run_id, {**failed_tags, STATE_TAG: "none", JUDGED_TAG: run.run_id, **_decided_by(decision)})
    return f"{run.run_id}: not retried"


def _launch(context: SensorEvaluationContext, run: DagsterRun, decision: dict[str, Any]) -> str:
    """Create and queue ``run``'s retry once: its id is fixed, so a second creation fails."""
    instance = context.instance
    new_id = launch.retry_run_id(run.run_id)
    child = instance.get_run_by_id(new_id)
    if child is None:
        try:
            location = launch.code_location(instance, context.code_location_origin)
            child = launch.create_retry_run(instance, location, run, decision, new_id)
        except launch.DagsterRunAlreadyExists:
            child = instance.get_run_by_id(new_id)
        except Exception as error:  # as Dagster's daemon: a retry that cannot be created is not retried
            context.log.error(f"runretry: failed to retry run {run.run_id}: {error}")
            instance.add_run_tags(run.run_id, {STATE_TAG: "error", JUDGED_TAG: run.run_id, WILL_RETRY_TAG: "false"})
            _engine_events(instance, run, [f"Failed to retry run: {type(error).__name__}: {error}"])
            return f"{run.run_id}: failed to retry"
        _engine_events(instance, run, [f"Retrying the run as {new_id}"])
        instance.report_engine_event(
            f"runretry: Launched as an automatic retry of {run.run_id}", child, engine_event_data=EngineEventData()
        )
    # Submitted before "launched" is written: a tick that dies in between leaves the retry
    # "pending", and a later tick submits the run it finds (never a second one).
    if child is not None and child.status == DagsterRunStatus.NOT_STARTED:
        launch.submit(instance, new_id)
    instance.add_run_tags(run.run_id, {AUTO_RETRY_TAG: new_id, STATE_TAG: "launched", JUDGED_TAG: run.run_id})
    return f"{run.run_id}: retry {decision['retry_number']} launched as {new_id}"
