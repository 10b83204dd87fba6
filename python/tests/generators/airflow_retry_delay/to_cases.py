"""Task conformance cases of the default suite from Airflow's own retry delays.

Usage: python to_cases.py KEPT.jsonl OUT.json. Reads the kept cases gen.py wrote from Airflow
3.3.2 (tests/airflow/retry-delay.jsonl) and writes each as a task case (`kind: decide_task`)
whose expected answer is Airflow's: retry after exactly its delay while retries remain, or
`default` where Airflow itself raises. Settings the contract refuses as input (a negative,
infinite or NaN multiplier; try 0) are left out: no task case can carry them. Then a few cases
of the other rules: exceptions Airflow never retries, the last try.
"""

from __future__ import annotations

import datetime
import json
import math
import sys


def python_str_utc(micros: int) -> str:
    """What Airflow hashes: ``str()`` of the UTC datetime."""
    moment = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(microseconds=micros)
    return str(moment)


def number(value: object) -> float:
    return float(value) if not isinstance(value, str) else float(value)


def main() -> None:
    kept, out = sys.argv[1], sys.argv[2]
    cases = []
    for index, line in enumerate(open(kept)):
        row = json.loads(line)
        backoff = number(row["retry_exponential_backoff"])
        delay = number(row["retry_delay"])
        if row["try_number"] < 1 or not math.isfinite(backoff) or backoff < 0 or not math.isfinite(delay):
            continue
        settings = {
            "retries": row["try_number"],
            "retry_delay_seconds": delay,
            "retry_exponential_backoff": backoff,
            "max_task_retry_delay_seconds": row["max_task_retry_delay"],
        }
        if row["max_retry_delay"] is not None:
            settings["max_retry_delay_seconds"] = row["max_retry_delay"]
        micros = row["logical_date_micros"]
        if "raises" in row:
            expect = {"action": "default", "delay_seconds": None}
        else:
            expect = {"action": "retry", "delay_seconds": number(row["delay_seconds"])}
        cases.append({
            "name": f"airflow_delay_{index:03}",
            "section": "case-format §5: Airflow 3.3.2's next_retry_datetime, kept case "
                       f"{index} of tests/airflow/retry-delay.jsonl",
            "kind": "decide_task",
            "task": {
                "dag_id": row["dag_id"], "task_id": row["task_id"], "run_id": "manual__kept",
                "try_number": row["try_number"], "max_tries": row["try_number"], "settings": settings,
                "logical_date": None if micros is None else python_str_utc(micros),
                "exception": {"class_name": "builtins.ConnectionError", "bases": ["builtins.OSError"],
                              "message": "reset"},
            },
            "expect": expect,
        })
    rules = [
        ("the_last_try_fails", "builtins.ConnectionError", [], 3, 2, {"action": "fail", "delay_seconds": None}),
        ("no_retries_fail_at_once", "builtins.ConnectionError", [], 1, 0, {"action": "fail"}),
        ("airflow_fail_exception_fails", "airflow.sdk.exceptions.AirflowFailException",
         ["airflow.sdk.exceptions.AirflowException"], 1, 3, {"action": "fail", "reason_contains": "AirflowFailException"}),
        ("a_subclass_of_airflow_fail_exception_fails", "dags.etl.Gone",
         ["airflow.sdk.exceptions.AirflowFailException", "airflow.sdk.exceptions.AirflowException"], 1, 3,
         {"action": "fail"}),
        ("a_sensor_timeout_fails", "airflow.sdk.exceptions.AirflowSensorTimeout",
         ["airflow.sdk.exceptions.AirflowException"], 1, 3, {"action": "fail"}),
        ("a_terminated_task_fails", "airflow.sdk.exceptions.AirflowTaskTerminated", [], 1, 3, {"action": "fail"}),
        ("a_timeout_is_retried", "airflow.sdk.exceptions.AirflowTaskTimeout",
         ["airflow.sdk.exceptions.AirflowException"], 1, 3, {"action": "retry", "delay_seconds": 300.0}),
    ]
    for name, cls, bases, try_number, max_tries, expect in rules:
        cases.append({
            "name": name,
            "section": "case-format §5: the default task policy, Airflow 3.3.2's task_runner rules",
            "kind": "decide_task",
            "task": {
                "dag_id": "etl", "task_id": "load", "run_id": "manual__rules", "try_number": try_number,
                "max_tries": max_tries, "exception": {"class_name": cls, "bases": bases, "message": "x"},
            },
            "expect": expect,
        })
    with open(out, "w") as f:
        json.dump(cases, f, indent=1)
        f.write("\n")
    print(f"{len(cases)} task cases")


if __name__ == "__main__":
    main()
