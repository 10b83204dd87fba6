"""``runretry.airflow.RetryPolicy``: Airflow 3.3's task retry policy, decided by a runretry policy.

Give it to a task (``retry_policy=RetryPolicy("policies/retry.wasm")``), to every task of a DAG
(``default_args={"retry_policy": ...}``), or to every task of a deployment (``task_policy`` in
``airflow_local_settings.py``). At each failure Airflow calls :meth:`RetryPolicy.evaluate` in the
worker; it builds the task case (:func:`runretry.airflow.build_task_case`), asks the policy, and
answers Airflow:

- ``mode="enforce"``: the policy's decision (``retry`` with its delay, ``fail``, ``default``).
- ``mode="shadow"``: ``default`` (Airflow's own behaviour), after logging on the
  ``runretry.airflow`` logger what the policy would have decided and whether that agrees with
  what Airflow does (the embedded default task policy, which is Airflow's behaviour exactly).

When the policy fails (a trap, a deadline, an answer the host refuses, a file that does not
load), ``on_policy_error`` says what follows: ``"default"`` (the default) decides as Airflow
would and says so in the log, ``"give-up"`` fails the task, ``"fail"`` raises, which Airflow
logs before falling back to its standard retries. A slow policy is stopped at its deadline
(``deadline_ms``, 5 s by default) and then counts as failing. The policy loads once per worker
process, at the first failure.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any, Literal

from airflow.sdk import RetryDecision
from airflow.sdk import RetryPolicy as AirflowRetryPolicy

from runretry._runretry import Policy
from runretry.airflow.case import HISTORY_RUNS, build_task_case
from runretry.remote import RemotePolicy

Mode = Literal["enforce", "shadow"]

_log = logging.getLogger("runretry.airflow")


class RetryPolicy(AirflowRetryPolicy):
    """An Airflow ``RetryPolicy`` whose decisions a runretry policy makes.

    ``policy``: a policy component's path (it must export the task interface; ``runretry
    inspect`` says), ``None`` for the embedded default task policy (Airflow 3.3.2's own
    behaviour), or a ``runretry serve`` service deciding for the fleet: its ``http(s)://``
    address or a :class:`runretry.RemotePolicy`. ``limits``: the sandbox's limits and
    ``trusted_keys``, as for ``Policy.load``.
    """

    def __init__(
        self,
        policy: str | RemotePolicy | None = None,
        mode: Mode = "enforce",
        on_policy_error: Literal["default", "give-up", "fail"] = "default",
        *,
        history_runs: int = HISTORY_RUNS,
        **limits: Any,
    ) -> None:
        if mode not in ("enforce", "shadow"):
            raise ValueError(f"runretry RetryPolicy: mode: {mode!r} is not \"enforce\" or \"shadow\"")
        if on_policy_error not in ("default", "give-up", "fail"):
            raise ValueError(
                f"runretry RetryPolicy: on_policy_error: {on_policy_error!r} is not \"default\", \"give-up\" or \"fail\""
            )
        if history_runs < 0:
            raise ValueError(f"runretry RetryPolicy: history_runs: {history_runs} must be at least 0")
        self._remote = policy if isinstance(policy, RemotePolicy) else None
        if isinstance(policy, str) and policy.startswith(("http://", "https://")):
            self._remote = RemotePolicy(policy)
        self.policy_path = None if policy is None or self._remote is not None else str(policy)
        self.mode: Mode = mode
        self.on_policy_error = on_policy_error
        self.history_runs = history_runs
        self._limits = limits
        self._loaded: tuple[Policy | RemotePolicy, Policy] | None = None
        self._lock = threading.Lock()

    def evaluate(
        self,
        exception: BaseException,
        try_number: int,
        max_tries: int,
        context: Any = None,
    ) -> RetryDecision:
        policy, airflows = self._policies()
        case = build_task_case(exception, try_number, max_tries, context, history_runs=self.history_runs)
        decision = policy.decide_task(case)
        for event in decision.get("events") or []:
            _log.warning("runretry: %s", event)
        where = _where(case)
        if self.mode == "shadow":
            airflow = airflows.decide_task(case)
            agrees = _same(decision, airflow)
            _log.info(
                "runretry shadow: %s try %s: the policy would %s; Airflow does %s (%s)",
                where,
                try_number,
                _words(decision),
                _words(airflow),
                "agrees" if agrees else "DISAGREES",
            )
            return RetryDecision.default()
        _log.info(
            "runretry: %s try %s: %s (policy sha256 %s)", where, try_number, _words(decision),
            decision.get("policy_sha256") or "none",
        )
        return _airflow_decision(decision)

    def _policies(self) -> tuple[Policy | RemotePolicy, Policy]:
        """The policy, and the default policy shadow mode compares with: loaded once per process."""
        with self._lock:
            if self._loaded is None and self._remote is not None:
                self._loaded = (self._remote, Policy.default(**self._limits))
            if self._loaded is None:
                if self.policy_path is None:
                    policy = Policy.default(**self._limits)
                else:
                    policy = Policy.load(self.policy_path, on_policy_error=self.on_policy_error, **self._limits)
                _, tasks = policy.decides
                if policy.load_error is None and not tasks:
                    raise ValueError(
                        f"runretry RetryPolicy: {policy.name} decides about Dagster runs only: it does not "
                        "export runretry:policy/task-policy (see docs/writing-a-policy.md, Airflow)"
                    )
                airflows = policy if self.policy_path is None else Policy.default(**self._limits)
                self._loaded = (policy, airflows)
            return self._loaded

    def serialize(self) -> dict[str, Any]:
        """What DAG serialization stores (Airflow keeps only that a policy exists)."""
        return {
            "policy": self._remote.url if self._remote is not None else self.policy_path,
            "mode": self.mode,
            "on_policy_error": self.on_policy_error,
            "history_runs": self.history_runs,
        }

    def __repr__(self) -> str:
        where = self._remote.url if self._remote is not None else self.policy_path
        return f"runretry.airflow.RetryPolicy({where!r}, mode={self.mode!r})"


def _airflow_decision(decision: dict[str, Any]) -> RetryDecision:
    action = decision["action"]
    if action == "retry":
        delay = decision.get("delay_seconds")
        return RetryDecision.retry(
            delay=None if delay is None else timedelta(seconds=delay), reason=decision.get("reason")
        )
    if action == "fail":
        return RetryDecision.fail(reason=decision.get("reason"))
    return RetryDecision.default()


def _same(ours: dict[str, Any], airflows: dict[str, Any]) -> bool:
    # A policy answering `default` does what Airflow does, by definition.
    if ours["action"] == "default":
        return True
    return ours["action"] == airflows["action"] and (
        ours["action"] != "retry" or ours.get("delay_seconds") == airflows.get("delay_seconds")
    )


def _words(decision: dict[str, Any]) -> str:
    action = decision["action"]
    if action == "retry":
        delay = decision.get("delay_seconds")
        after = "the task's retry_delay" if delay is None else f"{delay} s"
        return f"retry after {after}: {decision.get('reason')}"
    if action == "fail":
        return f"fail: {decision.get('reason')}"
    return f"leave it to Airflow: {decision.get('reason')}"


def _where(case: dict[str, Any]) -> str:
    task = case["task"]
    mapped = "" if task["map_index"] < 0 else f"[{task['map_index']}]"
    return f"{task['dag_id']}.{task['task_id']}{mapped} in {task['run_id']}"
