"""One database connection per storage for a span of work, instead of one per storage call.

dagster-postgres (and dagster-mysql) give each storage an engine without a pool, so that an idle
``DagsterInstance`` holds no connection: every storage call connects anew, and some calls
connect twice. A case takes about ten calls, so on PostgreSQL most of ``build_case``'s time was
spent connecting (``docs/performance.md``). :func:`held_connections` switches such storages to
the pooled engine Dagster's own webserver uses (``optimize_for_webserver``: one connection kept,
a few more while calls nest) for the span of a ``with`` block, then closes those connections and
puts the storages' own engines back. The sensor holds them for one tick.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster import DagsterInstance

#: Connections a storage may open beyond the one it keeps, while storage calls nest.
EXTRA_CONNECTIONS = 4
#: ``optimize_for_webserver`` sets a statement timeout on each connection; 0 is none, as on a
#: storage's own engine. A storage whose URL sets one itself is left unpooled, so it keeps it.
NO_STATEMENT_TIMEOUT = 0
#: Seconds after which a kept connection is replaced rather than reused.
RECYCLE_SECONDS = 3600


def _connects_per_call(storage: Any) -> bool:
    """Whether ``storage`` is an SQL storage whose engine opens a connection per call (and sets
    no statement timeout of its own, which the pooled engine would override)."""
    engine = getattr(storage, "_engine", None)
    pool = getattr(engine, "pool", None)
    options = str(getattr(getattr(engine, "url", None), "query", {}).get("options", ""))
    return (
        type(pool).__name__ == "NullPool"
        and hasattr(storage, "optimize_for_webserver")
        and "statement_timeout" not in options
    )


@contextmanager
def held_connections(instance: DagsterInstance) -> Iterator[None]:
    """Within the block, each of ``instance``'s run and event-log storages that would connect
    for every call keeps one connection instead; at its end those connections are closed and
    the storages are as they were. Storages that already pool (SQLite, a webserver's instance)
    are left alone. Not for an instance other threads use meanwhile: they would share the pool."""
    storages = {id(s): s for s in (instance.run_storage, instance.event_log_storage)}.values()
    swapped: list[tuple[Any, Any]] = []
    try:
        for storage in storages:
            if _connects_per_call(storage):
                swapped.append((storage, storage._engine))
                storage.optimize_for_webserver(
                    statement_timeout=NO_STATEMENT_TIMEOUT, pool_recycle=RECYCLE_SECONDS, max_overflow=EXTRA_CONNECTIONS
                )
        yield
    finally:
        for storage, engine in swapped:
            pooled, storage._engine = storage._engine, engine
            pooled.dispose()
