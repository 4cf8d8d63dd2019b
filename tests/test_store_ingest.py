"""Store.ingest: JSON lines in, entries out, each line stored once; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import logging
import random
import sqlite3
import string
from pathlib import Path
from typing import Any

import orjson
import pytest

from storelines import T0, line, refuse_poison, rendered
from structflow.store import IngestResult, LogEntry, Store, _dialects
from structflow.store._dialects import SQLiteDialect, dialect_for
from structflow.store._ingest import parse_line
from structflow.store._schema import migrate


def test_a_rendered_line_comes_back_as_an_entry_with_every_field(store: Store) -> None:
    context: dict[str, Any] = {
        "flow_name": "etl",
        "flow_run_id": "run-1",
        "task_name": "load",
        "task_run_id": "task-1",
        "map_index": 2,
        "task_run_count": 1,
    }
    store.ingest([line("loaded %s rows", seconds=1.5, record_id="r-1", rows=3, **context)])
    assert store.logs() == [
        LogEntry(
            id="r-1",
            timestamp=T0 + dt.timedelta(seconds=1.5),
            level="info",
            levelno=20,
            logger="structflow.Task B",
            message="loaded %s rows",
            flow_name="etl",
            flow_run_id="run-1",
            task_name="load",
            task_run_id="task-1",
            map_index=2,
            fields={"task_run_count": 1, "rows": 3},
            exception=None,
            cursor=store.logs()[0].cursor,
        )
    ]


def test_the_json_formatters_own_output_is_stored_with_its_fields(store: Store) -> None:
    result = store.ingest([rendered("input %s", 3, flow_run_id="r", user={"id": 7})])
    assert result == IngestResult(stored=1, duplicates=0, invalid=[])
    (entry,) = store.logs()
    assert (entry.message, entry.flow_run_id, entry.fields) == ("input 3", "r", {"user": {"id": 7}})


def test_a_line_with_a_known_id_is_not_stored_twice(store: Store) -> None:
    batch = [line("a", record_id="x-1"), line("b", record_id="x-2")]
    assert store.ingest(batch) == IngestResult(2, 0, [])
    assert store.ingest([*batch, line("c", record_id="x-3")]) == IngestResult(1, 2, [])
    assert [e.message for e in store.logs()] == ["a", "b", "c"]


def test_an_id_repeated_within_one_batch_is_stored_once(store: Store) -> None:
    assert store.ingest([line("a", record_id="same"), line("a", record_id="same")]) == (
        IngestResult(1, 1, [])
    )


def test_an_entry_repeated_within_a_batch_of_entries_is_stored_once(store: Store) -> None:
    entry = store.encode_entry(parse_line(line("a", record_id="same"))[1])
    other = store.encode_entry(parse_line(line("b", record_id="other"))[1])
    assert store.store_entries([entry, other, entry]).stored == 2
    assert store.store_entries([other, entry]).stored == 0
    assert [e.id for e in store.logs()] == ["same", "other"]


def test_a_batch_mixing_empty_and_filled_columns_keeps_each_value_in_its_place(
    store: Store,
) -> None:
    run: dict[str, Any] = {
        "flow_name": "etl",
        "flow_run_id": "r1",
        "task_name": "load",
        "task_run_id": "t1",
    }
    # One moment for all: logs() then lists them in the order they landed.
    store.ingest(
        [
            line("plain", record_id="a"),
            line("in a run", record_id="b", **run),
            line("mapped", record_id="c", flow_run_id="r1", map_index=4),
            line("failed", record_id="d", exception="Traceback\nValueError: x", **run),
            line("in a run again", record_id="e", **run),
            line("plain again", record_id="f"),
        ]
    )
    assert [
        (e.id, e.flow_name, e.flow_run_id, e.task_name, e.task_run_id, e.map_index, e.exception)
        for e in store.logs()
    ] == [
        ("a", None, None, None, None, None, None),
        ("b", "etl", "r1", "load", "t1", None, None),
        ("c", None, "r1", None, None, 4, None),
        ("d", "etl", "r1", "load", "t1", None, "Traceback\nValueError: x"),
        ("e", "etl", "r1", "load", "t1", None, None),
        ("f", None, None, None, None, None, None),
    ]


def _runs_of_shapes() -> list[bytes]:
    """Long runs of lines with the same empty columns, and single lines between them."""
    lines = []
    for n in range(260):
        if n in (130, 131, 200):
            lines.append(line(f"m{n}", record_id=f"id-{n}", flow_run_id="r1", map_index=n))
        else:
            lines.append(line(f"m{n}", record_id=f"id-{n}", flow_run_id="r1"))
    return lines


def _landed(store: Store) -> list[tuple[str, str, int | None]]:
    return [(e.id, e.message, e.map_index) for e in store.logs(limit=None)]


_EXPECTED = [(f"id-{n}", f"m{n}", n if n in (130, 131, 200) else None) for n in range(260)]


def test_a_large_batch_lands_whole_in_order_with_each_value_in_place(store: Store) -> None:
    # One moment for all: logs() then lists them in the order they landed.
    assert store.ingest(_runs_of_shapes()) == IngestResult(260, 0, [])
    assert _landed(store) == _EXPECTED


def test_a_sqlite_build_taking_few_values_per_statement_stores_every_entry(
    tmp_path: Path,
) -> None:
    dialect = dialect_for(f"sqlite:///{tmp_path}/logs.db")
    dialect.open()
    migrate(dialect)
    assert isinstance(dialect, SQLiteDialect) and dialect._conn is not None
    # SQLite before 3.32 took 999 values per statement by default; this one, 30.
    dialect._conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 30)
    with Store(dialect) as store:
        assert store.ingest(_runs_of_shapes()) == IngestResult(260, 0, [])
        assert store.ingest(_runs_of_shapes()) == IngestResult(0, 260, [])
        assert _landed(store) == _EXPECTED


def test_without_an_id_identical_lines_are_stored_once_and_different_ones_each(
    store: Store,
) -> None:
    result = store.ingest([line("a"), line("a"), line("a", seconds=1)])
    assert result == IngestResult(2, 1, [])
    assert all(e.id.startswith("h:") for e in store.logs())


def test_invalid_lines_are_reported_by_index_and_the_valid_ones_stored(store: Store) -> None:
    result = store.ingest(
        [
            line("kept"),
            b"not json",
            b"[1, 2]",
            b'{"message": "no time"}',
            b'{"timestamp": "yesterday", "message": "m"}',
            b'{"timestamp": "2024-06-01T12:00:00Z"}',
            line("bad run id", flow_run_id=["a"]),
            line("bad map index", map_index="3"),
            line("bad id", record_id=""),
        ]
    )
    assert result.stored == 1
    assert [index for index, _reason in result.invalid] == [1, 2, 3, 4, 5, 6, 7, 8]
    reasons = dict(result.invalid)
    assert reasons[1].startswith("not JSON")
    assert reasons[2] == "a JSON list, not an object"
    assert reasons[3] == "no 'timestamp'"
    assert reasons[4] == "timestamp='yesterday' is not an RFC 3339 time"
    assert reasons[5] == "no 'message'"
    assert reasons[6] == "flow_run_id=['a'] is not a string"
    assert reasons[7] == "map_index='3' is not a 64-bit integer"
    assert reasons[8] == "_record_id='' is not a string of 1 to 128 characters"
    assert [e.message for e in store.logs()] == ["kept"]


def test_a_fraction_of_a_second_in_other_digits_is_not_an_rfc_3339_time(store: Store) -> None:
    odd = "2024-06-01T12:00:00.00000\u00b2Z"  # a superscript two: a digit, but not 0-9
    result = store.ingest([orjson.dumps({"timestamp": odd, "message": "m"})])
    assert result == IngestResult(0, 0, [(0, f"timestamp={odd!r} is not an RFC 3339 time")])


def test_dicts_and_text_lines_are_accepted_as_well_as_bytes(store: Store) -> None:
    doc = orjson.loads(line("from a dict"))
    store.ingest([doc, line("from text").decode()])
    assert [e.message for e in store.logs()] == ["from a dict", "from text"]


def test_nul_and_lone_surrogates_are_stored_as_every_backend_can_hold_them(store: Store) -> None:
    raw = b'{"timestamp":"2024-06-01T12:00:00Z","message":"a\\u0000b \\ud800","k":"\\u0000"}'
    assert store.ingest([raw]).stored == 1
    (entry,) = store.logs()
    assert (entry.message, entry.fields) == ("a\ufffdb \\ud800", {"k": "\ufffd"})


def test_lines_the_database_refuses_are_invalid_and_the_others_stored(store: Store) -> None:
    refuse_poison(store)
    messages = ["a", "poison", "b", "c", "poison", "d", "e"]
    batch = [line(m, seconds=i, record_id=f"r{i}") for i, m in enumerate(messages)]
    result = store.ingest([b"not json", *batch])
    assert (result.stored, result.duplicates) == (5, 0)
    assert [index for index, _ in result.invalid] == [0, 2, 5]
    assert all(why.startswith("the database refused it: ") for _, why in result.invalid[1:])
    assert [e.message for e in store.logs()] == ["a", "b", "c", "d", "e"]
    # Sent again, the stored ones are duplicates and the refused ones refused again.
    again = store.ingest(batch)
    assert (again.stored, again.duplicates, len(again.invalid)) == (0, 5, 2)


def _random_text(chars: int, seed: int) -> str:
    """Letters at random: PostgreSQL cannot compress them to fit its index entries."""
    return "".join(random.Random(seed).choices(string.ascii_letters, k=chars))


def test_names_too_long_for_an_index_are_stored_cut_and_found_by_their_whole_value(
    store: Store,
) -> None:
    names: dict[str, Any] = {
        key: _random_text(20_000, seed)
        for seed, key in enumerate(("flow_name", "flow_run_id", "task_name", "task_run_id"))
    }
    level = _random_text(5_000, 9).lower()
    lifecycle, state = _random_text(8_000, 10), _random_text(8_000, 11)
    result = store.ingest(
        [
            line("long names", level=level, lifecycle=lifecycle, state=state, **names),
            line("short names", seconds=1, flow_run_id="r1"),
        ]
    )
    assert (result.stored, result.invalid) == (2, [])
    (entry,) = store.logs(flow_run_id=names["flow_run_id"])
    for key, whole in names.items():
        value = getattr(entry, key)
        assert len(value.encode()) <= 1000, key
        assert value.startswith(whole[:900]), key
        assert value.endswith(" bytes]"), key
    assert len(entry.level.encode()) <= 1000
    assert entry.level.startswith(level[:900])
    # The whole values stay in the fields, which have no such limit.
    assert (entry.fields["lifecycle"], entry.fields["state"]) == (lifecycle, state)
    found = store.logs(
        flow_name=names["flow_name"],
        task_name=names["task_name"],
        task_run_id=names["task_run_id"],
        where={"flow_run_id": names["flow_run_id"], "level": level},
    )
    assert [e.id for e in found] == [entry.id]
    assert [e.message for e in store.logs(flow_run_id="r1")] == ["short names"]


def test_tabs_newlines_and_backslashes_come_back_as_they_were_logged(store: Store) -> None:
    # PostgreSQL's entries are COPY text lines, where these characters are escapes.
    tricky = "a\tb\nc\rd\\N e\\\\f \\. \\t"
    context: dict[str, Any] = {
        "flow_name": tricky,
        "flow_run_id": "r\t1",
        "task_name": "t\\",
        "task_run_id": "\\N",
    }
    exception = {"type": "E", "message": tricky, "traceback": "Traceback\n\t" + tricky}
    store.ingest(
        [
            line(
                tricky, logger=tricky, record_id=tricky, note=tricky, exception=exception, **context
            ),
            line("\\N", seconds=1, record_id="plain", nested={tricky: [tricky, 1.5]}),
        ]
    )
    first, second = store.logs()
    assert (first.id, first.message, first.logger, first.exception) == (
        tricky,
        tricky,
        tricky,
        "Traceback\n\t" + tricky,
    )
    assert (first.flow_name, first.flow_run_id, first.task_name, first.task_run_id) == (
        tricky,
        "r\t1",
        "t\\",
        "\\N",
    )
    assert first.fields == {"note": tricky}
    assert (second.message, second.fields) == ("\\N", {"nested": {tricky: [tricky, 1.5]}})
    assert [e.id for e in store.logs(search="e")] == [tricky]
    assert [e.id for e in store.logs(where={"note": tricky})] == [tricky]


def test_an_infinite_duration_is_stored_as_none(store: Store) -> None:
    raw = (
        b'{"timestamp":"2024-06-01T12:00:00Z","message":"done","lifecycle":"task_run_finished",'
        b'"state":"Success","duration_s":Infinity,"task_run_id":"t"}'
    )
    assert store.ingest([raw]).stored == 1
    (entry,) = store.logs()
    assert entry.fields["duration_s"] is None


def test_an_exception_keeps_its_traceback_text(store: Store) -> None:
    exception = {"type": "ValueError", "message": "bad", "traceback": "Traceback ...\nValueError"}
    store.ingest([line("failed", exception=exception), line("short", seconds=1, exception="E")])
    assert [e.exception for e in store.logs()] == ["Traceback ...\nValueError", "E"]


def test_level_names_map_to_their_numbers_and_unknown_ones_rank_as_info(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A level this process registered (logging.addLevelName), undone afterwards.
    monkeypatch.setitem(logging._nameToLevel, "NOTICE", 25)
    store.ingest(
        [
            line("w", level="WARNING"),
            line("n", seconds=1, level="notice"),
            line("t", seconds=2, level="trace"),
            line("t5", seconds=3, level="trace", _levelno=5),
            line("l", seconds=4, level="Level 7"),
        ]
    )
    assert [(e.level, e.levelno) for e in store.logs()] == [
        ("warning", 30),
        ("notice", 25),
        ("trace", 20),
        ("trace", 5),
        ("level 7", 7),
    ]


def test_timestamps_without_an_offset_are_utc_and_offsets_are_honoured(store: Store) -> None:
    store.ingest(
        [
            b'{"timestamp":"2024-06-01T12:00:00","message":"naive"}',
            b'{"timestamp":"2024-06-01T14:00:01+02:00","message":"offset"}',
        ]
    )
    assert [e.timestamp for e in store.logs()] == [T0, T0 + dt.timedelta(seconds=1)]
    assert all(e.timestamp.tzinfo is dt.UTC for e in store.logs())


def test_to_dict_is_ready_for_json(store: Store) -> None:
    store.ingest([line("m", record_id="i", seconds=0.25, rows=1)])
    (entry,) = store.logs()
    assert entry.to_dict() == {
        "id": "i",
        "timestamp": "2024-06-01T12:00:00.250000Z",
        "level": "info",
        "levelno": 20,
        "logger": "structflow.Task B",
        "message": "m",
        "flow_name": None,
        "flow_run_id": None,
        "task_name": None,
        "task_run_id": None,
        "map_index": None,
        "fields": {"rows": 1},
        "exception": None,
        "cursor": entry.cursor,
    }


@pytest.mark.parametrize("threshold", [True, False], ids=["psycopg-3.3.9", "older-psycopg"])
def test_a_batch_of_several_megabytes_is_stored_whole_and_once(
    store: Store, threshold: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # More than the driver hands to the server at once (8 MiB; 128 KiB with
    # older psycopg, whose writer takes no flush threshold): the batch goes
    # in as one transaction all the same.
    monkeypatch.setattr(_dialects, "_writer_takes_flush_threshold", lambda: threshold)
    words = " ".join(f"word{n}" for n in range(300))
    entries = [
        store.encode_entry(parse_line(line(f"{n} {words}", record_id=f"big-{n}"))[1])
        for n in range(4500)
    ]
    assert sum(map(len, entries)) > 9 * 1024 * 1024
    assert store.store_entries(entries).stored == 4500
    assert store.store_entries(entries[::-1]).stored == 0
    stored = store.logs(limit=5000)
    assert [e.id for e in stored] == [f"big-{n}" for n in range(4500)]
    assert all(e.message == f"{n} {words}" for n, e in enumerate(stored))
