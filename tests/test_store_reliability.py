"""
StoreHandler under crashes and contention, with real processes.

* kill -9 right after a batch is stored but before the spool knows it: the
  next process stores every accepted record, none twice;
* four processes writing to one SQLite file at once: every record stored,
  no "database is locked" anywhere;
* fork: parent and child each store their own records once;
* a writer whose transaction is still open holds back every other writer,
  so entries commit in the order of their ``seq`` (``follow`` relies on it),
  for ``timeout`` seconds at most;
* PostgreSQL crashing while records flow, and records logged while it is
  down: every record stored once it is back, none twice, no error raised
  into the caller;
* a SQLite store's files removed while written: a new store is made; its
  file moved: nothing is written until it is back.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from benchmarks.pgcluster import PostgresCluster

import structflow
from receivers import collected, wait_until
from storelines import attached, line
from structflow import store
from structflow.handlers import StoreHandler

pytestmark = pytest.mark.timeout(120)


def _python(code: str, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRUCTFLOW__")}
    env["STRUCTFLOW__USER_CONFIG_PATH"] = os.devnull
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


CRASH_AFTER_STORING = """
    import os, signal, sys, threading, time
    import structflow
    from structflow.handlers import StoreHandler, store as store_handler

    url, spool = sys.argv[1], sys.argv[2]
    stored = store_handler._StoreSink.send

    def send_then_die(self, entries, timeout):
        # The first batch is stored only once every record is spooled and said
        # so (on a busy machine the sender could otherwise run ahead).
        reported.wait(60)
        outcome = stored(self, entries, timeout)
        if outcome.kind == "ok":
            # The batch is in the store; the spool still holds it as undelivered.
            os.kill(os.getpid(), signal.SIGKILL)
        return outcome

    reported = threading.Event()
    store_handler._StoreSink.send = send_then_die
    handler = StoreHandler(
        url, spool_dir=spool, fsync="always", batch_max_records=100, flush_interval=3600
    )
    logger = structflow.get_logger("crash")
    logger.addHandler(handler)
    logger.propagate = False
    for i in range(1000):
        logger.info("record %d", i)
    deadline = time.monotonic() + 60
    while handler.stats()["spooled"] < 1000 and time.monotonic() < deadline:
        time.sleep(0.01)
    print("spooled", handler.stats()["spooled"], flush=True)
    reported.set()
    handler.flush()
    print("not killed", flush=True)
"""


def test_a_process_killed_after_storing_a_batch_leaves_nothing_lost_or_doubled(
    store_url: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    child = _python(CRASH_AFTER_STORING, store_url, str(spool))
    out, err = child.communicate(timeout=90)
    assert child.returncode == -9, err
    assert out.splitlines() == ["spooled 1000"]
    with store.connect(store_url) as s:
        assert len(s.logs(limit=None)) == 100  # the batch stored before the kill

    handler = StoreHandler(store_url, spool_dir=str(spool))
    try:
        assert handler.flush(timeout=60) is True
        assert handler.stats()["adopted"] == 1000
    finally:
        handler.close()
    with store.connect(store_url) as s:
        messages = [e.message for e in s.logs(limit=None)]
    assert sorted(messages) == sorted(f"record {i}" for i in range(1000))


WRITER = """
    import json, sys, time
    import structflow
    from structflow.handlers import StoreHandler

    url, name, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
    handler = StoreHandler(url, batch_max_records=50, flush_interval=0.01, timeout=30)
    logger = structflow.get_logger("writer")
    logger.addHandler(handler)
    logger.propagate = False
    while time.time() < start:
        time.sleep(0.001)
    for i in range(2000):
        logger.info("%s record %d", name, i)
        if i % 200 == 0:
            handler.flush()
    ok = handler.flush(timeout=60)
    print(json.dumps({"flushed": ok, "stats": handler.stats()}), flush=True)
