"""The bindings over the host library: the same answers and errors as the command line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import runretry

CONFORMANCE = Path(os.environ.get("RUNRETRY_E2E_CONTRACT_SUITE", Path(__file__).parents[3] / "tests/conformance"))
EXAMPLE = CONFORMANCE / "examples/09-dynamic-mapped-failures.json"
HOSTILE = os.environ.get("RUNRETRY_E2E_HOSTILE_POLICY")
LOOP = os.environ.get("RUNRETRY_E2E_LOOP_POLICY")


def test_decide_takes_a_dict_or_a_json_string_alike() -> None:
    policy = runretry.Policy.default()
    text = EXAMPLE.read_text()
    assert policy.decide(text) == policy.decide(json.loads(text))
    case = json.loads(text)
    assert policy.select_steps(text, case["input"]["strategy"])["steps"] == case["expect"]["steps"]


def test_select_steps_answers_and_refuses() -> None:
    policy = runretry.Policy.default()
    case = json.loads(EXAMPLE.read_text())
    selected = policy.select_steps(case, "ALL_STEPS")
    assert selected["strategy"] == "ALL_STEPS" and "error" not in selected
    refused = policy.select_steps(case, "FROM_ASSET_FAILURE")
    assert refused["error"].startswith("DagsterInvalidSubsetError")


def test_bad_input_names_the_field() -> None:
    case = json.loads(EXAMPLE.read_text())
    case["run"]["steps"][0]["status"] = "DONE"
    with pytest.raises(runretry.BadInput, match=r"run\.steps\[0\]\.status") as caught:
        runretry.Policy.default().decide(case)
    assert caught.value.kind == "bad input"
    with pytest.raises(runretry.BadInput, match="strategy"):
        runretry.Policy.default().select_steps(case, "SOMETIMES")


def test_conformance_of_the_default_policy() -> None:
    report = runretry.conformance(None, "default")
    assert report["failed"] == 0 and report["passed"] > 100, report["failures"][:3]


@pytest.mark.skipif(HOSTILE is None, reason="needs the hostile guests (run from cargo test)")
def test_a_failing_policy_raises_its_kind_or_falls_back() -> None:
    case = EXAMPLE.read_text()
    with pytest.raises(runretry.GuestTrap) as caught:
        runretry.Policy.load(HOSTILE).decide(case)
    assert isinstance(caught.value, runretry.PolicyError) and caught.value.kind == "guest trap"
    given_up = runretry.Policy.load(HOSTILE, on_policy_error="give-up").decide(case)
    assert given_up["action"] == "NONE"
    fallen_back = runretry.Policy.load(HOSTILE, on_policy_error="default").decide(case)
    assert fallen_back == {**runretry.Policy.default().decide(case), "events": fallen_back["events"]}
    assert "decided with the default policy instead" in fallen_back["events"][0]


def test_a_malformed_component_is_an_invalid_component(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"not wasm")
    with pytest.raises(runretry.InvalidComponent, match="bad.wasm"):
        runretry.Policy.load(bad)
    with pytest.raises(runretry.BadInput, match="on_policy_error"):
        runretry.Policy.load(bad, on_policy_error="sometimes")


def test_limits_are_keyword_arguments_and_bite() -> None:
    with pytest.raises(runretry.FuelExhausted):
        runretry.Policy.default(fuel=1000, cache_dir=False).decide(EXAMPLE.read_text())
    with pytest.raises(TypeError, match="unexpected keyword argument 'fule'"):
        runretry.Policy.default(fule=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="fuel"):
        runretry.Policy.default(fuel="plenty")  # type: ignore[arg-type]
    # One set of limits everywhere: conformance takes every one of them too.
    report = runretry.conformance(suite="contract", max_output_bytes=1 << 20, cache_dir=False)
    assert report["failed"] == 0, report


@pytest.mark.skipif(LOOP is None, reason="needs the hostile guests (run from cargo test)")
def test_the_gil_is_released_while_deciding() -> None:
    # A policy that loops until its deadline: while it runs, another Python thread must run.
    policy = runretry.Policy.load(LOOP, deadline_ms=2000, on_policy_error="give-up")
    ticks = 0
    entered = threading.Event()

    def decide() -> None:
        entered.set()
        assert policy.decide(EXAMPLE.read_text())["action"] == "NONE"

    worker = threading.Thread(target=decide)
    worker.start()
    entered.wait()
    while worker.is_alive():
        ticks += 1
        threading.Event().wait(0.02)  # with the GIL held by the decision, this could not return
    worker.join()
    assert ticks >= 10, ticks  # ~100 when the GIL is released, at most 2 when it is held


def test_the_librarys_warnings_reach_python_logging(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A cache directory that is a file is refused with a warning, and the policy still works.
    not_a_directory = tmp_path / "cache"
    not_a_directory.write_text("a file, not a directory")
    with caplog.at_level(logging.WARNING, logger="runretry"):
        policy = runretry.Policy.default(cache_dir=str(not_a_directory))
    warnings = [r for r in caplog.records if r.name.startswith("runretry.") and r.levelno == logging.WARNING]
    assert warnings, caplog.records
    assert str(not_a_directory) in warnings[0].getMessage(), warnings[0].getMessage()
    assert policy.decide(json.loads(EXAMPLE.read_text()))["action"]


OTHER_WORLD = os.environ.get("RUNRETRY_E2E_OTHER_WORLD_POLICY")


def _broken_policy(broken: str, tmp_path: Path) -> Path:
    """A policy file that cannot be loaded, in one of the ways a deployment breaks."""
    if broken == "missing":
        return tmp_path / "missing.wasm"
    if broken == "unreadable":
        return tmp_path  # a directory: there, but not a file anyone can read as one
    if broken == "not a component":
        path = tmp_path / "garbage.wasm"
        path.write_bytes(b"this is not a wasm component")
        return path
    if OTHER_WORLD is None:
        pytest.skip("needs the test guests (run from cargo test)")
    return Path(OTHER_WORLD)


BROKEN = ["missing", "unreadable", "not a component", "wrong world"]


# Regression (#31, finding 5): a missing policy file raised BadInput whatever on_policy_error said.
@pytest.mark.parametrize("broken", BROKEN)
def test_a_policy_that_does_not_load_raises_under_fail_naming_the_file(broken: str, tmp_path: Path) -> None:
    path = _broken_policy(broken, tmp_path)
    with pytest.raises(runretry.RunretryError) as caught:
        runretry.Policy.load(path, on_policy_error="fail")
    assert str(path) in str(caught.value), caught.value
    # What cannot be read is bad input, as on the command line; what is read but is no policy
    # is an invalid component.
    expected = runretry.BadInput if broken in ("missing", "unreadable") else runretry.InvalidComponent
    assert type(caught.value) is expected, caught.value


@pytest.mark.parametrize("broken", BROKEN)
def test_a_policy_that_does_not_load_gives_up_under_give_up(
    broken: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _broken_policy(broken, tmp_path)
    with caplog.at_level(logging.WARNING, logger="runretry"):
        policy = runretry.Policy.load(path, on_policy_error="give-up")
    _assert_warned(caplog, path, "no run is retried")
    assert isinstance(policy.load_error, runretry.PolicyError) and str(path) in str(policy.load_error)
    decision = policy.decide(EXAMPLE.read_text())
    assert decision["action"] == "NONE" and not decision["retry"], decision
    assert decision["events"][0].startswith(f"policy {path} failed ("), decision["events"]


@pytest.mark.parametrize("broken", BROKEN)
def test_a_policy_that_does_not_load_falls_back_under_default(
    broken: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _broken_policy(broken, tmp_path)
    with caplog.at_level(logging.WARNING, logger="runretry"):
        policy = runretry.Policy.load(path, on_policy_error="default")
    _assert_warned(caplog, path, "the embedded default policy decides")
    assert isinstance(policy.load_error, runretry.PolicyError) and str(path) in str(policy.load_error)
    case = EXAMPLE.read_text()
    decision = policy.decide(case)
    assert decision == {**runretry.Policy.default().decide(case), "events": decision["events"]}
    note = decision["events"][0]
    assert note.startswith(f"policy {path} failed (") and "decided with the default policy instead" in note, note
    # select_steps does not fall back (as for a policy that fails while answering): it raises.
    with pytest.raises(runretry.RunretryError, match=str(path)):
        policy.select_steps(case, "ALL_STEPS")


def test_a_policy_that_loads_has_no_load_error() -> None:
    assert runretry.Policy.default().load_error is None


def test_a_relative_policy_path_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(runretry.BadInput) as caught:
        runretry.Policy.load("missing.wasm")
    assert f"relative to the working directory, {tmp_path}" in str(caught.value), caught.value
    (tmp_path / "here.wasm").write_bytes(b"garbage")
    # Found from the working directory: refused for what it holds, not for being missing.
    with pytest.raises(runretry.InvalidComponent, match="here.wasm"):
        runretry.Policy.load("here.wasm")


def _assert_warned(caplog: pytest.LogCaptureFixture, path: Path, consequence: str) -> None:
    """A warning on the `runretry` logger names the file, the error and what follows from it."""
    warnings = [r.getMessage() for r in caplog.records
                if r.name.startswith("runretry") and r.levelno == logging.WARNING]
    assert any(str(path) in w and "does not load" in w and consequence in w for w in warnings), warnings


# Issue #30 (what a new user met): without Dagster, `import runretry.dagster` failed with a bare
# ModuleNotFoundError naming `dagster` and no way forward.
def test_runretry_dagster_without_dagster_says_how_to_install_it() -> None:
    code = (
        "import sys\n"
        "sys.modules['dagster'] = None  # as if it were not installed\n"
        "try:\n"
        "    import runretry.dagster\n"
        "except ModuleNotFoundError as missing:\n"
        "    print(missing.name, missing)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("dagster ") and "pip install 'runretry[dagster]'" in out, out


SIGNED = os.environ.get("RUNRETRY_E2E_SIGNED_POLICY")
TRUSTED_KEY = os.environ.get("RUNRETRY_E2E_TRUSTED_KEY")
OTHER_KEY = os.environ.get("RUNRETRY_E2E_OTHER_KEY")


def test_trusted_keys_load_only_a_policy_signed_by_one_of_them(tmp_path: Path) -> None:
    """Issue #28 (signed policies): ``trusted_keys=`` on the loaders, as ``--trusted-key``."""
    assert SIGNED and TRUSTED_KEY and OTHER_KEY, "run by python/tests/e2e.rs, which signs the policy"
    signed = runretry.Policy.load(SIGNED, trusted_keys=[TRUSTED_KEY])
    assert signed.decide(EXAMPLE.read_text())["action"] in ("LAUNCH_NEW", "NONE")
    # Several keys (rotation), or one path alone.
    runretry.Policy.load(SIGNED, trusted_keys=[OTHER_KEY, TRUSTED_KEY])
    runretry.Policy.load(SIGNED, trusted_keys=TRUSTED_KEY)
    with pytest.raises(runretry.InvalidComponent, match="which is not trusted"):
        runretry.Policy.load(SIGNED, trusted_keys=[OTHER_KEY])
    unsigned = tmp_path / "unsigned.wasm"
    unsigned.write_bytes(Path(SIGNED).read_bytes())
    with pytest.raises(runretry.InvalidComponent, match="is not signed"):
        runretry.Policy.load(unsigned, trusted_keys=[TRUSTED_KEY])
    # Under "default" the deployment keeps deciding, with the default policy, saying why.
    fallback = runretry.Policy.load(unsigned, on_policy_error="default", trusted_keys=[TRUSTED_KEY])
    assert "is not signed" in str(fallback.load_error)
    assert "is not signed" in fallback.decide(EXAMPLE.read_text())["events"][0]
    # The embedded default policy needs no signature; a key file that is not one is bad input.
    runretry.Policy.default(trusted_keys=[TRUSTED_KEY])
    with pytest.raises(runretry.BadInput, match="key in PEM"):
        runretry.Policy.default(trusted_keys=[SIGNED])
    assert runretry.conformance(SIGNED, "contract", trusted_keys=[TRUSTED_KEY])["failed"] == 0
    with pytest.raises(runretry.InvalidComponent, match="is not signed"):
        runretry.conformance(str(unsigned), "contract", trusted_keys=[TRUSTED_KEY])


