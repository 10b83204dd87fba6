"""runretry for Dagster 1.10.12 to 1.13.x (tested with 1.13.29, 1.12.18, 1.11.16 and 1.10.21).

- :func:`runretry_sensor`: a sensor for ``Definitions`` that decides run retries with a runretry
  policy, in shadow mode (compare with Dagster's own retries) or enforce mode (own them).
- :func:`build_case`: the runretry case of a failed run, from a ``DagsterInstance``.
- :func:`held_connections`: one database connection per storage for a block of ``build_case``
  calls, instead of one per storage call (PostgreSQL, MySQL); the sensor holds them per tick.
- :func:`export_cases`: failed runs as JSON Lines cases, for ``runretry decide --batch``.
- :func:`shadow_summary`: how often a policy in shadow mode agreed with Dagster.
"""

try:
    import dagster  # noqa: F401  (the integration's one requirement, checked first)
except ModuleNotFoundError as missing:
    raise ModuleNotFoundError(
        "runretry.dagster needs Dagster, which is not installed here: "
        "pip install 'runretry[dagster]' (or dagster>=1.10.12,<1.14)",
        name=missing.name,
    ) from missing

from runretry.dagster.case import build_case
from runretry.dagster.connections import held_connections
from runretry.dagster.export import export_cases
from runretry.dagster.sensor import runretry_sensor
from runretry.dagster.shadow import shadow_summary

__all__ = ["build_case", "export_cases", "held_connections", "runretry_sensor", "shadow_summary"]
