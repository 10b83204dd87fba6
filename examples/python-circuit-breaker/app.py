"""A runretry policy in Python: a circuit breaker across runs.

The Python twin of ``examples/circuit-breaker-policy`` (same rules, same cases): a job whose last
K run groups before this one all failed the same way, within a window, is not retried; the
decision says so and tags the failed run ``runretry/circuit: open``. A success of the job closes
the circuit. Settings come from the run's tags (usually the job's): ``runretry/circuit_threshold``
(K, default 5) and ``runretry/circuit_window_seconds`` (default 86400).

Otherwise it retries the way Dagster does in the common case: within the run group's
``max_retries`` budget (the ``dagster/max_retries`` tag, else the deployment's config), step
failures only when ``retry_on_asset_or_op_failure`` allows, re-running the failed, interrupted
and never-run steps and everything downstream. The Rust examples build on the default policy's
library for Dagster's exact rules; a Python policy writes its own.
"""

import re

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import (
    Action,
    Config,
    Decision,
    Failure,
    FailureReason_Other,
    FailureReason_StepFailure,
    RetryStrategy,
    Run,
    RunStatus,
    Selection,
    StepStatus,
)

CAUSED_BY = "The above exception was caused by: "
RERUN = (StepStatus.FAILURE, StepStatus.IN_PROGRESS, StepStatus.NOT_STARTED, StepStatus.RESOURCE_INIT_FAILURE)


# ANCHOR: cause
def reason_name(reason) -> str:
    """A failure reason as Dagster spells it: ``FailureReason_StepFailure`` is ``STEP_FAILURE``."""
    if reason is None:
        return "no reason"
    if isinstance(reason, FailureReason_Other):
        return reason.value
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(reason).__name__.split("_", 1)[1]).upper()


def first_line(text: str) -> str:
    """The first non-blank line, trimmed, each run of digits replaced by ``#``."""
    line = next((line.strip() for line in text.split("\n") if line.strip()), "")
    return re.sub(r"[0-9]+", "#", line)


def cause(reason, message) -> str:
    """What a failure is, for "failed the same way": the reason, and the first lines of the
    error and of its innermost cause."""
    parts = (message or "").split(CAUSED_BY)
    error = first_line(parts[0])
    if len(parts) > 1:
        error = f"{error} <- {first_line(parts[-1])}"
    return f"{reason_name(reason)}: {error}" if error else reason_name(reason)
# ANCHOR_END: cause


def number(value: float) -> str:
    """A number as Rust's ``{}`` prints it: 24.0 is ``24``."""
    return str(int(value)) if value == int(value) else repr(value)


def read_tag(run: Run, key: str, default: float, minimum: float, events: list[str]) -> float:
    raw = dict(run.tags).get(key)
    if raw is None:
        return default
    try:
        value = float(raw.strip())
        if value >= minimum and value != float("inf"):
            return value
    except ValueError:
        pass
    events.append(f'Ignoring tag {key}="{raw}": not a number >= {number(minimum)}; using {number(default)}')
    return default


def duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{number(seconds / 3600)} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{number(seconds / 60)} min"
    return f"{number(seconds)} s"


# ANCHOR: breaker
def earlier_outcomes(run: Run, now, window_seconds: float):
    """Each earlier run group's outcome, newest first, from its newest run: ``"success"`` or the
    failure's cause. This run's group is left out, groups that neither succeeded nor failed are
    skipped, and the scan stops at the first run older than the window."""
    seen = {run.root_run_id or run.run_id}
    for past in run.history:
        time = past.start_time if past.start_time is not None else past.end_time
        if now is not None and time is not None and time < now - window_seconds:
            return
        root = past.root_run_id or past.run_id
        if root in seen:
            continue
        seen.add(root)
        if past.status == RunStatus.SUCCESS:
            yield "success"
        elif past.status == RunStatus.FAILURE:
            yield cause(past.failure_reason, past.failure_message)


def open_circuit(run: Run, failure: Failure, threshold: int, window_seconds: float):
    """This failure's cause when the last ``threshold`` earlier groups all failed with it."""
    this = cause(failure.reason, failure.message)
    recent = []
    for outcome in earlier_outcomes(run, failure.now, window_seconds):
        recent.append(outcome)
        if len(recent) == threshold:
            break
    return this if len(recent) == threshold and all(o == this for o in recent) else None