TASK = {
    "task": {
        "orchestrator": "airflow 3.3.2",
        "dag_id": "etl",
        "task_id": "load",
        "run_id": "scheduled__2026-12-07T10:00:00+00:00",
        "try_number": 1,
        "max_tries": 2,
        "settings": {"retries": 2, "retry_delay_seconds": 90},
        "exception": {"class_name": "builtins.ConnectionError", "bases": ["builtins.OSError"], "message": "reset"},
    }
}


def test_decide_task_takes_a_dict_or_a_json_string_alike() -> None:
    policy = runretry.Policy.default()
    assert policy.decides == (True, True)
    decision = policy.decide_task(TASK)
    assert decision == policy.decide_task(json.dumps(TASK))
    assert (decision["action"], decision["delay_seconds"]) == ("retry", 90.0)
    last = {"task": {**TASK["task"], "try_number": 3}}
    assert policy.decide_task(last)["action"] == "fail"


def test_a_bad_task_case_names_the_field() -> None:
    bad = {"task": {**TASK["task"], "run_type": "sometimes"}}
    with pytest.raises(runretry.BadInput, match=r"task\.run_type"):
        runretry.Policy.default().decide_task(bad)


BACKOFF = os.environ.get("RUNRETRY_E2E_BACKOFF_POLICY")


@pytest.mark.skipif(BACKOFF is None, reason="needs the example policies (run from cargo test)")
def test_a_run_only_policy_refuses_a_task_or_falls_back() -> None:
    policy = runretry.Policy.load(BACKOFF)
    assert policy.decides == (True, False)
    with pytest.raises(runretry.InvalidComponent, match="does not export runretry:policy/task-policy"):
        policy.decide_task(TASK)
    fallen_back = runretry.Policy.load(BACKOFF, on_policy_error="default").decide_task(TASK)
    assert fallen_back["action"] == "retry" and "decided with the default policy instead" in fallen_back["events"][0]


def test_runretry_airflow_without_airflow_says_how_to_install_it() -> None:
    code = (
        "import sys\n"
        "sys.modules['airflow'] = None  # as if it were not installed\n"
        "try:\n"
        "    import runretry.airflow\n"
        "except ModuleNotFoundError as missing:\n"
        "    print(missing.name, missing)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("airflow ") and "pip install 'runretry[airflow]'" in out, out
