"""The task case of a failed try (``docs/case-format.md``, "Task cases"), from what Airflow hands
a retry policy: the exception, the try number, ``max_tries`` and the task's context.

Everything taken from the exception is bounded (class names, 32 bases, a 4 KiB message, 8
causes), as everything in a case is: a task can raise anything. The DAG's recent runs come from
the Task SDK (``get_previous_ti``, one request to the API server per run, ~10 ms each here), for
runs with a logical date; Airflow 3.3 gives a worker no access to a task instance's earlier
tries, so ``tries`` is empty.
"""

from __future__ import annotations

import math
import time
from datetime import timedelta
from typing import Any

#: The longest exception message a case carries, in bytes.
MAX_MESSAGE_BYTES = 4096
#: The most base classes, and links of the cause chain, a case carries.
MAX_BASES = 32
MAX_CAUSES = 8
#: The most earlier runs of the task a case carries by default.
HISTORY_RUNS = 10

_MAX_NAME_BYTES = 1024


def build_task_case(
    exception: BaseException,
    try_number: int,
    max_tries: int,
    context: Any = None,
    *,
    history_runs: int = HISTORY_RUNS,
    now: float | None = None,
) -> dict[str, Any]:
    """The task case (``{"task": {...}}``) of a failed try, as a dict for ``Policy.decide_task``.

    ``context`` is the task's Airflow context (``None`` gives a case without the task's ids and
    settings, which a policy can still decide on). ``history_runs`` bounds the earlier runs read
    (0: none).
    """
    ti = _get(context, "ti")
    task = _get(context, "task")
    dag_run = _get(context, "dag_run")
    logical_date = getattr(dag_run, "logical_date", None)
    case: dict[str, Any] = {
        "orchestrator": _orchestrator(),
        "dag_id": str(getattr(ti, "dag_id", "") or ""),
        "task_id": str(getattr(ti, "task_id", "") or ""),
        "run_id": str(getattr(ti, "run_id", "") or ""),
        "map_index": int(getattr(ti, "map_index", -1) if getattr(ti, "map_index", None) is not None else -1),
        "try_number": max(int(try_number), 1),
        "max_tries": max(int(max_tries), 0),
        "settings": _settings(task),
        "run_type": _run_type(dag_run),
        "logical_date": None if logical_date is None else str(logical_date),
        "exception": _exception_info(exception),
        "causes": [_exception_info(cause) for cause in _causes(exception)],
        "tries": [],
        "history": _history(ti, logical_date, history_runs) if history_runs > 0 else [],
        "now": time.time() if now is None else now,
    }
    return {"task": case}


def _get(context: Any, key: str) -> Any:
    try:
        return context[key] if context is not None else None
    except (KeyError, TypeError):
        return None


def _orchestrator() -> str:
    try:
        import airflow

        return f"airflow {airflow.__version__}"
    except Exception:  # noqa: BLE001 (informational only)
        return "airflow"


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def _settings(task: Any) -> dict[str, Any]:
    """The task's retry settings; Airflow's defaults where the task has none."""
    settings: dict[str, Any] = {}
    if task is None:
        return settings
    retries = getattr(task, "retries", None)
    if retries is not None:
        settings["retries"] = max(int(retries), 0)
    delay = _seconds(getattr(task, "retry_delay", None))
    if delay is not None and math.isfinite(delay) and delay >= 0:
        settings["retry_delay_seconds"] = delay
    backoff = getattr(task, "retry_exponential_backoff", None)
    if backoff is not None:
        backoff = float(backoff)  # Airflow 2's True is 2.0 in 3.x; True reads as 1.0 here, as there
        if math.isfinite(backoff) and backoff >= 0:
            settings["retry_exponential_backoff"] = backoff
    cap = _seconds(getattr(task, "max_retry_delay", None))
    if cap is not None and math.isfinite(cap) and cap >= 0:
        settings["max_retry_delay_seconds"] = cap
    try:
        from airflow.configuration import conf

        settings["max_task_retry_delay_seconds"] = conf.getint("core", "max_task_retry_delay", fallback=86400)
    except Exception:  # noqa: BLE001 (the default is Airflow's)
        pass
    return settings