# ANCHOR_END: breaker


def no_retry(reason: str, extra_tags=(), events=()) -> Decision:
    return Decision(
        action=Action.NONE,
        retry_number=None,
        strategy=None,
        steps=None,
        new_run_tags=[],
        failed_run_tags=[("dagster/will_retry", "false"), *extra_tags],
        resubmit_run_id=None,
        delay_seconds=0.0,
        events=list(events),
        reason=reason,
        asset_selection=None,
        asset_check_selection=None,
    )


def from_failure(run: Run) -> list[str]:
    """Failed, interrupted and never-run steps, and everything downstream of them."""
    rerun = {step.key for step in run.steps if step.status in RERUN}
    changed = True
    while changed:
        changed = False
        for step in run.steps:
            if step.key not in rerun and any(up in rerun for up in step.upstream):
                rerun.add(step.key)
                changed = True
    return sorted(rerun)


def retry_or_not(run: Run, failure: Failure, config: Config) -> Decision:
    """Dagster's decision in the common case."""
    tags = dict(run.tags)
    if not config.enabled:
        return no_retry("run retries are disabled")
    retry_on_failure = tags.get("dagster/retry_on_asset_or_op_failure", str(config.retry_on_asset_or_op_failure))
    if isinstance(failure.reason, FailureReason_StepFailure) and retry_on_failure.lower() == "false":
        return no_retry("the run failed because a step failed, and retry_on_asset_or_op_failure is off")
    try:
        limit = int(tags["dagster/max_retries"]) if "dagster/max_retries" in tags else config.max_retries
    except ValueError:
        limit = 0
    existing = [m for m in run.group if m.exists] or [run]
    if len(existing) > limit:
        return no_retry(f"run group has {len(existing)} runs; max_retries is {limit}")
    steps = from_failure(run)
    if not steps:
        return no_retry("No steps needed to be retried in the failed run.")
    retry_number = len(existing)
    inherited = [(k, v) for k, v in run.tags if not k.startswith("dagster/") or k in ("dagster/max_retries",)]
    return Decision(
        action=Action.LAUNCH_NEW,
        retry_number=retry_number,
        strategy=RetryStrategy.FROM_FAILURE,
        steps=steps,
        new_run_tags=inherited + [
            ("dagster/retry_number", str(retry_number)),
            ("dagster/parent_run_id", run.run_id),
            ("dagster/root_run_id", run.root_run_id or run.run_id),
            ("dagster/is_resume_retry", "true"),
        ],
        failed_run_tags=[("dagster/will_retry", "true")],
        resubmit_run_id=None,
        delay_seconds=0.0,
        events=[],
        reason=f"retry {retry_number} of {limit}",
        asset_selection=run.asset_selection,
        asset_check_selection=run.asset_check_selection,
    )


class Policy(exports.Policy):
    def should_retry(self, run: Run, failure: Failure, config: Config) -> Decision:
        decision = retry_or_not(run, failure, config)
        if decision.action != Action.LAUNCH_NEW:
            return decision
        notes: list[str] = []
        threshold = int(read_tag(run, "runretry/circuit_threshold", 5, 1, notes))
        window = read_tag(run, "runretry/circuit_window_seconds", 86400, 0, notes)
        found = open_circuit(run, failure, threshold, window)
        if found is None:
            decision.events = notes
            return decision
        why = (
            f"circuit open: the last {threshold} run groups of {run.job or 'this job'} within {duration(window)} "
            f"failed as this run did ({found}); no retry until a run of the job succeeds"
        )
        return no_retry(why, [("runretry/circuit", "open")], [*notes, why])

    def select_steps(self, run: Run, strategy: RetryStrategy) -> Selection:
        if strategy == RetryStrategy.ALL_STEPS:
            return Selection(sorted({step.key for step in run.steps}), run.asset_selection, run.asset_check_selection)
        if strategy == RetryStrategy.FROM_ASSET_FAILURE:
            raise Err("this policy does not select by asset")
        steps = from_failure(run)
        if not steps:
            raise Err("No steps needed to be retried in the failed run.")
        return Selection(steps, run.asset_selection, run.asset_check_selection)
