"""Decisions from a ``runretry serve`` service: one policy, changed in one place, for a fleet.

``RemotePolicy`` has ``Policy``'s ``decide`` and ``select_steps`` and goes wherever a policy
goes (the Dagster sensor, your own code). It keeps one connection per thread open (HTTP/1.1
keep-alive), gives each call a deadline, and says what happens when the service cannot answer
(docs/deployment.md, "Deciding through the service"):

- ``on_unreachable="default"`` (the default): the embedded default policy decides here, which
  is Dagster's own behaviour. The decision's first event names the service and why it did not
  answer, and ``failed_run_tags`` carries ``runretry/decided_locally``. A retry layer that is
  down should cost the fleet its custom rules, not its retries, and Airflow makes the same
  choice: a retry policy that fails falls back to the standard retries.
- ``on_unreachable="fail"``: no retry (``action: NONE``), with the same event. This is
  Kubernetes admission's fail-closed default, for a fleet where a retry the policy did not
  approve is worse than none.

"Cannot answer" means the service is down or slow past the deadline, or it answered anything
but 200 or 400. A 400 is this case's fault, so it raises ``BadInput``, as the local policy
would. Every answer says which version decided: ``policy_sha256`` is the service's active
version's (its first event names its ``revision`` too), or, decided here, the embedded default
policy's; ``None`` when nothing decided (``on_unreachable="fail"``).
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import urllib.parse
from typing import Any, Callable, Literal, NamedTuple

from runretry._runretry import BadInput, Policy

OnUnreachable = Literal["default", "fail"]

_log = logging.getLogger("runretry.remote")

#: The tag a decision made here, without the service, carries on the failed run.
DECIDED_LOCALLY_TAG = "runretry/decided_locally"


class RemotePolicy:
    """A retry policy decided by ``runretry serve`` at ``url`` (``http://host:port``)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout_ms: int = 5_000,
        on_unreachable: OnUnreachable = "default",
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"RemotePolicy: url: {url!r} is not an http:// or https:// address")
        if on_unreachable not in ("default", "fail"):
            raise ValueError(f"RemotePolicy: on_unreachable: {on_unreachable!r} is not \"default\" or \"fail\"")
        if timeout_ms <= 0:
            raise ValueError(f"RemotePolicy: timeout_ms: {timeout_ms} must be at least 1")
        self.url = url.rstrip("/")
        self.on_unreachable: OnUnreachable = on_unreachable
        self.timeout_ms = timeout_ms
        self._parsed = parsed
        self._base_path = parsed.path.rstrip("/")
        self._headers = {"Content-Type": "application/json"}
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token}"
        self._local = threading.local()
        self._default: Policy | None = None
        self._default_lock = threading.Lock()

    @property
    def name(self) -> str:
        """The service's address (as ``Policy.name`` is the file's path)."""
        return self.url

    def decide(self, case: Any) -> dict[str, Any]:
        """The complete decision, as the service's active version makes it."""
        return self._decide("/v1/decide", case, _RUN)

    def decide_task(self, case: Any) -> dict[str, Any]:
        """A task's decision (``Policy.decide_task``), as the service's active version makes it.
        When the service cannot answer: ``"default"`` decides here as Airflow would,
        ``"fail"`` fails the task; the first event says so either way."""
        return self._decide("/v1/decide-task", case, _TASK)

    def _decide(self, path: str, case: Any, kind: "_Kind") -> dict[str, Any]:
        """The service's decision of ``kind``, its first event naming the version that made
        it; without the service, ``on_unreachable`` decides."""
        body = case if isinstance(case, str) else json.dumps(case)
        try:
            answer = self._post(path, body)
        except _Unanswered as why:
            return self._without_service(case, str(why), kind)
        decision: dict[str, Any] = answer["decision"]
        version = answer.get("policy") or {}
        decision.setdefault("events", []).insert(
            0, f"decided by {self.url}, policy sha256 {version.get('sha256')} revision {version.get('revision')}"
        )
        decision["policy_sha256"] = version.get("sha256")
        return decision

    def select_steps(self, case: Any, strategy: str) -> dict[str, Any]:
        """The selection, as ``Policy.select_steps``; raises when the service cannot answer
        (a selection has no fallback, as ``on_policy_error`` does not cover it locally)."""
        body = case if isinstance(case, str) else json.dumps(case)
        query = urllib.parse.urlencode({"strategy": strategy})
        try:
            answer = self._post(f"/v1/select-steps?{query}", body)
        except _Unanswered as why:
            raise ConnectionError(f"runretry service {self.url}: {why}") from None
        selection: dict[str, Any] = answer["selection"]
        return selection

    def _without_service(self, case: Any, why: str, kind: "_Kind") -> dict[str, Any]:
        note = f"the policy service {self.url} did not answer ({why})"
        if self.on_unreachable == "fail":
            _log.warning("runretry: %s; on_unreachable='fail': the %s is not retried", note, kind.subject)
            decision = kind.not_retried(note)
            decision["events"] = [f"{note}; on_unreachable='fail': not retried"]
            decision["policy_sha256"] = None  # no policy decided
            return decision
        _log.warning("runretry: %s; on_unreachable='default': the embedded default policy decides", note)
        decision = kind.decide_locally(self._default_policy(), case)
        decision.setdefault("events", []).insert(0, f"{note}; decided with the embedded default policy instead")
        kind.mark_local(decision)
        return decision

    def _default_policy(self) -> Policy:
        with self._default_lock:
            if self._default is None:
                self._default = Policy.default()
            return self._default

    def _post(self, path: str, body: str) -> dict[str, Any]:
        """The 200 answer's JSON; raises ``BadInput`` on 400 and ``_Unanswered`` otherwise.
        A kept connection the server closed while idle is opened again, once."""
        deadline = time.monotonic() + self.timeout_ms / 1000
        for attempt in (1, 2):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Unanswered(f"no answer within {self.timeout_ms} ms")
            connection = self._connection(remaining)
            try:
                connection.request("POST", self._base_path + path, body=body.encode(), headers=self._headers)
                response = connection.getresponse()
                text = response.read().decode("utf-8", "replace")
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
                self._close()
                if attempt == 1:
                    continue
                raise _Unanswered(f"the connection closed: {error}") from None
            except TimeoutError:
                self._close()
                raise _Unanswered(f"no answer within {self.timeout_ms} ms") from None
            except (OSError, http.client.HTTPException) as error:
                self._close()
                raise _Unanswered(f"{type(error).__name__}: {error}") from None
            if response.status == 200:
                answer: dict[str, Any] = json.loads(text)
                return answer
            message = _error_message(text)
            if response.status == 400:
                raise BadInput(f"bad input: {message}")
            raise _Unanswered(f"HTTP {response.status}: {message}")
        raise AssertionError("unreachable")

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            kind = http.client.HTTPSConnection if self._parsed.scheme == "https" else http.client.HTTPConnection
            connection = kind(self._parsed.hostname, self._parsed.port, timeout=timeout)
            self._local.connection = connection
        connection.timeout = timeout
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        return connection

    def _close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
        self._local.connection = None


