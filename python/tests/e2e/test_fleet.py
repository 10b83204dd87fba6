"""The sensor deciding through a real ``runretry serve`` (the fleet's one policy service), against
a live Dagster daemon in enforce mode (#28):

1. the service's policy decides: the retry is launched and the failed run records the service's
   active version (``runretry/policy_sha256``);
2. a policy uploaded to the service (hot swap) decides the next failure, with no change to the
   code location: the backoff policy's delay, and its sha256;
3. with the service stopped mid-run, the documented path (``on_unreachable="default"``): the
   embedded default policy decides in the sensor, the run says so
   (``runretry/decided_locally``, an engine event), and the retry still happens.

The service is the ``runretry`` binary the driver names (RUNRETRY_E2E_RUNRETRY_BIN), started and
stopped here, on loopback, behind a token.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import runretry
from conftest import Deployment, engine_messages

TOKEN = "fleet-e2e-token"


class Service:
    """``runretry serve`` on a free loopback port, uploads allowed, behind ``TOKEN``."""

    def __init__(self, log: Path) -> None:
        self.log = log
        env = {**os.environ, "RUNRETRY_TOKEN": TOKEN, "RUNRETRY_CACHE": "off"}
        self.process = subprocess.Popen(
            [os.environ["RUNRETRY_E2E_RUNRETRY_BIN"], "serve", "--listen", "127.0.0.1:0", "--allow-uploads"],
            stdout=subprocess.PIPE, stderr=log.open("w"), env=env, text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # "listening on http://127.0.0.1:PORT"
        assert line.startswith("listening on "), f"runretry serve did not start: {line!r}; {log.read_text()}"
        self.url = line.split()[-1]

    def request(self, method: str, path: str, body: bytes | None = None) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.url}{path}", data=body, method=method,
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    started = Service(tmp_path / "serve.log")
    try:
        yield started
    finally:
        started.stop()


def judged(d: Deployment, run_id: str) -> dict[str, str]:
    """The failed run's tags once the sensor has decided on it."""
    return d.wait(f"the sensor to decide on {run_id}",
                  lambda: (tags := dict(d.run(run_id).tags)).get("runretry/state") and tags)


def test_the_sensor_decides_through_the_service_follows_a_hot_swap_and_survives_its_loss(
    deployment_factory: Any, service: Service
) -> None:
    default_sha256 = runretry.Policy.default().sha256
    described = service.request("GET", "/v1/policy")
    assert described["active"]["sha256"] == default_sha256, described
    d = deployment_factory("enforce", retries_enabled=False, policy=service.url, token=TOKEN,
                           on_policy_error="fail")

    # 1. The service decides.
    first = d.launch("op_raises")
    tags = judged(d, first)
    assert tags["runretry/state"] in ("launched", "pending"), tags
    assert tags["runretry/policy_sha256"] == default_sha256, tags
    assert "runretry/decided_locally" not in tags, tags
    assert any(f"decided by {service.url}" in m for m in engine_messages(d, first)), engine_messages(d, first)
    d.wait("the first retry to be created", lambda: d.run(first).tags.get("dagster/auto_retry_run_id"))

    # 2. A new version uploaded to the service decides the next failure; the code location is
    # the same process, untouched.
    backoff = Path(os.environ["RUNRETRY_E2E_BACKOFF_POLICY"]).read_bytes()
    backoff_sha256 = hashlib.sha256(backoff).hexdigest()
    swapped = service.request("PUT", "/v1/policy?name=backoff.wasm", backoff)  # checked, then active
    assert swapped["active"]["sha256"] == backoff_sha256, swapped
    second = d.launch("op_raises", tags={"runretry/backoff_base_seconds": "600"})
    tags = judged(d, second)
    assert tags["runretry/policy_sha256"] == backoff_sha256, tags
    decision = json.loads(tags[".runretry/decision"])
    assert tags["runretry/state"] == "pending" and decision["delay_seconds"] >= 540, (tags, decision)

    # 3. The service stops mid-run: the sensor decides with the embedded default policy.
    service.stop()
    third = d.launch("op_raises")
    tags = judged(d, third)
    assert tags["runretry/policy_sha256"] == default_sha256, tags
    assert tags.get("runretry/decided_locally") == "the embedded default policy", tags
    assert any("did not answer" in m for m in engine_messages(d, third)), engine_messages(d, third)
    d.wait("the locally decided retry to be created", lambda: d.run(third).tags.get("dagster/auto_retry_run_id"))
