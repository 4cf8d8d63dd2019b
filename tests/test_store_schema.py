"""Opening stores: creation, upgrades, refusals and bad urls; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from benchmarks.pgcluster import PostgresCluster

from storelines import T0, line
from structflow.store import Store, StoreError, connect
from structflow.store._dialects import dialect_for
from structflow.store._schema import VERSION, migrate


def _version(url: str) -> int:
    dialect = dialect_for(url)
    dialect.open()
    try:
        return int(dialect.query("SELECT MAX(version) FROM structflow_schema")[0][0])
    finally:
        dialect.close()


def test_a_new_store_is_created_at_the_current_schema_version(store_url: str) -> None:
    connect(store_url).close()
    assert _version(store_url) == VERSION


def test_an_older_store_is_upgraded_and_its_entries_become_searchable(store_url: str) -> None:
    dialect = dialect_for(store_url)
    dialect.open()
    migrate(dialect, target=1)
    with dialect.transaction():
        # A row as schema version 1 stored it: no words column yet.
        dialect.query(
            "INSERT INTO structflow_entries (uid, ts, level, levelno, logger, message, fields) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            ("old-1", 1_717_243_200_000_000, "info", 20, "x", "an early needle", "{}"),
        )
    dialect.close()
    calls: list[tuple[int, int, str]] = []
    with connect(store_url, progress=lambda *a: calls.append(a)) as store:
        assert [e.id for e in store.logs(search="needle")] == ["old-1"]
        store.ingest([line("a later needle", seconds=5)])
        assert len(store.logs(search="needle")) == 2
    assert set(calls) == {(1, 1, "indexing words")}
    assert _version(store_url) == VERSION


def test_a_version_2_store_is_upgraded_and_search_and_prune_keep_working(store_url: str) -> None:
    dialect = dialect_for(store_url)
    dialect.open()
    migrate(dialect, target=2)
    dialect.close()
    with Store(dialect) as old:
        old.ingest([line(f"needle number {n}", seconds=n, record_id=f"old-{n}") for n in range(3)])
    calls: list[tuple[int, int, str]] = []
    with connect(store_url, progress=lambda *a: calls.append(a)) as store:
        store.ingest([line("a later needle", seconds=10, record_id="new-1")])
        found = [e.id for e in store.logs(search="needle")]
        pruned = store.prune(T0 + dt.timedelta(seconds=1.5))
        left = [e.id for e in store.logs(search="needle")]
    assert (found, pruned, left) == (["old-0", "old-1", "old-2", "new-1"], 2, ["old-2", "new-1"])
    assert _version(store_url) == VERSION
    if dialect.name == "sqlite":
        assert calls == [(3, 3, "indexing words")]


def test_the_sqlite_word_index_matches_the_entries_after_ingest_and_prune(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/logs.db"
    with connect(url) as store:
        store.ingest([line(f"word{n % 7} shared", seconds=n) for n in range(50)])
        store.prune(T0 + dt.timedelta(seconds=20))
        store.ingest([line("late shared", seconds=100)])
    dialect = dialect_for(url)
    dialect.open()
    try:
        # Raises when the index holds words the entries do not, or misses some.
        dialect.query(
            "INSERT INTO structflow_entries_fts (structflow_entries_fts, rank) "
            "VALUES ('integrity-check', 1)"
        )
    finally:
        dialect.close()


def test_a_store_with_a_newer_schema_is_refused_and_left_alone(store_url: str) -> None:
    with connect(store_url) as store:
        store.ingest([line("kept")])
    dialect = dialect_for(store_url)
    dialect.open()
    with dialect.transaction():
        dialect.query(
            "INSERT INTO structflow_schema (version, description, applied_at) VALUES (?, ?, ?)",
            (VERSION + 1, "from the future", "2099-01-01T00:00:00+00:00"),
        )
    dialect.close()
    with pytest.raises(StoreError, match=f"schema version is {VERSION + 1}, newer than"):
        connect(store_url)
    dialect.open()
    try:
        assert dialect.query("SELECT message FROM structflow_entries") == [("kept",)]
    finally:
        dialect.close()


def test_a_foreign_entries_table_is_not_taken_over(store_url: str) -> None:
    dialect = dialect_for(store_url)
    dialect.open()
    dialect.query("CREATE TABLE structflow_entries (id INTEGER)")
    dialect.close()
    with pytest.raises(StoreError, match="it was not made by structflow"):
        connect(store_url)


def test_without_create_a_url_where_nothing_was_stored_is_refused_and_left_alone(
    store_url: str, tmp_path: Path
) -> None:
    with pytest.raises(StoreError, match="nothing has been stored there yet"):
        connect(store_url, create=False)
    assert not (tmp_path / "logs.db").exists()  # the SQLite store's file
    # Nor were the tables made (on PostgreSQL): a second try is refused the same way.
    with pytest.raises(StoreError, match="nothing has been stored there yet"):
        connect(store_url, create=False)
    with connect(store_url) as made:
        made.ingest([line("kept")])
    with connect(store_url, create=False) as opened:
        assert [e.message for e in opened.logs()] == ["kept"]


def test_without_create_a_missing_file_makes_no_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"a/b/logs\.db does not exist\); check the url"):
        connect(f"sqlite:///{tmp_path}/a/b/logs.db", create=False)
    assert list(tmp_path.iterdir()) == []


def test_without_create_another_applications_sqlite_file_is_not_changed(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"app\.db holds no structflow tables"):
        connect(f"sqlite:///{path}", create=False)
    assert path.read_bytes() == before  # not even switched to the WAL journal
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]


def test_several_openers_of_a_new_store_create_it_once(store_url: str) -> None:
    errors: list[BaseException] = []
    opened: list[Store] = []

    def open_it() -> None:
        try:
            opened.append(connect(store_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for store in opened:
        store.close()
    assert (errors, len(opened), _version(store_url)) == ([], 4, VERSION)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://host/db", "store url='mysql://host/db' has an unknown scheme 'mysql'"),
        ("logs.db", "store url='logs.db' has an unknown scheme 'logs.db'"),
        ("sqlite://host/logs.db", "a SQLite url is 'sqlite:///' followed by the file's path"),
        ("sqlite:///", "a SQLite url is 'sqlite:///' followed by the file's path"),
        ("postgresql://u:secret@h:99999/db", "store url='postgresql://u:***@h:99999/db' has an"),
        ("", "store url='' is invalid"),
    ],
)
def test_a_bad_url_is_a_value_error_without_its_password(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        connect(url)


def test_an_unreachable_postgresql_is_a_store_error_without_its_password(
    pg_cluster: PostgresCluster,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StoreError) as caught:
        connect(f"postgresql://user:secret@127.0.0.1:{port}/db", timeout=2)
    text = str(caught.value)
    assert text.startswith(
        f"cannot connect to the PostgreSQL store postgresql://user:***@127.0.0.1:{port}/db: "
    )
    assert "secret" not in text


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some notes, long enough to not look like an empty database" * 20)
    with pytest.raises(StoreError, match="is not a usable SQLite database"):
        connect(f"sqlite:///{path}")
    assert path.read_text().startswith("just some notes")


def test_a_directory_path_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open"):
        connect(f"sqlite:///{tmp_path}")


def test_a_file_where_a_directory_should_be_is_named(tmp_path: Path) -> None:
    (tmp_path / "logs").write_text("not a directory")
    with pytest.raises(StoreError) as caught:
        connect(f"sqlite:///{tmp_path}/logs/today/logs.db")
    assert str(caught.value).endswith(f"({tmp_path}/logs is a file, not a directory)")
    assert (tmp_path / "logs").read_text() == "not a directory"


def test_the_sqlite_file_and_its_directories_are_created(tmp_path: Path) -> None:
    with connect(f"sqlite:///{tmp_path}/a/b/logs.db") as store:
        assert store.backend == "sqlite"
    assert (tmp_path / "a" / "b" / "logs.db").is_file()


def test_a_closed_store_says_so(store: Store) -> None:
    store.close()
    with pytest.raises(StoreError, match="the store is closed"):
        store.logs()


def _roles_block() -> str:
    """The ```sql block of the store page's "Roles" section."""
    page = (Path(__file__).parent.parent / "docs" / "store.md").read_text()
    section = page[page.index("### Roles") :]
    return section[section.index("```sql\n") + 7 : section.index("\n```", section.index("```sql"))]


