"""runretry.airflow.RetryPolicy against real Airflow (3.3.2): every DAG here is run by
``dag.test()`` (real retries, waited out), then its task instances and their tries are read from
the metadata database and checked. Run as a script (Airflow refuses a DAG ``dag.test()`` did not
load from a file) by python/tests/airflow.rs, with ``AIRFLOW_HOME`` migrated and:

- ``RUNRETRY_E2E_PERMANENT_POLICY``: the permanent-errors example (it exports the task interface);
- ``RUNRETRY_E2E_TASK_RULES``: the ``task_rules`` test guest (retry in 7 s; ``trap`` panics).

Checks, one per scenario pair or scenario (``check_*``):
1. the default policy in enforce mode gives the tries and states Airflow gives without a policy,
   and each retry's delay is the one Airflow computes for that try (plain; exponential with a
   cap; a mapped task; a manual run without a logical date);
2. a permanent error fails at try 1, runretry's reason in the log (Airflow stores no reason for
   a failure, only for a retry);
3. a transient error is retried after the policy's delay, its reason stored as ``retry_reason``;
4. shadow mode changes nothing and logs agreement (the default policy) or disagreement;
5. a policy that traps falls back to the default policy (Airflow's own delay) and says so;
6. signed policies: with ``trusted_keys``, a policy signed by a trusted key decides, one signed
   by no trusted key does not load (``on_policy_error="default"``: Airflow's own retries, with a
   warning; ``"fail"``: ``evaluate`` raises, which Airflow turns into its standard retries), and
   each enforce log line names the deciding policy's sha256;
7. ``build_task_case`` bounds what it takes from a hostile exception (a huge message, a deep
   cause chain with a cycle, many bases, a ``str()`` that raises), and the case still decides.

Prints one JSON report line and exits 1 if any check failed.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from airflow.sdk import DAG, task

from runretry import Policy
from runretry.airflow import RetryPolicy
from runretry.airflow.case import MAX_BASES, MAX_CAUSES, MAX_MESSAGE_BYTES, build_task_case

PERMANENT = os.environ.get("RUNRETRY_E2E_PERMANENT_POLICY", "")
TASK_RULES = os.environ.get("RUNRETRY_E2E_TASK_RULES", "")
SIGNED = Path(os.environ.get("RUNRETRY_E2E_SIGNED_DIR", "."))
LOGICAL_DATE = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)


class Transient(ConnectionError):
    """What a flaky service raises."""


def failing_dag(dag_id: str, *, policy: RetryPolicy | None, retries: int, exc: type = Transient,
                message: str = "upstream reset", mapped: bool = False, **settings: object) -> DAG:
    """A DAG of one task that always raises ``exc(message)``."""
    with DAG(dag_id, schedule=None, catchup=False) as dag:
        kwargs = dict(retries=retries, retry_delay=timedelta(seconds=1), **settings)
        if policy is not None:
            kwargs["retry_policy"] = policy

        @task(**kwargs)
        def flaky(item: int = 0) -> None:
            raise exc(message)

        if mapped:
            flaky.expand(item=[1, 2])
        else:
            flaky()
    return dag


BACKOFF = dict(retry_exponential_backoff=2.0, max_retry_delay=timedelta(seconds=3))

# (name, logical date, DAG without a policy, DAG with the default policy enforcing)
PAIRS = [
    ("plain", LOGICAL_DATE, failing_dag("rr_plain_none", policy=None, retries=2),
     failing_dag("rr_plain_default", policy=RetryPolicy(), retries=2)),
    ("exponential with a cap", LOGICAL_DATE, failing_dag("rr_exp_none", policy=None, retries=3, **BACKOFF),
     failing_dag("rr_exp_default", policy=RetryPolicy(), retries=3, **BACKOFF)),
    ("mapped", LOGICAL_DATE, failing_dag("rr_mapped_none", policy=None, retries=1, mapped=True),
     failing_dag("rr_mapped_default", policy=RetryPolicy(), retries=1, mapped=True)),
    ("manual, no logical date", None, failing_dag("rr_nodate_none", policy=None, retries=2, **BACKOFF),
     failing_dag("rr_nodate_default", policy=RetryPolicy(), retries=2, **BACKOFF)),
]

permanent_dag = failing_dag("rr_permanent", policy=RetryPolicy(PERMANENT), retries=3, exc=ModuleNotFoundError,
                            message="No module named 'pandas'")
transient_dag = failing_dag("rr_transient", policy=RetryPolicy(TASK_RULES), retries=1)
shadow_agree_dag = failing_dag("rr_shadow_agree", policy=RetryPolicy(mode="shadow"), retries=1)
shadow_disagree_dag = failing_dag("rr_shadow_disagree", policy=RetryPolicy(PERMANENT, mode="shadow"), retries=1,
                                  exc=ModuleNotFoundError, message="No module named 'pandas'")
trap_dag = failing_dag("rr_trap", policy=RetryPolicy(TASK_RULES, on_policy_error="default"), retries=1,
                       message="trap")


class Recorded(logging.Handler):
    """The runretry.airflow log, kept for the checks."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def run(dag: DAG, logical_date: datetime | None) -> list[dict]:
    """Run ``dag`` with real retries; its task instances with their earlier tries (the history
    Airflow archives when a try is retried), from the database."""
    dag.test(logical_date=logical_date)
    return task_instances(dag.dag_id)


