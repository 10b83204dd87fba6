"""runretry: pluggable run-retry policies, as sandboxed WebAssembly components.

The bindings are the Rust host library itself (``runretry._runretry``), not a re-implementation:

>>> import runretry
>>> policy = runretry.Policy.default()
>>> decision = policy.decide({"config": {"enabled": True, "max_retries": 1},
...                           "run": {"run_id": "A", "status": "FAILURE",
...                                   "steps": [{"key": "op", "upstream": [], "status": "FAILURE"}]},
...                           "failure": {"reason": "RUN_EXCEPTION"}})
>>> decision["action"], decision["retry_number"]
('LAUNCH_NEW', 1)

A case is the command line's JSON format (``docs/case-format.md``), as a dict or a string. The
Dagster integration is ``runretry.dagster`` (``pip install 'runretry[dagster]'``).
"""

from runretry._runretry import (
    CONTRACT_VERSION,
    BadInput,
    DeadlineExceeded,
    FuelExhausted,
    GuestTrap,
    InvalidComponent,
    InvalidOutput,
    MemoryLimit,
    Policy,
    PolicyError,
    RunretryError,
    StackOverflow,
    conformance,
)
from runretry.remote import RemotePolicy

__all__ = [
    "CONTRACT_VERSION",
    "BadInput",
    "DeadlineExceeded",
    "FuelExhausted",
    "GuestTrap",
    "InvalidComponent",
    "InvalidOutput",
    "MemoryLimit",
    "Policy",
    "RemotePolicy",
    "PolicyError",
    "RunretryError",
    "StackOverflow",
    "conformance",
]
