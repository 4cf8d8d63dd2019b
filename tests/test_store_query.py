"""Store.logs: every filter, ordering and cursor pagination; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
import threading
from typing import Any

import pytest

from storelines import T0, line
from structflow.store import LogEntry, Store, connect


def messages(entries: list[LogEntry]) -> list[str]:
    return [e.message for e in entries]


@pytest.fixture
def filled(store: Store) -> Store:
    """Two runs of two tasks, four levels, fields of several types."""
    lines = []
    for i in range(8):
        run = "run-a" if i < 4 else "run-b"
        task = f"task-{i % 2}"
        lines.append(
            line(
                f"message {i} {'Alpha' if i % 2 else 'beta'} ümlaut{i}",
                seconds=i,
                level=["debug", "info", "warning", "error"][i % 4],
                flow_name="etl" if run == "run-a" else "report",
                flow_run_id=run,
                task_name=f"Task {i % 2}",
                task_run_id=f"{run}-{task}",
                map_index=i % 3,
                rows=i,
                table="users" if i % 2 else "orders",
                ok=i % 2 == 0,
                ratio=i / 2,
                user={"id": f"u{i}"},
                nothing=None,
            )
        )
    store.ingest(lines)
    return store


def test_by_flow_run(filled: Store) -> None:
    assert messages(filled.logs(flow_run_id="run-b"))[0] == "message 4 beta ümlaut4"
    assert len(filled.logs(flow_run_id="run-b")) == 4


def test_by_task_run_flow_name_and_task_name(filled: Store) -> None:
    assert len(filled.logs(task_run_id="run-a-task-1")) == 2
    assert {e.flow_run_id for e in filled.logs(flow_name="report")} == {"run-b"}
    assert {e.task_name for e in filled.logs(task_name="Task 1")} == {"Task 1"}
    assert filled.logs(flow_name="nope") == []


def test_minimum_level_by_name_or_number(filled: Store) -> None:
    assert {e.level for e in filled.logs(level="warning")} == {"warning", "error"}
    assert {e.level for e in filled.logs(level="ERROR")} == {"error"}
    assert len(filled.logs(level=20)) == 6
    assert len(filled.logs(level="10")) == 8


def test_since_and_until_take_datetimes_durations_and_iso_text(filled: Store) -> None:
    assert len(filled.logs(since=T0 + dt.timedelta(seconds=6))) == 2
    assert len(filled.logs(until="2024-06-01T12:00:02Z")) == 2
    assert (
        len(filled.logs(since="2024-06-01T12:00:02+00:00", until=T0 + dt.timedelta(seconds=4))) == 2
    )
    # Every entry is from 2024: long ago.
    assert filled.logs(since="1h") == []
    assert filled.logs(since=dt.timedelta(days=1)) == []
    assert len(filled.logs(until="15m")) == 8


def test_a_naive_datetime_is_local_time(filled: Store) -> None:
    local = (T0 + dt.timedelta(seconds=6)).astimezone().replace(tzinfo=None)
    assert len(filled.logs(since=local)) == 2


def test_search_finds_whole_words_in_any_case_and_needs_them_all(filled: Store) -> None:
    assert messages(filled.logs(search="ALPHA ümlaut3")) == ["message 3 Alpha ümlaut3"]
    assert len(filled.logs(search="alpha")) == 4
    assert filled.logs(search="alph") == []
    assert messages(filled.logs(search="ÜMLAUT5")) == ["message 5 Alpha ümlaut5"]
    # Punctuation separates words, in the query as in the message.
    assert len(filled.logs(search="message-1")) == 1


def test_where_compares_fields_by_value_and_type(filled: Store) -> None:
    assert messages(filled.logs(where={"rows": 3})) == ["message 3 Alpha ümlaut3"]
    assert len(filled.logs(where={"table": "users"})) == 4
    assert len(filled.logs(where={"ok": True})) == 4
    assert len(filled.logs(where={"ratio": 1.5})) == 1
    assert len(filled.logs(where={"ratio": 2})) == 1
    assert len(filled.logs(where={"nothing": None})) == 8
    assert messages(filled.logs(where={"user.id": "u6"})) == ["message 6 beta ümlaut6"]
    assert len(filled.logs(where={"table": "users", "ok": False})) == 4
    # A string never equals a number, nor a bool a number.
    assert filled.logs(where={"rows": "3"}) == []
    assert filled.logs(where={"ok": 1}) == []
    assert filled.logs(where={"missing": None}) == []


def test_where_on_a_column_key_compares_that_column(filled: Store) -> None:
    assert len(filled.logs(where={"flow_run_id": "run-a"})) == 4
    assert len(filled.logs(where={"map_index": 0})) == 3
    assert len(filled.logs(where={"level": "ERROR"})) == 2
    assert filled.logs(where={"map_index": "0"}) == []


def test_limit_and_order(filled: Store) -> None:
    assert messages(filled.logs(limit=2)) == ["message 0 beta ümlaut0", "message 1 Alpha ümlaut1"]
    assert messages(filled.logs(limit=1, order="desc")) == ["message 7 Alpha ümlaut7"]
    assert len(filled.logs(limit=None)) == 8


def test_pages_follow_each_other_through_the_cursor(filled: Store) -> None:
    for order in ("asc", "desc"):
        seen: list[str] = []
        after = None
        while True:
            page = filled.logs(limit=3, order=order, after=after)
            if not page:
                break
            seen += messages(page)
            after = page[-1].cursor
        assert seen == messages(filled.logs(order=order))


def test_filters_combine(filled: Store) -> None:
    got = filled.logs(flow_run_id="run-a", level="info", search="alpha", where={"table": "users"})
    assert messages(got) == ["message 1 Alpha ümlaut1", "message 3 Alpha ümlaut3"]


def test_paging_stays_exact_while_entries_are_added(store_url: str) -> None:
    """Every entry that existed is seen once, whatever lands between pages."""
    with connect(store_url) as reader, connect(store_url) as writer:
        writer.ingest([line(f"old {i}", seconds=i, record_id=f"old-{i}") for i in range(300)])
        stop = threading.Event()

        def write() -> None:
            n = 0
            while not stop.is_set() and n < 2000:
                # Later than every old entry, and some in between them.
                writer.ingest(
                    [
                        line(f"new {n}", seconds=1000 + n, record_id=f"new-{n}"),
                        line(f"late {n}", seconds=n % 300 + 0.5, record_id=f"late-{n}"),
                    ]
                )
                n += 1

        thread = threading.Thread(target=write)
        thread.start()
        try:
            seen: list[str] = []
            page = reader.logs(limit=7)
            while page:
                seen += messages(page)
                page = reader.logs(limit=7, after=page[-1].cursor)
        finally:
            stop.set()
            thread.join()
    old = [m for m in seen if m.startswith("old")]
    assert old == [f"old {i}" for i in range(300)]
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"level": "verbose"}, "level='verbose' is not a log level; expected NOTSET, DEBUG"),
        ({"level": -1}, "level=-1 is not a log level"),
        ({"since": "yesterday"}, "since='yesterday' is not a time; expected a datetime"),
        ({"until": 12}, "until=12 is not a time"),
        ({"since": dt.timedelta(hours=-1)}, "since=datetime.timedelta(days=-1, seconds=82800) is"),
        ({"since": "99999999999d"}, "since='99999999999d' is not a time in range"),
        ({"search": "%;"}, "search='%;' has no word to search for"),
        ({"search": 3}, "search=3 is invalid; expected a string of words"),
        ({"where": {"a;drop": 1}}, "where key 'a;drop' is not a field path"),
        ({"where": {"a..b": 1}}, "where key 'a..b' is not a field path"),
        ({"where": {"rows": [1]}}, "where['rows'] is invalid; a field is compared with a string"),
        ({"where": {"n": 2**64}}, "where['n'] is out of range"),
        ({"where": {"n": float("nan")}}, "where['n'] is not a finite number"),
        ({"where": "rows=3"}, "where='rows=3' is invalid; expected a dict"),
        ({"limit": 0}, "limit=0 is invalid; expected an integer >= 1"),
        ({"order": "up"}, "order='up' is invalid; expected 'asc' or 'desc'"),
        ({"after": "abc"}, "after='abc' is not a cursor"),
        ({"flow_run_id": 3}, "flow_run_id=3 is invalid; expected a string"),
    ],
)
def test_bad_filters_raise_a_value_error_naming_them(
    store: Store, kwargs: dict[str, Any], message: str
) -> None:
    store.ingest([line("kept")])
    with pytest.raises(ValueError, match=re.escape(message)):
        store.logs(**kwargs)
    assert messages(store.logs()) == ["kept"]