def task_instances(dag_id: str) -> list[dict]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from airflow import settings
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.models.taskinstancehistory import TaskInstanceHistory as TIH

    found = []
    with Session(settings.engine) as session:
        for ti in session.scalars(select(TI).where(TI.dag_id == dag_id).order_by(TI.map_index)):
            tries = session.scalars(
                select(TIH).where(TIH.dag_id == dag_id, TIH.task_id == ti.task_id, TIH.run_id == ti.run_id,
                                  TIH.map_index == ti.map_index).order_by(TIH.try_number)
            ).all()
            found.append({
                "map_index": ti.map_index,
                "state": str(ti.state),
                "try_number": ti.try_number,
                "tries": [
                    {"try_number": t.try_number, "state": str(t.state), "retry_reason": t.retry_reason,
                     "retry_delay_override": t.retry_delay_override,
                     "airflow_delay": airflows_delay(dag_id, t)}
                    for t in tries
                ],
            })
    return found


def airflows_delay(dag_id: str, tried: object) -> float | None:
    """What Airflow's own ``next_retry_datetime`` waits after this earlier try (every try in the
    history was retried), the policy's override set aside: the delay a run without a policy
    gets."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance

    dag = DAGS[dag_id]
    instance = TaskInstance(task=dag.get_task(tried.task_id), dag_version_id=tried.dag_version_id, run_id=tried.run_id,
                            map_index=tried.map_index)
    instance.try_number = tried.try_number
    instance.end_date = tried.end_date
    instance.retry_delay_override = None
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from airflow import settings

    with Session(settings.engine) as session:
        instance.dag_run = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id,
                                                                DagRun.run_id == tried.run_id)).one()
        session.expunge(instance.dag_run)
    return (instance.next_retry_datetime() - tried.end_date).total_seconds()


def shape(instances: list[dict]) -> list[tuple]:
    """What must not change with the default policy: each instance's state and tries."""
    return [(i["map_index"], i["state"], i["try_number"], [t["state"] for t in i["tries"]]) for i in instances]


def main() -> int:
    log = Recorded()
    logging.getLogger("runretry").addHandler(log)
    logging.getLogger("runretry").setLevel(logging.INFO)
    failures: list[str] = []
    report: dict[str, object] = {}

    def check(name: str, ok: bool, detail: object) -> None:
        report[name] = "ok" if ok else detail
        if not ok:
            failures.append(f"{name}: {detail}")

    started = time.monotonic()
    for name, logical_date, without, with_default in PAIRS:
        plain, enforced = run(without, logical_date), run(with_default, logical_date)
        check(f"{name}: tries and states", shape(plain) == shape(enforced) and len(plain) > 0,
              {"without a policy": shape(plain), "default policy": shape(enforced)})
        delays = [(t["retry_delay_override"], t["airflow_delay"]) for i in enforced for t in i["tries"]]
        check(f"{name}: delays", len(delays) > 0 and all(ours == airflows for ours, airflows in delays), delays)

    permanent = run(permanent_dag, LOGICAL_DATE)
    check("permanent error fails at try 1",
          [(i["state"], i["try_number"], len(i["tries"])) for i in permanent] == [("failed", 1, 0)], permanent)
    check("permanent error: runretry's reason logged",
          any("a missing module (ModuleNotFoundError)" in line for line in log.lines), log.lines[-5:])

    transient = run(transient_dag, LOGICAL_DATE)
    first = transient[0]["tries"][0] if transient and transient[0]["tries"] else {}
    check("transient error retried after the policy's delay",
          first.get("retry_delay_override") == 7.0 and first.get("retry_reason") == "try 1 of flaky: retry in 7 s"
          and transient[0]["try_number"] == 2 and transient[0]["state"] == "failed", transient)

    lines_before = len(log.lines)
    agree = run(shadow_agree_dag, LOGICAL_DATE)
    check("shadow mode changes nothing",
          agree[0]["try_number"] == 2 and agree[0]["tries"][0]["retry_delay_override"] is None, agree)
    check("shadow mode logs agreement",
          any("runretry shadow" in line and "(agrees)" in line for line in log.lines[lines_before:]),
          log.lines[lines_before:])
    lines_before = len(log.lines)
    disagree = run(shadow_disagree_dag, LOGICAL_DATE)
    check("shadow mode: a disagreeing policy changes nothing", disagree[0]["try_number"] == 2, disagree)
    check("shadow mode logs disagreement",
          any("(DISAGREES)" in line for line in log.lines[lines_before:]), log.lines[lines_before:])

    lines_before = len(log.lines)
    trapped = run(trap_dag, LOGICAL_DATE)
    tried = trapped[0]["tries"][0] if trapped and trapped[0]["tries"] else {}
    check("a trapping policy falls back to Airflow's own delay",
          tried.get("retry_delay_override") is not None
          and tried.get("retry_delay_override") == tried.get("airflow_delay"), trapped)
    check("a trapping policy's fallback is logged",
          any("decided with the default policy instead" in line for line in log.lines[lines_before:]),
          log.lines[lines_before:])

    check_signed_policies(check, log)
    check_hostile_exception(check)

    report["seconds"] = round(time.monotonic() - started, 1)
    print("RUNRETRY-AIRFLOW-E2E " + json.dumps({"failures": failures, "report": report}, default=str))
    return 1 if failures else 0


