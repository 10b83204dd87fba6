"""Type stubs of the extension module (the Rust host library)."""

from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any, Literal, TypedDict, final

from typing_extensions import Unpack

Case = Mapping[str, Any] | str
"""A case in the command line's JSON format: a dict, or its JSON text."""

OnPolicyError = Literal["fail", "give-up", "default"]
Strategy = Literal["FROM_FAILURE", "ALL_STEPS", "FROM_ASSET_FAILURE"]

CONTRACT_VERSION: str

class SandboxLimits(TypedDict, total=False):
    """The sandbox's limits, keyword arguments of every entry point; the command line's flags
    under the same names (``--deadline-ms``). ``None`` or absent keeps the default."""

    fuel: int | None
    """Fuel per call (~Wasm instructions). Default 10000000000."""
    deadline_ms: int | None
    """Wall-clock deadline per call, in milliseconds. Default 5000."""
    max_memory_mib: int | None
    """Linear-memory cap per instance, in MiB. Default 512."""
    max_stack_kib: int | None
    """Wasm stack cap, in KiB. Default 1024."""
    max_input_bytes: int | None
    """Largest input, in bytes of text. Default 67108864."""
    max_output_bytes: int | None
    """Largest output, in bytes of text. Default 16777216."""
    cache_dir: str | PathLike[str] | Literal[False] | None
    """Where compiled components are cached; ``False`` for no cache."""
    trusted_keys: Sequence[str | PathLike[str]] | str | PathLike[str] | None
    """Public key files (``runretry keygen``): only a policy signed by one of them loads."""

class RunretryError(Exception):
    """Every error raised by runretry."""

    kind: str
    """The host's stable name of the kind: "bad input", "fuel exhausted", ..."""

class BadInput(RunretryError):
    """Malformed input (bad JSON, a wrong field type, an unreadable file); the message names the
    field or the file."""

class PolicyError(RunretryError):
    """The policy failed to answer."""

class DeadlineExceeded(PolicyError): ...
class FuelExhausted(PolicyError): ...
class MemoryLimit(PolicyError): ...
class GuestTrap(PolicyError): ...
class StackOverflow(GuestTrap): ...
class InvalidOutput(PolicyError): ...
class InvalidComponent(PolicyError): ...

@final
class Policy:
    """A retry policy as a deployment runs it; thread-safe, the GIL released while it decides."""

    @staticmethod
    def default(**limits: Unpack[SandboxLimits]) -> Policy:
        """The embedded default policy: Dagster 1.13.29's run retries, Airflow 3.3.2's task
        retries."""

    @staticmethod
    def load(
        path: str | PathLike[str],
        *,
        on_policy_error: OnPolicyError = "fail",
        **limits: Unpack[SandboxLimits],
    ) -> Policy:
        """Load the policy component at ``path`` (a relative path is relative to the process's
        working directory).

        ``on_policy_error`` is what a failing policy leads to, and covers one that does not load
        (a missing or unreadable file, not a component, another world): ``"fail"`` raises here
        (``BadInput`` naming a file that cannot be read, ``InvalidComponent`` naming one that is
        not a policy); ``"give-up"`` and ``"default"`` return the policy anyway, log a warning
        on the ``runretry.policy`` logger naming the file and the error, keep the error in
        :attr:`load_error`, and every :meth:`decide` gives up (``action: NONE``) or decides with
        the embedded default policy, its first event naming the file and the error.
        """

    def decide(self, case: Case) -> dict[str, Any]:
        """The complete decision (``runretry decide``), as a dict, with ``policy_sha256``: the
        SHA-256 of the component that decided (this policy's; the embedded default policy's
        when ``on_policy_error="default"`` decided instead; ``None`` under ``"give-up"``)."""

    def decide_task(self, case: Case) -> dict[str, Any]:
        """The decision for a task's failed try (a task case, ``{"task": {...}}``), as a dict:
        ``action`` (``"retry"``, ``"fail"`` or ``"default"``), ``delay_seconds``, ``reason``,
        ``events``, ``policy_sha256`` (as for :meth:`decide`). ``on_policy_error`` applies:
        ``"give-up"`` fails the task, ``"default"`` decides as Airflow would."""

    @property
    def sha256(self) -> str | None:
        """SHA-256 of the policy component, lowercase hex; ``None`` when it did not load."""

    @property
    def decides(self) -> tuple[bool, bool]:
        """Whether the policy decides about runs (Dagster) and about tasks (Airflow)."""

    def select_steps(self, case: Case, strategy: Strategy) -> dict[str, Any]:
        """The selection (``runretry select-steps``), or ``{"strategy", "error"}`` when refused.
        ``on_policy_error`` does not apply: a policy that fails, or did not load, raises."""

    @property
    def name(self) -> str:
        """The path the policy was loaded from, or ``<embedded default policy>``."""
    @property
    def on_policy_error(self) -> OnPolicyError: ...
    @property
    def load_error(self) -> PolicyError | None:
        """Why the policy did not load, or None when it did. Only under ``"give-up"`` and
        ``"default"`` (``"fail"`` raises in :meth:`load`); a file that cannot be read is an
        ``InvalidComponent`` here, as it is in the fallback's event: the deployment has no
        policy."""

def conformance(
    policy_path: str | PathLike[str] | None = None,
    suite: str = "default",
    *,
    ignore_fields: Sequence[str] = (),
    **limits: Unpack[SandboxLimits],
) -> dict[str, Any]:
    """Run a policy against a suite ("default", "contract" or a path): passed, failed, skipped
    (cases of a kind the policy does not decide), failures."""
