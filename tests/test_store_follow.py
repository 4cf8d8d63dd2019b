"""Store.follow (live tail) and Store.prune (retention); on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
import threading
from collections.abc import Iterator

import pytest
from benchmarks.pgcluster import PostgresCluster

import structflow
from receivers import Diagnostics, collected, wait_until
from storelines import line
from structflow.store import Store, StoreError, connect


def take(iterator: object, n: int) -> list[str]:
    return [e.message for e in itertools.islice(iterator, n)]  # type: ignore[call-overload]


def test_follow_shows_the_latest_entries_then_each_new_one_as_it_lands(store: Store) -> None:
    store.ingest([line(f"old {i}", seconds=i) for i in range(15)])
    tail = store.follow(limit=3, poll_interval=0.02)
    assert take(tail, 3) == ["old 12", "old 13", "old 14"]
    # Landing order, even for an entry whose time is older.
    store.ingest([line("new 1", seconds=100), line("late", seconds=1.5)])
    store.ingest([line("new 2", seconds=101)])
    assert take(tail, 3) == ["new 1", "late", "new 2"]


def test_follow_applies_the_filters(store: Store) -> None:
    store.ingest([line("old error", level="error")])
    tail = store.follow(level="error", search="disk", limit=5, poll_interval=0.02)
    store.ingest(
        [
            line("disk full", seconds=1, level="error"),
            line("disk ok", seconds=2, level="info"),
            line("disk gone", seconds=3, level="critical"),
        ]
    )
    assert take(tail, 2) == ["disk full", "disk gone"]


def test_follow_after_a_cursor_starts_right_after_it(store: Store) -> None:
    store.ingest([line(f"m{i}", seconds=i) for i in range(5)])
    cursor = store.logs(limit=2)[-1].cursor
    assert take(store.follow(after=cursor, poll_interval=0.02), 3) == ["m2", "m3", "m4"]


def test_follow_ends_when_the_store_is_closed(store_url: str) -> None:
    follower = connect(store_url)
    follower.ingest([line("only")])
    timer = threading.Timer(0.3, follower.close)
    timer.start()
    try:
        assert [e.message for e in follower.follow(poll_interval=0.02)] == ["only"]
    finally:
        timer.cancel()


class _Following:
    """A ``follow()`` of its own running on a thread: what it yielded, raised and said."""

    def __init__(self, follower: Store) -> None:
        self.follower = follower
        self.seen: list[str] = []
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._consume)

    def _consume(self) -> None:
        try:
            self.seen.extend(e.message for e in self.follower.follow(poll_interval=0.05))
        except BaseException as exc:
            self.errors.append(exc)


@contextlib.contextmanager
def following(follower: Store) -> Iterator[tuple[_Following, Diagnostics]]:
    """Follow on a thread while the block runs, with the ``structflow.store`` notes collected."""
    run = _Following(follower)
    with collected("structflow.store") as notes:
        run.thread.start()
        try:
            yield run, notes
        finally:
            follower.close()  # which ends the iterator
            run.thread.join(30)


def _said(notes: Diagnostics) -> tuple[str, str]:
    """The warning that following stopped, and the info that it goes on."""
    warning, info = [r for r in notes.records if r.levelno >= logging.INFO]
    assert (warning.levelno, info.levelno) == (logging.WARNING, logging.INFO)
    return warning.getMessage(), info.getMessage()


def _warned(notes: Diagnostics) -> bool:
    return any(r.levelno == logging.WARNING for r in notes.records)


def test_follow_goes_on_after_postgresql_restarts_and_misses_nothing(
    own_pg_cluster: PostgresCluster,
) -> None:
    url = own_pg_cluster.new_schema()
    with connect(url) as writer:
        writer.ingest([line("before", seconds=0)])
    follower = connect(url)
    with following(follower) as (run, notes):
        assert wait_until(lambda: run.seen == ["before"], timeout=30)
        own_pg_cluster.crash()
        assert wait_until(lambda: _warned(notes), timeout=30)
        own_pg_cluster.start()
        with connect(url) as writer:
            # Stored while the follower is still without its connection.
            writer.ingest([line("while it was away", seconds=1)])
            assert wait_until(lambda: len(run.seen) == 2, timeout=30)
            writer.ingest([line("after", seconds=2)])
            assert wait_until(lambda: len(run.seen) == 3, timeout=30)
    assert run.errors == []
    assert run.seen == ["before", "while it was away", "after"]  # none missed, none twice
    lost, back = _said(notes)
    assert lost.startswith("lost the store while following: cannot connect to the PostgreSQL")
    assert lost.endswith("; trying again, at most every 5 s")
    assert back.startswith(f"store {follower.url}: following again, after ")


def test_follow_waits_out_a_lock_held_on_the_table_past_the_timeout(
    pg_cluster: PostgresCluster,
) -> None:
    """PostgreSQL only: SQLite's WAL journal never keeps a reader waiting."""
    import psycopg

    url = pg_cluster.new_schema()
    with connect(url) as writer:
        writer.ingest([line("before", seconds=0)])
    follower = connect(url, timeout=0.3)
    with following(follower) as (run, notes):
        assert wait_until(lambda: run.seen == ["before"], timeout=30)
        # What ALTER TABLE or VACUUM FULL would hold for as long as they run.
        with psycopg.connect(url) as locker:
            locker.execute("LOCK TABLE structflow_entries IN ACCESS EXCLUSIVE MODE")
            assert wait_until(lambda: _warned(notes), timeout=30)
        with connect(url) as writer:
            writer.ingest([line("after", seconds=1)])
        assert wait_until(lambda: len(run.seen) == 2, timeout=30)
    assert run.errors == []
    assert run.seen == ["before", "after"]
    lost, back = _said(notes)
    assert lost.startswith("held up by a lock while following: "), lost
    assert "(still locked after waiting 0.3 s); trying again" in lost
    assert back.startswith(f"store {follower.url}: following again, after ")