class _Kind(NamedTuple):
    """What differs between deciding a run and a task without the service."""

    subject: str
    not_retried: Callable[[str], dict[str, Any]]
    decide_locally: Callable[[Policy, Any], dict[str, Any]]
    mark_local: Callable[[dict[str, Any]], None]


def _run_not_retried(note: str) -> dict[str, Any]:
    return {
        "action": "NONE",
        "retry": False,
        "retry_number": None,
        "strategy": None,
        "steps": None,
        "asset_selection": None,
        "asset_check_selection": None,
        "new_run_tags": {},
        "failed_run_tags": {DECIDED_LOCALLY_TAG: "not retried: the policy service did not answer"},
        "resubmit_run_id": None,
        "delay_seconds": 0.0,
        "reason": f"not retried: {note}",
    }


def _mark_run_local(decision: dict[str, Any]) -> None:
    decision.setdefault("failed_run_tags", {})[DECIDED_LOCALLY_TAG] = "the embedded default policy"


# A run's decision says it was made locally in a tag too (the sensor writes it on the run); a
# task has no tags: its events say so.
_RUN = _Kind("run", _run_not_retried, lambda policy, case: policy.decide(case), _mark_run_local)
_TASK = _Kind(
    "task",
    lambda note: {"action": "fail", "delay_seconds": None, "reason": f"not retried: {note}"},
    lambda policy, case: policy.decide_task(case),
    lambda decision: None,
)


class _Unanswered(Exception):
    """The service gave no usable answer: why, in a line."""


def _error_message(text: str) -> str:
    """The error's message from the service's JSON answer, or the first 200 characters."""
    try:
        error = json.loads(text).get("error") or {}
        return f"{error.get('kind', 'error')}: {error.get('message', '')}"[:500]
    except (ValueError, AttributeError):
        return text[:200]