def test_the_documented_grants_let_a_writer_store_once_and_a_reader_only_read(
    pg_cluster: PostgresCluster,
) -> None:
    suffix = f"{os.getpid()}_{time.monotonic_ns()}"
    schema, writer, reader = f"logs_{suffix}", f"log_writer_{suffix}", f"log_reader_{suffix}"
    pg_cluster.sql(f"CREATE SCHEMA {schema}")
    path = f"options=-csearch_path%3D{schema}"
    connect(f"{pg_cluster.url()}?{path}").close()  # the owner creates the store
    sql = (
        _roles_block()
        .replace("log_writer", writer)
        .replace("log_reader", reader)
        .replace("SCHEMA logs ", f"SCHEMA {schema} ")
        .replace("logs.", f"{schema}.")
    )
    code = "\n".join(x for x in sql.splitlines() if not x.startswith("--"))
    for statement in filter(None, (x.strip() for x in code.split(";"))):
        pg_cluster.sql(statement)

    def url(role: str) -> str:
        return f"postgresql://{role}@127.0.0.1:{pg_cluster.port}/postgres?{path}"

    with connect(url(writer)) as w:
        assert w.ingest([line("once", record_id="a1")]).stored == 1
        assert w.ingest([line("once", record_id="a1")]).duplicates == 1  # sent twice
        assert w.prune(older_than="3650d") == 0
    with connect(url(reader)) as r:
        assert [e.message for e in r.logs()] == ["once"]
        with pytest.raises(StoreError, match="permission denied for table structflow_entries"):
            r.ingest([line("refused", record_id="b1")])
        with pytest.raises(StoreError, match="permission denied for table structflow_entries"):
            r.prune(older_than="1d")