def test_follow_raises_when_the_database_answers_with_an_error(store_url: str) -> None:
    follower = connect(store_url)
    try:
        follower.ingest([line("only")])
        tail = follower.follow(poll_interval=0.02)
        assert take(tail, 1) == ["only"]
        with connect(store_url) as other:
            other._do("dropping", lambda d: d.query("DROP TABLE structflow_entries CASCADE"
                                                    if d.name == "postgresql" else
                                                    "DROP TABLE structflow_entries"))  # fmt: skip
        with pytest.raises(StoreError, match="following entries failed"):
            next(tail)
    finally:
        follower.close()


def test_follow_checks_its_filters_before_iterating(store: Store) -> None:
    with pytest.raises(ValueError, match="level='loud' is not a log level"):
        store.follow(level="loud")
    with pytest.raises(ValueError, match="poll_interval=0 is invalid"):
        store.follow(poll_interval=0)


def test_prune_deletes_entries_older_than_a_duration_or_before_a_time(store: Store) -> None:
    now = dt.datetime.now(dt.UTC)
    store.ingest(
        [
            line("ancient", seconds=0),  # 2024
            b'{"timestamp":"%s","message":"recent"}'
            % (now - dt.timedelta(hours=1)).isoformat().encode(),
        ]
    )
    assert store.prune(older_than="30d") == 1
    assert [e.message for e in store.logs()] == ["recent"]
    assert store.prune(older_than=now) == 1
    assert store.logs() == []


def test_pruned_entries_leave_search_and_runs(store: Store) -> None:
    store.ingest(
        [
            line("needle old", seconds=0, flow_run_id="r1", lifecycle="flow_run_started"),
            b'{"timestamp":"%s","message":"needle new"}'
            % dt.datetime.now(dt.UTC).isoformat().encode(),
        ]
    )
    store.prune(older_than=dt.timedelta(days=1))
    assert [e.message for e in store.logs(search="needle")] == ["needle new"]
    assert store.run("r1") is None
    assert store.runs() == []


def test_prune_reports_progress_in_chunks(store: Store) -> None:
    store.ingest([line(f"m{i}", seconds=i) for i in range(12_000)])
    calls: list[tuple[int, int, str]] = []
    assert store.prune(older_than="1d", progress=lambda *a: calls.append(a)) == 12_000
    assert calls == [(5000, 12000, "pruning"), (10000, 12000, "pruning"), (12000, 12000, "pruning")]


def test_prune_with_a_limit_deletes_the_oldest_that_many(store: Store) -> None:
    store.ingest([line(f"m{i}", seconds=i) for i in range(7_000)])
    assert store.prune(older_than="1d", limit=6_000) == 6_000
    assert [e.message for e in store.logs(limit=2)] == ["m6000", "m6001"]
    assert store.prune(older_than="1d", limit=6_000) == 1_000
    assert store.prune(older_than="1d", limit=6_000) == 0
    with pytest.raises(ValueError, match="limit=0 is invalid"):
        store.prune(older_than="1d", limit=0)


def test_prune_needs_a_duration_or_a_time(store: Store) -> None:
    store.ingest([line("kept")])
    with pytest.raises(ValueError, match="older_than='forever' is not a time"):
        store.prune(older_than="forever")
    assert len(store.logs()) == 1


def test_prune_without_an_age_takes_the_configured_retention(store: Store, store_url: str) -> None:
    now = dt.datetime.now(dt.UTC).isoformat().encode()
    store.ingest([line("ancient", seconds=0), b'{"timestamp":"%s","message":"now"}' % now])
    structflow.configure(stream="none", store={"url": store_url})
    with pytest.raises(ValueError, match=r"no \[logging.store\] retention_days is set"):
        store.prune()
    structflow.configure(stream="none", store={"url": store_url, "retention_days": 30})
    assert store.prune() == 1
    assert [e.message for e in store.logs()] == ["now"]
