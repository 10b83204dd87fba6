"""``RemotePolicy`` (issue #28, point 1): the same answers as a local policy, through a real
``runretry serve`` on loopback (started by python/tests/e2e.rs), and the documented path when
the service is down, slow or answers an error."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import runretry
from runretry.remote import DECIDED_LOCALLY_TAG

CONFORMANCE = Path(os.environ.get("RUNRETRY_E2E_CONTRACT_SUITE", Path(__file__).parents[3] / "tests/conformance"))
EXAMPLE = CONFORMANCE / "examples/09-dynamic-mapped-failures.json"
URL = os.environ.get("RUNRETRY_E2E_SERVICE_URL", "")
TOKEN = os.environ.get("RUNRETRY_E2E_SERVICE_TOKEN")


def without_first_event(decision: dict) -> dict:
    return {**decision, "events": decision["events"][1:]}


@pytest.fixture
def case() -> dict:
    return json.loads(EXAMPLE.read_text())


def test_the_service_decides_as_the_local_policy_and_names_its_version(case: dict) -> None:
    assert URL, "run by python/tests/e2e.rs, which starts the service"
    remote = runretry.RemotePolicy(URL, token=TOKEN)
    decision = remote.decide(case)
    assert without_first_event(decision) == runretry.Policy.default().decide(case)
    assert decision["events"][0].startswith(f"decided by {URL}, policy sha256 ")
    assert "revision 1" in decision["events"][0]
    assert remote.decide(EXAMPLE.read_text()) == decision  # a JSON string alike
    selection = remote.select_steps(case, "ALL_STEPS")
    assert selection == runretry.Policy.default().select_steps(case, "ALL_STEPS")


def test_one_connection_is_kept_per_thread(case: dict) -> None:
    remote = runretry.RemotePolicy(URL, token=TOKEN)
    remote.decide(case)
    first = remote._local.connection.sock
    for _ in range(5):
        remote.decide(case)
    assert remote._local.connection.sock is first


def test_a_bad_case_is_bad_input_not_unreachable() -> None:
    remote = runretry.RemotePolicy(URL, token=TOKEN)
    with pytest.raises(runretry.BadInput, match="run"):
        remote.decide({"config": {}, "failure": {}})


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def silent_service() -> Iterator[str]:
    """A server that accepts connections and never answers: a service slow past any deadline."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


def test_a_service_that_is_down_decides_locally_by_default(case: dict) -> None:
    remote = runretry.RemotePolicy(f"http://127.0.0.1:{closed_port()}")
    decision = remote.decide(case)
    assert without_first_event(decision)["action"] == runretry.Policy.default().decide(case)["action"]
    assert "did not answer" in decision["events"][0] and "embedded default policy" in decision["events"][0]
    assert decision["failed_run_tags"][DECIDED_LOCALLY_TAG] == "the embedded default policy"


def test_a_service_that_is_down_under_fail_retries_nothing(case: dict) -> None:
    remote = runretry.RemotePolicy(f"http://127.0.0.1:{closed_port()}", on_unreachable="fail")
    decision = remote.decide(case)
    assert decision["action"] == "NONE" and decision["retry"] is False
    assert "did not answer" in decision["reason"]
    assert DECIDED_LOCALLY_TAG in decision["failed_run_tags"]


def test_a_slow_service_meets_the_deadline(case: dict, silent_service: str) -> None:
    remote = runretry.RemotePolicy(silent_service, timeout_ms=300, on_unreachable="fail")
    started = time.monotonic()
    decision = remote.decide(case)
    took = time.monotonic() - started
    assert decision["action"] == "NONE" and "within 300 ms" in decision["events"][0]
    assert took < 30, took  # bounded by the deadline, not by the service


def test_an_error_answer_takes_the_documented_path(case: dict) -> None:
    # Without the token the service answers 401: an answer, but no decision.
    remote = runretry.RemotePolicy(URL)
    decision = remote.decide(case)
    assert "HTTP 401" in decision["events"][0], decision["events"][0]
    assert decision["failed_run_tags"][DECIDED_LOCALLY_TAG] == "the embedded default policy"


TASK = {
    "task": {
        "dag_id": "etl",
        "task_id": "load",
        "run_id": "manual__1",
        "try_number": 1,
        "max_tries": 1,
        "exception": {"class_name": "builtins.ConnectionError", "message": "reset"},
    }
}


def test_the_service_decides_a_task_as_the_local_policy() -> None:
    remote = runretry.RemotePolicy(URL, token=TOKEN)
    decision = remote.decide_task(TASK)
    assert without_first_event(decision) == runretry.Policy.default().decide_task(TASK)
    assert decision["events"][0].startswith(f"decided by {URL}, policy sha256 ")
    with pytest.raises(runretry.BadInput, match=r"task\.try_number"):
        remote.decide_task({"task": {**TASK["task"], "try_number": 0}})


def test_a_task_without_the_service_takes_the_documented_path() -> None:
    down = f"http://127.0.0.1:{closed_port()}"
    local = runretry.RemotePolicy(down).decide_task(TASK)
    assert without_first_event(local) == runretry.Policy.default().decide_task(TASK)
    assert "did not answer" in local["events"][0]
    failed = runretry.RemotePolicy(down, on_unreachable="fail").decide_task(TASK)
    assert failed["action"] == "fail" and "did not answer" in failed["reason"]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="not an http"):
        runretry.RemotePolicy("ftp://example")
    with pytest.raises(ValueError, match="on_unreachable"):
        runretry.RemotePolicy(URL, on_unreachable="maybe")  # type: ignore[arg-type]
