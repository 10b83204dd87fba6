"""runretry for Airflow (tested with apache-airflow 3.3.2).

- :class:`RetryPolicy`: an Airflow ``RetryPolicy`` (``retry_policy=`` on a task, in
  ``default_args``, or site-wide in ``task_policy``) whose decisions a runretry policy makes, in
  shadow mode (log what it would decide, change nothing) or enforce mode.
- :func:`build_task_case`: the runretry task case of a failed try, from what Airflow hands a
  retry policy.
"""

try:
    import airflow.sdk  # noqa: F401  (the integration's one requirement, checked first)
except ModuleNotFoundError as missing:
    raise ModuleNotFoundError(
        "runretry.airflow needs Airflow 3.3, which is not installed here: "
        "pip install 'runretry[airflow]' (or apache-airflow>=3.3,<3.4)",
        name="airflow",
    ) from missing

from runretry.airflow.case import build_task_case
from runretry.airflow.policy import RetryPolicy

__all__ = ["RetryPolicy", "build_task_case"]
