"""A runretry policy in Python: retry unless the failure message matches a pattern.

Some failures are not worth a retry: bad credentials, a schema that no longer matches, a
permission the job will not suddenly gain. This policy reads a regular expression from the run's
`runretry/no_retry_pattern` tag (a sensible default otherwise), gives up at once when the
failure message matches it, and otherwise re-runs every step within the run group's
`max_retries` budget (the `dagster/max_retries` tag, else the deployment's config).
"""

import re

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import (
    Action,
    Config,
    Decision,
    Failure,
    RetryStrategy,
    Run,
    Selection,
    StepStatus,
)

# ANCHOR: rule
DEFAULT_PATTERN = r"(?i)permission denied|invalid credentials|schema mismatch"


def no_retry_pattern(run: Run) -> str:
    return dict(run.tags).get("runretry/no_retry_pattern", DEFAULT_PATTERN)


def budget(run: Run, config: Config) -> int:
    raw = dict(run.tags).get("dagster/max_retries")
    if raw is None:
        return config.max_retries
    try:
        return int(raw)
    except ValueError:
        return 0
# ANCHOR_END: rule


def no_retry(reason: str, events=None) -> Decision:
    return Decision(
        action=Action.NONE,
        retry_number=None,
        strategy=None,
        steps=None,
        new_run_tags=[],
        failed_run_tags=[("dagster/will_retry", "false")],
        resubmit_run_id=None,
        delay_seconds=0.0,
        events=events or [],
        reason=reason,
        asset_selection=None,
        asset_check_selection=None,
    )


class Policy(exports.Policy):
    def should_retry(self, run: Run, failure: Failure, config: Config) -> Decision:
        if not config.enabled:
            return no_retry("run retries are disabled")
        message = failure.message or ""
        pattern = no_retry_pattern(run)
        try:
            matched = re.search(pattern, message)
        except re.error as error:
            return no_retry(f"runretry/no_retry_pattern is not a valid regular expression: {error}")
        if matched:
            return no_retry(f"the failure message matches {pattern!r}: retrying will not help")
        existing = [m for m in run.group if m.exists] or [run]
        limit = budget(run, config)
        if len(existing) > limit:
            return no_retry(f"run group has {len(existing)} runs; max_retries is {limit}")
        retry_number = len(existing)
        root = run.root_run_id or run.run_id
        inherited = [(k, v) for k, v in run.tags if not k.startswith("dagster/")]
        new_tags = inherited + [
            ("dagster/retry_number", str(retry_number)),
            ("dagster/parent_run_id", run.run_id),
            ("dagster/root_run_id", root),
        ]
        return Decision(
            action=Action.LAUNCH_NEW,
            retry_number=retry_number,
            strategy=RetryStrategy.ALL_STEPS,
            steps=sorted({step.key for step in run.steps}),
            new_run_tags=new_tags,
            failed_run_tags=[("dagster/will_retry", "true")],
            resubmit_run_id=None,
            delay_seconds=0.0,
            events=[],
            reason=f"the failure message does not match {pattern!r}; retry {retry_number} of {limit}",
            # Step granularity: the failed run's asset selections carry over unchanged.
            asset_selection=run.asset_selection,
            asset_check_selection=run.asset_check_selection,
        )

    def select_steps(self, run: Run, strategy: RetryStrategy) -> Selection:
        keys = sorted({step.key for step in run.steps})
        if strategy == RetryStrategy.ALL_STEPS:
            return Selection(keys, run.asset_selection, run.asset_check_selection)
        if strategy == RetryStrategy.FROM_ASSET_FAILURE:
            raise Err("this policy does not select by asset")
        rerun = set()
        for step in run.steps:
            if step.status in (StepStatus.FAILURE, StepStatus.IN_PROGRESS, StepStatus.NOT_STARTED,
                               StepStatus.RESOURCE_INIT_FAILURE):
                rerun.add(step.key)
        changed = True
        while changed:
            changed = False
            for step in run.steps:
                if step.key not in rerun and any(up in rerun for up in step.upstream):
                    rerun.add(step.key)
                    changed = True
        if not rerun:
            raise Err("No steps needed to be retried in the failed run.")
        return Selection(sorted(rerun), run.asset_selection, run.asset_check_selection)