"""


def test_four_processes_write_to_one_sqlite_file_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    start = time.time() + 2.0
    writers = [_python(WRITER, url, f"p{n}", str(start)) for n in range(4)]
    results = [w.communicate(timeout=100) for w in writers]
    for writer, (out, err) in zip(writers, results, strict=True):
        assert writer.returncode == 0, err
        assert "locked" not in err.lower()
        report = json.loads(out)
        assert report["flushed"] is True
        stats = report["stats"]
        assert (stats["delivered"], sum(stats["dropped"].values()), stats["retried"]) == (
            2000,
            0,
            0,
        )
    with store.connect(url) as s:
        messages = [e.message for e in s.logs(limit=None)]
    expected = {f"p{n} record {i}" for n in range(4) for i in range(2000)}
    assert (len(messages), set(messages)) == (8000, expected)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_parent_and_forked_child_store_their_own_records_once(store_url: str) -> None:
    handler = StoreHandler(store_url, flush_interval=3600)
    with attached(handler, "forked") as logger:
        logger.info("parent before fork")
        assert handler.flush(timeout=30) is True
        logger.info("parent pending at fork")
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit status
            code = 1
            try:
                logger.info("child")
                code = 0 if handler.flush(timeout=30) else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert handler.flush(timeout=30) is True
    with store.connect(store_url) as s:
        messages = sorted(e.message for e in s.logs(limit=None))
    assert messages == ["child", "parent before fork", "parent pending at fork"]


def _open_writer(url: str) -> Any:
    """A connection of the store's database with a write transaction open, one entry inserted."""
    insert = (
        "INSERT INTO structflow_entries (uid, ts, level, levelno, logger, message, fields) "
        "VALUES ('held', 0, 'info', 20, 'raw', 'held', '{}')"
    )
    if url.startswith("sqlite"):
        conn: Any = sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
    else:
        import psycopg

        conn = psycopg.connect(url)  # not autocommit: the INSERT opens a transaction
    conn.execute(insert)
    return conn


def test_a_writer_with_an_open_transaction_holds_back_the_others(store_url: str) -> None:
    with store.connect(store_url):  # creates the schema
        pass
    held = _open_writer(store_url)
    done = threading.Event()

    def write() -> None:
        with store.connect(store_url) as s:
            s.ingest([line("after", record_id="after")])
        done.set()

    writer = threading.Thread(target=write, daemon=True)
    try:
        writer.start()
        # Had the second writer committed now, its entry would be visible
        # while one with a smaller seq could still commit.
        assert not done.wait(1.0)
    finally:
        held.commit()
        held.close()
    assert done.wait(30)
    writer.join(30)
    with store.connect(store_url) as s:
        order = "SELECT uid FROM structflow_entries ORDER BY seq"
        rows = s._do("reading", lambda d: d.query(order))
    assert [uid for (uid,) in rows] == ["held", "after"]


def test_a_lock_held_past_the_timeout_fails_the_call_and_the_handler_tries_again(
    store_url: str,
) -> None:
    with store.connect(store_url):  # creates the schema
        pass
    handler = StoreHandler(store_url, timeout=0.5, flush_interval=0.05)
    logger = structflow.get_logger("held-back")
    logger.addHandler(handler)
    logger.propagate = False
    held = _open_writer(store_url)
    try:
        locked = pytest.raises(store.StoreError, match=r"still locked after waiting 0\.5 s\)$")
        with store.connect(store_url, timeout=0.5) as s, locked:
            s.ingest([line("refused", record_id="refused")])
        logger.info("queued")
        # The handler's attempt gives up after the timeout (rather than
        # waiting for as long as the lock is held) and is tried again later.
        assert wait_until(lambda: handler.stats()["retried"] >= 1, timeout=60)
    finally:
        held.commit()
        held.close()
    try:
        assert handler.flush(timeout=60)
    finally:
        logger.removeHandler(handler)
        handler.close()
    with store.connect(store_url) as s:
        assert sorted(e.message for e in s.logs()) == ["held", "queued"]


def test_postgresql_crashing_while_records_flow_loses_and_doubles_nothing(
    own_pg_cluster: PostgresCluster,
) -> None:
    url = own_pg_cluster.new_schema()
    handler = StoreHandler(url, batch_max_records=200, flush_interval=0.05, timeout=5)
    logger = structflow.get_logger("outage")
    logger.addHandler(handler)
    logger.propagate = False
    crashed = threading.Event()

    def crash_once_records_are_stored() -> None:
        wait_until(lambda: handler.stats()["delivered"] >= 200, timeout=60)
        own_pg_cluster.crash()  # connections cut, most likely with a batch on its way
        crashed.set()

    crasher = threading.Thread(target=crash_once_records_are_stored)
    crasher.start()
    try:
        for i in range(2000):  # the server crashes somewhere in here
            logger.info("record %d", i, phase="before")
        assert crashed.wait(60)
        for i in range(2000, 3000):  # nothing listens on the port
            logger.info("record %d", i, phase="down")
        own_pg_cluster.start()
        for i in range(3000, 4000):
            logger.info("record %d", i, phase="after")
        assert handler.flush(timeout=60)
        stats = handler.stats()
    finally:
        crasher.join(60)
        logger.removeHandler(handler)
        handler.close()

    assert stats["accepted"] == stats["delivered"] == 4000
    assert sum(stats["dropped"].values()) == 0
    assert stats["retried"] > 0  # the outage was met, not missed
    with store.connect(url) as s:
        entries = s.logs(limit=None)
    messages = [e.message for e in entries]
    assert sorted(messages) == sorted(f"record {i}" for i in range(4000))  # each once
    assert len({e.id for e in entries}) == 4000


