"""Airflow's own retry delay on random settings: the Airflow side of the differential test of
the default task policy's delay (python/tests/airflow.rs).

Usage: python gen.py SEED COUNT OUT. Writes one JSON object per line to OUT (Airflow logs to
stdout): a task's retry settings, the failed try, and what Airflow's
`TaskInstance.next_retry_datetime` waits (`delay_seconds`) or the exception it raises (`raises`). The task instance is Airflow's own, with its task an operator
built with those settings; its DAG run's logical date is made by Airflow's `UtcDateTime` column
type from a naive datetime, as the metadata database returns it (not a pendulum instance).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import random
import sys
import tempfile
import uuid

# Far past what Python's float power can hold: tries past it overflow.
HUGE_TRIES = [60, 200, 1100, 2000]
DELAYS = [0.0, 0.5, 1.0, 2.5, 10.0, 60.0, 300.0, 3600.0, 86_400.0, 1e-6, 123.456789]
MULTIPLIERS = [0.0, 1.0, 2.0, 2.0, 3.0, 1.5, 0.5, 1.000001, 10.0, -1.0, 1e300, float("inf")]
CAPS = [None, None, 0.0, 1.0, 30.0, 600.0, 7200.0, 90.5]


def main() -> None:
    seed, count, out = int(sys.argv[1]), int(sys.argv[2]), open(sys.argv[3], "w")
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-"))
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.sdk import DAG, BaseOperator
    from airflow.sdk.definitions._internal.abstractoperator import MAX_RETRY_DELAY
    from airflow.utils.sqlalchemy import UtcDateTime

    class Task(BaseOperator):
        def execute(self, context: object) -> None:
            pass

    rng = random.Random(seed)
    column = UtcDateTime()
    end_date = datetime.datetime(2026, 12, 7, tzinfo=datetime.timezone.utc)
    for index in range(count):
        retry_delay = rng.choice(DELAYS) if rng.random() < 0.5 else round(rng.uniform(0, 5000), rng.choice([0, 3, 6]))
        multiplier = rng.choice(MULTIPLIERS) if rng.random() < 0.6 else round(rng.uniform(0.1, 4.0), 3)
        cap = rng.choice(CAPS) if rng.random() < 0.7 else round(rng.uniform(1, 100_000), 2)
        try_number = rng.choice(HUGE_TRIES) if rng.random() < 0.05 else rng.randint(0, 40)
        if rng.random() < 0.2:
            logical_micros = None
        else:
            logical_micros = rng.randint(-10**15, 4 * 10**15)
            if rng.random() < 0.5:
                logical_micros -= logical_micros % 1_000_000  # whole seconds, the common case
        dag_id = rng.choice(["etl", "daily_report", "dag.with.dots", "ünïcode", f"dag_{index}"])
        task_id = rng.choice(["load", "extract", "group.task", f"task_{index}"])

        with DAG(dag_id, schedule=None):
            kwargs: dict[str, object] = {
                "retry_delay": datetime.timedelta(seconds=retry_delay),
                "retry_exponential_backoff": multiplier,
            }
            if cap is not None:
                kwargs["max_retry_delay"] = datetime.timedelta(seconds=cap)
            task = Task(task_id=task_id, **kwargs)
        instance = TaskInstance(task=task, dag_version_id=uuid.uuid4(), run_id="run")
        instance.try_number = try_number
        instance.end_date = end_date
        logical_date = None
        if logical_micros is not None:
            naive = datetime.datetime(1970, 1, 1) + datetime.timedelta(microseconds=logical_micros)
            logical_date = column.process_result_value(naive, None)
        instance.dag_run = DagRun(dag_id=dag_id, run_id="run", logical_date=logical_date, run_type="manual")

        case = {
            "dag_id": dag_id,
            "task_id": task_id,
            "logical_date_micros": logical_micros,
            "try_number": try_number,
            "retry_delay": task.retry_delay.total_seconds(),
            "retry_exponential_backoff": number(task.retry_exponential_backoff),
            "max_retry_delay": task.max_retry_delay.total_seconds() if task.max_retry_delay is not None else None,
            "max_task_retry_delay": MAX_RETRY_DELAY,
        }
        try:
            case["delay_seconds"] = (instance.next_retry_datetime() - end_date).total_seconds()
        except Exception as error:  # Airflow's own failure is part of its behaviour
            case["raises"] = f"{type(error).__name__}: {error}"
        out.write(json.dumps(case) + "\n")
    out.close()


def number(value: float) -> float | str:
    """A float as JSON: `inf` and `nan` (which JSON cannot hold) as the strings Python prints."""
    return value if math.isfinite(value) else repr(value)


if __name__ == "__main__":
    main()