def check_signed_policies(check: Callable[[str, bool, object], None], log: "Recorded") -> None:
    policy = str(SIGNED / "permanent.wasm")
    sha256 = hashlib.sha256((SIGNED / "permanent.wasm").read_bytes()).hexdigest()
    missing_module = ModuleNotFoundError("No module named 'pandas'")
    lines_before = len(log.lines)
    trusted = RetryPolicy(policy=policy, trusted_keys=[str(SIGNED / "trusted.pub")])
    decision = trusted.evaluate(missing_module, 1, 3)
    check("a policy signed by a trusted key decides", decision.action.name == "FAIL", decision)
    check("the enforce log names the deciding policy's sha256",
          any(f"policy sha256 {sha256}" in line for line in log.lines[lines_before:]), log.lines[lines_before:])

    lines_before = len(log.lines)
    untrusted = RetryPolicy(policy=policy, trusted_keys=[str(SIGNED / "other.pub")])
    decision = untrusted.evaluate(missing_module, 1, 3)
    check("a policy signed by no trusted key does not decide: Airflow's retries",
          decision.action.name == "RETRY" and decision.retry_delay is not None, decision)
    check("an untrusted policy is named in a warning",
          any("permanent.wasm" in line and "sign" in line for line in log.lines[lines_before:]),
          log.lines[lines_before:])
    refused = RetryPolicy(policy=policy, on_policy_error="fail", trusted_keys=[str(SIGNED / "other.pub")])
    try:
        refused.evaluate(missing_module, 1, 3)
        raised = "nothing"
    except Exception as error:  # noqa: BLE001 (Airflow catches any exception a policy raises)
        raised = f"{type(error).__name__}: {error}"
    check("under on_policy_error='fail' an untrusted policy raises, naming the signature",
          "sign" in raised and "permanent.wasm" in raised, raised)


def hostile_exception() -> BaseException:
    """An exception a task could raise to hurt the case builder: a 1 MiB message, 33 bases (the
    first made outside any module: it has no ``__module__``), a cause chain of 20 links that
    loops back, and an unprintable cause."""
    orphan: dict[str, type] = {}
    exec('Orphan = type("Orphan", (ValueError,), {})', orphan)  # noqa: S102 (no globals on purpose)
    bases: tuple[type, ...] = (orphan["Orphan"],)
    for i in range(30):
        bases = (type(f"Base{i}", bases, {}),)
    deep = bases[0]("x" * (1 << 20))

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    chain: BaseException = Unprintable()
    first = chain
    for i in range(20):
        following = RuntimeError(f"link {i}")
        following.__cause__ = chain
        chain = following
    first.__cause__ = chain  # a cycle: the builder must stop
    deep.__cause__ = first
    return deep


def check_hostile_exception(check: Callable[[str, bool, object], None]) -> None:
    case = build_task_case(hostile_exception(), 1, 2, None, history_runs=0)
    task = case["task"]
    sizes = {
        "message bytes": len(task["exception"]["message"].encode()),
        "bases": len(task["exception"]["bases"]),
        "causes": len(task["causes"]),
    }
    check("a hostile exception is bounded",
          sizes["message bytes"] <= MAX_MESSAGE_BYTES + 3 and sizes["bases"] == MAX_BASES
          and sizes["causes"] == MAX_CAUSES, sizes)
    check("an unprintable exception is named, not raised",
          task["causes"][0]["message"] == "<str() raised RuntimeError>", task["causes"][:1])
    decision = Policy.default().decide_task(case)
    check("the bounded case decides", decision["action"] == "retry", decision)
    check("a class outside any module is named", "<unknown>.Orphan" in task["exception"]["bases"],
          task["exception"]["bases"][-3:])


DAGS = {dag.dag_id: dag for pair in PAIRS for dag in pair[2:]}
DAGS.update({d.dag_id: d for d in [permanent_dag, transient_dag, shadow_agree_dag, shadow_disagree_dag, trap_dag]})

if __name__ == "__main__":
    sys.exit(main())