_STATES = {
    "none", "removed", "scheduled", "queued", "running", "success", "restarting", "failed", "up_for_retry",
    "up_for_reschedule", "upstream_failed", "skipped", "deferred",
}
_RUN_TYPES = {"scheduled", "manual", "backfill", "asset_triggered", "asset_materialization", "operator_triggered"}


def _run_type(dag_run: Any) -> str:
    # The SDK's DagRunType prints as "DagRunType.MANUAL": read its value.
    value = getattr(getattr(dag_run, "run_type", None), "value", None) or str(getattr(dag_run, "run_type", "manual"))
    return value if value in _RUN_TYPES else "manual"


def _qualified(cls: type) -> str:
    # A class made by type() outside a module has no __module__: name it, do not raise.
    module = getattr(cls, "__module__", None) or "<unknown>"
    name = getattr(cls, "__qualname__", None) or getattr(cls, "__name__", "<unnamed>")
    return _clip(f"{module}.{name}", _MAX_NAME_BYTES)


def _clip(text: str, max_bytes: int) -> str:
    data = text.encode("utf-8", "replace")
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode("utf-8", "ignore") + "…"


def _exception_info(exception: BaseException) -> dict[str, Any]:
    cls = type(exception)
    bases = [_qualified(base) for base in cls.__mro__[1:] if base is not object][:MAX_BASES]
    try:
        message = str(exception)
    except Exception as unprintable:  # noqa: BLE001 (a task's exception can fail to print)
        message = f"<str() raised {type(unprintable).__name__}>"
    return {"class_name": _qualified(cls), "bases": bases, "message": _clip(message, MAX_MESSAGE_BYTES)}


def _causes(exception: BaseException) -> list[BaseException]:
    """The chain Python prints: ``__cause__``, else ``__context__`` unless suppressed."""
    chain: list[BaseException] = []
    seen = {id(exception)}
    current = exception
    while len(chain) < MAX_CAUSES:
        following = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
        if following is None or id(following) in seen:
            break
        seen.add(id(following))
        chain.append(following)
        current = following
    return chain


def _history(ti: Any, logical_date: Any, runs: int) -> list[dict[str, Any]]:
    """This task in the DAG's earlier runs, newest first, walking back by logical date. A run
    without a logical date has no "earlier" in Airflow's API: none."""
    if ti is None or logical_date is None or not hasattr(ti, "get_previous_ti"):
        return []
    history: list[dict[str, Any]] = []
    before = logical_date
    for _ in range(runs):
        try:
            previous = ti.get_previous_ti(logical_date=before, map_index=getattr(ti, "map_index", -1))
        except Exception:  # noqa: BLE001 (history is a hint: a failing lookup leaves it shorter)
            break
        if previous is None or getattr(previous, "logical_date", None) is None:
            break
        if previous.logical_date >= before:
            break
        end = getattr(previous, "end_date", None)
        state = getattr(previous, "state", None)
        state = str(getattr(state, "value", state) or "none")
        if state not in _STATES:
            break
        history.append(
            {
                "run_id": str(previous.run_id),
                "run_type": _run_type_of_run_id(str(previous.run_id)),
                "logical_date": str(previous.logical_date),
                "state": state,
                "try_number": int(getattr(previous, "try_number", 0) or 0),
                "end_time": end.timestamp() if end is not None else None,
            }
        )
        before = previous.logical_date
    return history


def _run_type_of_run_id(run_id: str) -> str:
    # Airflow's run ids start with their type (`scheduled__2026-...`); the previous-TI answer
    # carries no type of its own.
    prefix = run_id.split("__", 1)[0]
    return prefix if prefix in _RUN_TYPES else "manual"
