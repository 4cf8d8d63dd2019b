"""
Every filter fed hostile strings: only ValueError, no SQL injection, the store intact.

Quotes, ``;``, ``%``, NUL, lone surrogates, SQL fragments and format
placeholders go into every filter of ``logs``, ``follow``, ``runs``, ``run``
and ``prune``, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storelines import T0, lifecycle, line
from strategies import nasty_text
from structflow.store import Store
from structflow.store._filters import parse_time, to_micros

INJECTIONS = (
    "x' OR '1'='1",
    "'; DROP TABLE structflow_entries; --",
    '" OR ""="',
    "%s %(x)s %%",
    "\\",
    "?",
    "$1",
    "a\x00b",
    "\ud800",
    "*",
    "NEAR(a b)",
    "a OR b",
    "'a' | 'b'",
    "$.x",
    "1e999",
    "-9223372036854775809",
)
text = st.one_of(nasty_text, st.sampled_from(INJECTIONS), st.text(max_size=30))
scalar = st.one_of(
    text,
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)
filters = st.fixed_dictionaries(
    {},
    optional={
        "flow_run_id": text,
        "task_run_id": text,
        "flow_name": text,
        "task_name": text,
        "level": st.one_of(text, st.integers(min_value=-5, max_value=2**40)),
        "since": text,
        "until": text,
        "search": text,
        "where": st.dictionaries(text, scalar, max_size=3),
        "limit": st.one_of(st.integers(min_value=-3, max_value=50), st.none()),
        "after": text,
    },
)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _fill(store: Store) -> list[str]:
    store.ingest(
        [
            *lifecycle("run-1", tasks=(("t1", "extract", "Success"),)),
            line("canary entry", seconds=10, flow_run_id="run-1", rows=3, table="users"),
        ]
    )
    return [e.id for e in store.logs(limit=None)]


def _intact(store: Store, ids: list[str]) -> None:
    assert [e.id for e in store.logs(limit=None)] == ids
    assert [e.message for e in store.logs(search="canary", where={"rows": 3})] == ["canary entry"]


@FUZZ
@given(kwargs=filters, order=st.one_of(st.sampled_from(["asc", "desc"]), text))
def test_logs_filters(store: Store, kwargs: dict[str, Any], order: str) -> None:
    ids = _fill(store) if not store.logs(limit=1) else [e.id for e in store.logs(limit=None)]
    with contextlib.suppress(ValueError):
        store.logs(**kwargs, order=order)
    with contextlib.suppress(ValueError):
        store.follow(**kwargs)
    _intact(store, ids)


@FUZZ
@given(
    flow_name=st.one_of(text, st.none()),
    state=st.one_of(text, st.none()),
    since=st.one_of(text, st.none()),
    run_id=text,
)
def test_runs_filters(
    store: Store, flow_name: str | None, state: str | None, since: str | None, run_id: str
) -> None:
    ids = _fill(store) if not store.logs(limit=1) else [e.id for e in store.logs(limit=None)]
    with contextlib.suppress(ValueError):
        store.runs(flow_name=flow_name, state=state, since=since)
    with contextlib.suppress(ValueError):
        store.run(run_id)
    _intact(store, ids)


@FUZZ
@given(older_than=text)
def test_prune_with_anything_but_a_time_changes_nothing(store: Store, older_than: str) -> None:
    ids = _fill(store) if not store.logs(limit=1) else [e.id for e in store.logs(limit=None)]
    try:
        cutoff = parse_time(older_than, "older_than")
    except ValueError:
        cutoff = None
    if cutoff is not None and cutoff > to_micros(T0):
        return  # a time after the entries: pruning them is right, and tested elsewhere
    with contextlib.suppress(ValueError):
        store.prune(older_than=older_than)
    _intact(store, ids)
