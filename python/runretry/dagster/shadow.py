"""Shadow mode's judge: does a runretry decision match what Dagster's daemon did?"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import DagsterInstance, DagsterRun
from dagster._core.storage.dagster_run import RunsFilter

from runretry.dagster.case import asset_key_string, check_key_string

SHADOW_TAG = "runretry/shadow"
DECISION_TAG = ".runretry/decision"

# Tags a retry run gets after it is created, from its launch or its own failure; the policy does
# not decide them, so a comparison skips them unless the policy set one.
TAGS_SET_AFTER_CREATION = frozenset(
    {
        "dagster/code_location",
        ".dagster/grpc_info",
        "dagster/failure_reason",
        "dagster/will_retry",
        "dagster/auto_retry_run_id",
    }
)


def _own_tag(key: str) -> bool:
    return key.startswith(("runretry/", ".runretry/"))


def child_steps(instance: DagsterInstance | None, child: DagsterRun) -> list[str] | None:
    """The steps the daemon's retry runs, sorted: its step subset (FROM_FAILURE), else the whole
    plan of its execution-plan snapshot (ALL_STEPS, FROM_ASSET_FAILURE), which is planned without
    known state, so mapped steps are ``name[?]``. None when neither is known. An empty subset
    is one (before Dagster 1.11.3 an empty FROM_FAILURE retry was launched)."""
    if child.step_keys_to_execute is not None:
        return sorted(child.step_keys_to_execute)
    if instance is None or not child.execution_plan_snapshot_id:
        return None
    snapshot = instance.get_execution_plan_snapshot(child.execution_plan_snapshot_id)
    return sorted(step.key for step in snapshot.steps)


def compare(decision: Mapping[str, Any], child: DagsterRun | None, instance: DagsterInstance | None = None) -> list[str]:
    """How ``decision`` differs from the daemon's outcome: ``child`` is the retry run it created,
    None when it did not retry. Empty means agreement on retry or not, the retry number, the
    child's steps and asset selections, and its tags. With ``instance``, the steps of a retry
    that runs its whole plan are compared too (from the child's plan snapshot); without it,
    only a FROM_FAILURE step subset is."""
    retried = child is not None
    if bool(decision["retry"]) != retried:
        return [f"retry: runretry {'retries' if decision['retry'] else 'does not retry'}, "
                f"Dagster {'retried' if retried else 'did not retry'}"]
    if child is None:
        return []
    diffs = []
    number = child.tags.get("dagster/retry_number")
    if str(decision["retry_number"]) != number:
        diffs.append(f"retry_number: runretry {decision['retry_number']}, Dagster {number}")
    whole_plan = decision["strategy"] != "FROM_FAILURE"
    # No steps in a retry: the whole job, beyond the plan the case held (before Dagster 1.12.0).
    if decision["steps"] is not None and (instance is not None or not whole_plan):
        steps = sorted(decision["steps"])
        theirs = child_steps(instance, child)
        if steps != theirs:
            diffs.append(f"steps: runretry {steps}, Dagster {theirs}")
    child_assets = sorted(asset_key_string(k) for k in child.asset_selection) if child.asset_selection is not None else None
    if decision.get("asset_selection") != child_assets:
        diffs.append(f"asset_selection: runretry {decision.get('asset_selection')}, Dagster {child_assets}")
    child_checks = (
        sorted(check_key_string(k) for k in child.asset_check_selection)
        if child.asset_check_selection is not None
        else None
    )
    if decision.get("asset_check_selection") != child_checks:
        diffs.append(f"asset_check_selection: runretry {decision.get('asset_check_selection')}, Dagster {child_checks}")
    # runretry's own tags on either side are its bookkeeping (a run re-executed by hand carries
    # its parent's), not part of what the retry is.
    decided = {k: v for k, v in decision["new_run_tags"].items() if not _own_tag(k)}
    actual = {
        k: v
        for k, v in child.tags.items()
        if not _own_tag(k) and (k not in TAGS_SET_AFTER_CREATION or k in decided)
    }
    for key in sorted(set(decided) | set(actual)):
        if decided.get(key) != actual.get(key):
            diffs.append(f"tag {key}: runretry {decided.get(key)!r}, Dagster {actual.get(key)!r}")
    return diffs


def shadow_summary(instance: DagsterInstance, limit: int = 1000) -> dict[str, Any]:
    """The shadow record across runs: how many failures were judged, how many agreed, and the
    runs that did not (from the per-run ``runretry/shadow`` tags)."""
    agreed = instance.get_runs(RunsFilter(tags={SHADOW_TAG: "agree"}), limit=limit)
    disagreed = instance.get_runs(RunsFilter(tags={SHADOW_TAG: "disagree"}), limit=limit)
    return {
        "judged": len(agreed) + len(disagreed),
        "agreed": len(agreed),
        "disagreed": [{"run_id": r.run_id, "job": r.job_name} for r in disagreed],
    }