def test_an_open_store_outlives_a_postgresql_restart(own_pg_cluster: PostgresCluster) -> None:
    url = own_pg_cluster.new_schema()
    with store.connect(url) as s:
        s.ingest([line("before", seconds=0)])
        own_pg_cluster.crash()
        with pytest.raises(store.StoreError, match="cannot connect to the PostgreSQL store"):
            s.logs()
        own_pg_cluster.start()
        assert [e.message for e in s.logs()] == ["before"]
        # Its connection dies again, unnoticed until the next call, which
        # goes through on a new connection rather than failing once.
        own_pg_cluster.crash()
        own_pg_cluster.start()
        assert s.ingest([line("after", seconds=1)]).stored == 1
        own_pg_cluster.crash()
        own_pg_cluster.start()
        assert [e.message for e in s.logs()] == ["before", "after"]
        assert s.run("nope") is None


def _handler_on(url: str, name: str) -> tuple[logging.Logger, StoreHandler]:
    handler = StoreHandler(url, flush_interval=0.05)
    logger = structflow.get_logger(name)
    logger.addHandler(handler)
    logger.propagate = False
    return logger, handler


def test_a_sqlite_store_whose_files_are_removed_while_written_is_made_anew(
    tmp_path: Path,
) -> None:
    # Without this, what is written after the files are removed goes to a
    # file nobody can open again, and is counted delivered.
    url = f"sqlite:///{tmp_path / 'logs.db'}"
    logger, handler = _handler_on(url, "cleared")
    with collected("structflow.store") as notes:
        try:
            logger.info("before")
            assert handler.flush(timeout=30)
            for path in tmp_path.iterdir():  # the store and its journal
                path.unlink()
            logger.info("after")
            assert handler.flush(timeout=30)
        finally:
            logger.removeHandler(handler)
            handler.close()
    with store.connect(url, create=False) as s:
        assert [e.message for e in s.logs()] == ["after"]
    assert [r.getMessage() for r in notes.records] == [
        f"store {url}: its files were removed while it was open; a new store was made there"
    ]


def test_a_sqlite_store_moved_while_written_is_not_written_until_it_is_back(
    tmp_path: Path,
) -> None:
    # SQLite keeps part of the database in its journal (logs.db-wal), which
    # stays under the old name: a new store made there would take it for
    # its own. Records wait instead, and are stored once the file is back.
    url = f"sqlite:///{tmp_path / 'logs.db'}"
    logger, handler = _handler_on(url, "moved")
    try:
        logger.info("before")
        assert handler.flush(timeout=30)
        (tmp_path / "logs.db").rename(tmp_path / "archived.db")
        logger.info("while moved")
        assert wait_until(lambda: handler.stats()["retried"] >= 1, timeout=60)
        assert not (tmp_path / "logs.db").exists()  # nothing made in its place
        with pytest.raises(store.StoreError, match=r"logs\.db is missing but its journal"):
            store.connect(url)
        (tmp_path / "archived.db").rename(tmp_path / "logs.db")
        assert handler.flush(timeout=60)
    finally:
        logger.removeHandler(handler)
        handler.close()
    with store.connect(url) as s:
        assert [e.message for e in s.logs()] == ["before", "while moved"]


def test_a_reader_whose_sqlite_store_is_removed_says_so_and_makes_none(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'logs.db'}"
    with store.connect(url) as s:
        s.ingest([line("gone")])
    with store.connect(url, create=False) as reader:
        assert [e.message for e in reader.logs()] == ["gone"]
        for path in tmp_path.iterdir():
            path.unlink()
        for _ in range(2):
            with pytest.raises(store.StoreError, match="nothing has been stored there yet"):
                reader.logs()
        assert list(tmp_path.iterdir()) == []
        with store.connect(url) as writer:  # a writer makes the store again
            writer.ingest([line("new")])
        assert [e.message for e in reader.logs()] == ["new"]
