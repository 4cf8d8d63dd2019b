"""
Log store cases: ingest into SQLite and PostgreSQL, and queries on a large store.

Ingest (group ``store-ingest``): records logged as fast as possible through a
structflow logger, then ``flush()`` as the delivery barrier; the rate is
records per second from the first call to the barrier's return. Set-ups:

* ``structflow-sqlite`` / ``structflow-postgres``: ``StoreHandler`` (the
  shared worker, a batch per transaction);
* ``naive-sqlite`` / ``naive-postgres``: the common recipe, a
  ``logging.Handler`` doing one ``INSERT`` and one ``commit()`` per record
  (``sqlite3.connect(path)`` / ``psycopg.connect(url)`` with their defaults);
* ``structflow-http``: ``HTTPHandler`` to the local receiver, the reference
  a store should keep up with.

Query (group ``store-query``): a store of N entries across 50 flow runs
(500,000 by default; 5,000,000 with ``--large-store``), then per query the
p50 and p99 over repetitions: one run's entries (``logs(flow_run_id=...,
limit=None)``), the whole table through the same API, a full-text search for
a word in ten entries, and the Python-side scan a user would otherwise write
(every message read, the word looked for in Python).

PostgreSQL runs in a throwaway cluster of the worker's own (initdb + pg_ctl
in a temporary directory, as tests/pgcluster.py makes it), with its default
settings.
"""

from __future__ import annotations

import logging
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from benchmarks._common import ARG, CONTEXT, MESSAGE, RENDERED_MESSAGE, BenchmarkError
from benchmarks._stats import (
    Results,
    Stat,
    Target,
    fmt_ns,
    fmt_ratio,
    fmt_stat,
    label,
    paired,
    speedup_rate,
    table,
    values,
)

INGEST_CASES = (
    "structflow-sqlite",
    "naive-sqlite",
    "structflow-postgres",
    "naive-postgres",
    "structflow-http",
)
INGEST_LABELS = {
    "structflow-sqlite": "structflow StoreHandler → SQLite",
    "naive-sqlite": "logging.Handler, INSERT + commit per record → SQLite",
    "structflow-postgres": "structflow StoreHandler → PostgreSQL",
    "naive-postgres": "logging.Handler, INSERT + commit per record → PostgreSQL",
    "structflow-http": "structflow HTTPHandler → local receiver",
}
#: Store sizes of the query cases: the default ones, and those of --large-store.
QUERY_SIZES = {"500k": 500_000}
LARGE_QUERY_SIZES = {"5m": 5_000_000}
QUERY_RUNS = 50
#: The rare word: in this many entries of the store.
RARE_WORD = "zebracorn"
RARE_COUNT = 10
_BATCH = 10_000


def postgres_available() -> bool:
    """Whether a PostgreSQL server and psycopg are installed."""
    import importlib.util

    from benchmarks.pgcluster import find_bindir

    return find_bindir() is not None and importlib.util.find_spec("psycopg") is not None


def query_cases(large: bool) -> list[str]:
    """The query case names: ``<backend>-<size>``."""
    sizes = {**QUERY_SIZES, **(LARGE_QUERY_SIZES if large else {})}
    backends = ["sqlite", *(["postgres"] if postgres_available() else [])]
    return [f"{b}-{s}" for s in sizes for b in backends]


def ingest_cases() -> list[str]:
    """The ingest cases this machine can run."""
    if postgres_available():
        return list(INGEST_CASES)
    return [c for c in INGEST_CASES if "postgres" not in c]


@contextmanager
def _backend(kind: str) -> Iterator[str]:
    """Yield a fresh store url of *kind* (``sqlite`` or ``postgres``)."""
    if kind == "sqlite":
        workdir = tempfile.mkdtemp(prefix="structflow-bench-store-")
        try:
            yield f"sqlite:///{workdir}/logs.db"
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    from benchmarks.pgcluster import PostgresCluster

    cluster = PostgresCluster()
    try:
        yield cluster.new_schema("bench")
    finally:
        cluster.stop()


# --- the naive recipe -----------------------------------------------------------------


def _naive_row(record: logging.LogRecord) -> tuple[Any, ...]:
    """What the naive handlers store of a record."""
    return (
        record.created,
        record.levelname,
        record.name,
        record.getMessage(),
        getattr(record, "flow_run_id", None),
        getattr(record, "task_run_id", None),
    )


class NaiveSQLiteHandler(logging.Handler):
    """One INSERT and one commit per record, as the common recipe writes it."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.conn = sqlite3.connect(path, check_same_thread=False)
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS logs (created REAL, level TEXT, logger TEXT, "
            "message TEXT, flow_run_id TEXT, task_run_id TEXT)"
        )
        self.conn.commit()

    def emit(self, record: logging.LogRecord) -> None:
        self.conn.execute(
            "INSERT INTO logs VALUES (?, ?, ?, ?, ?, ?)",
            _naive_row(record),
        )
        self.conn.commit()

    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM logs").fetchone()[0])

    def close(self) -> None:
        self.conn.close()
        super().close()


class NaivePostgresHandler(logging.Handler):
    """One INSERT and one commit per record, through psycopg."""

    def __init__(self, url: str) -> None:
        import psycopg

        super().__init__()
        self.conn = psycopg.connect(url)
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS logs (created DOUBLE PRECISION, level TEXT, "
            "logger TEXT, message TEXT, flow_run_id TEXT, task_run_id TEXT)"
        )
        self.conn.commit()

    def emit(self, record: logging.LogRecord) -> None:
        self.conn.execute(
            "INSERT INTO logs VALUES (%s, %s, %s, %s, %s, %s)",
            _naive_row(record),
        )
        self.conn.commit()

    def count(self) -> int:
        row = self.conn.execute("SELECT COUNT(*) FROM logs").fetchone()
        return int(row[0]) if row is not None else 0

    def close(self) -> None:
        self.conn.close()
        super().close()


# --- ingest ----------------------------------------------------------------------------


@contextmanager
def _ingest_target(case: str) -> Iterator[tuple[logging.Handler, Callable[[], int]]]:
    """Yield (handler, count of what arrived) for *case*."""
    if case == "structflow-http":
        from benchmarks.shipping import Receiver
        from structflow.handlers import HTTPHandler

        receiver = Receiver()
        handler: logging.Handler = HTTPHandler(receiver.url)
        try:
            yield handler, lambda: int(receiver.stats()["records"])
        finally:
            handler.close()
            receiver.stop()
        return
    kind = "sqlite" if case.endswith("sqlite") else "postgres"
    with _backend(kind) as url:
        if case.startswith("structflow"):
            from structflow import store
            from structflow.handlers import StoreHandler

            handler = StoreHandler(url)

            def stored() -> int:
                with store.connect(url) as s:
                    return int(s._do("count", _count_entries))

            try:
                yield handler, stored
            finally:
                handler.close()
            return
        naive: NaiveSQLiteHandler | NaivePostgresHandler
        if kind == "sqlite":
            naive = NaiveSQLiteHandler(url[len("sqlite:///") :])
        else:
            naive = NaivePostgresHandler(url)
        try:
            yield naive, naive.count
        finally:
            naive.close()


def _count_entries(dialect: Any) -> int:
    return int(dialect.query("SELECT COUNT(*) FROM structflow_entries")[0][0])


def _flush(handler: logging.Handler, limit: float) -> bool:
    from structflow.handlers import ShippingHandler

    if isinstance(handler, ShippingHandler):
        return handler.flush(timeout=limit)
    handler.flush()  # the naive handlers commit as they go
    return True


def run_ingest(case: str, quick: bool) -> dict[str, Any]:
    """Measure delivered records/s of one ingest set-up (flush as the barrier)."""
    if case not in INGEST_CASES:
        raise BenchmarkError(f"unknown store ingest case {case!r}; expected one of {INGEST_CASES}")
    import structflow

    naive = case.startswith("naive")
    if quick:
        warm, n = (20, 300) if naive else (1000, 5000)
    else:
        warm, n = (100, 3000) if naive else (5000, 100_000)
    limit = 60.0 if quick else 120.0
    structflow.configure(renderer="json", stream="none", level="INFO")
    logger = structflow.get_logger("Task B")
    logger.propagate = False
    with _ingest_target(case) as (handler, arrived):
        logger.addHandler(handler)
        try:
            with structflow.context(**CONTEXT):
                logger.info(MESSAGE, ARG)
                _flush(handler, limit)
                if arrived() != 1:
                    raise BenchmarkError(f"{case}: one record logged, {arrived()} arrived")
                for _ in range(warm):
                    logger.info(MESSAGE, ARG)
                _flush(handler, limit)
                t0 = time.perf_counter()
                for _ in range(n):
                    logger.info(MESSAGE, ARG)
                flushed = _flush(handler, limit)
                elapsed = time.perf_counter() - t0
            total = arrived()
        finally:
            logger.removeHandler(handler)
    if not flushed or total != 1 + warm + n:
        raise BenchmarkError(f"{case}: logged {1 + warm + n}, {total} arrived (flush {flushed})")
    return {"delivered_per_s": n / elapsed, "sent": n, "arrived": total, "seconds": elapsed}


# --- queries ---------------------------------------------------------------------------


def _lines(entries: int) -> Iterator[list[bytes]]:
    """Batches of JSON lines: *entries* across 50 runs, RARE_COUNT of them with the rare word."""
    per_run = entries // QUERY_RUNS
    rare = set(random.Random(7).sample(range(entries), RARE_COUNT))
    base = 1_717_243_200.0
    batch: list[bytes] = []
    n = 0
    for run in range(QUERY_RUNS):
        context = {
            "flow_name": f"flow-{run % 5}",
            "flow_run_id": f"run-{run:03d}",
            "task_name": "Task B",
            "task_run_id": f"task-{run:03d}",
        }
        for i in range(per_run):
            ts = base + n * 0.001
            sec = int(ts)
            message = f"{RENDERED_MESSAGE} step {i}" + (f" {RARE_WORD}" if n in rare else "")
            batch.append(
                orjson.dumps(
                    {
                        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
                        + f".{int((ts - sec) * 1e6):06d}Z",
                        "level": "info" if i % 10 else "warning",
                        "logger": "structflow.Task B",
                        "message": message,
                        **context,
                        "map_index": None,
                        "task_run_count": 1,
                        "rows": i % 100,
                        "_record_id": f"bench-{n}",
                    }
                )
            )
            n += 1
            if len(batch) == _BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def _times(call: Callable[[], object], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        call()
        out.append(time.perf_counter() - t0)
    return sorted(out)


def _p(values_: list[float], q: float) -> float:
    return values_[min(len(values_) - 1, round(q * (len(values_) - 1)))]


def run_query(case: str, quick: bool) -> dict[str, Any]:
    """Build a store, then time each query; p50/p99 in seconds."""
    kind, _, size = case.partition("-")
    sizes = {**QUERY_SIZES, **LARGE_QUERY_SIZES}
    if kind not in ("sqlite", "postgres") or size not in sizes:
        raise BenchmarkError(f"unknown store query case {case!r}")
    from structflow import store

    entries = 20_000 if quick else sizes[size]
    reps = (5, 2, 10) if quick else (40, 3, 40)
    with _backend(kind) as url, store.connect(url) as s:
        t0 = time.perf_counter()
        for batch in _lines(entries):
            s.ingest(batch)
        build_s = time.perf_counter() - t0
        rng = random.Random(1)
        per_run = entries // QUERY_RUNS

        def one_run() -> None:
            got = s.logs(flow_run_id=f"run-{rng.randrange(QUERY_RUNS):03d}", limit=None)
            if len(got) != per_run:
                raise BenchmarkError(f"{case}: a run has {len(got)} entries, not {per_run}")

        def everything() -> None:
            if len(s.logs(limit=None)) != entries:
                raise BenchmarkError(f"{case}: the whole table is not {entries} entries")

        def search() -> None:
            if len(s.logs(search=RARE_WORD)) != RARE_COUNT:
                raise BenchmarkError(f"{case}: the search did not find {RARE_COUNT} entries")

        def scan() -> None:
            messages = s._do("scan", lambda d: d.query("SELECT message FROM structflow_entries"))
            found = [m for (m,) in messages if RARE_WORD in m.lower().split()]
            if len(found) != RARE_COUNT:
                raise BenchmarkError(f"{case}: the scan did not find {RARE_COUNT} entries")

        run_t = _times(one_run, reps[0])
        # Millions of entries as objects would take gigabytes: the whole-table
        # read (the baseline of the 500k ratio) is left out of the large cases.
        all_t = _times(everything, reps[1]) if entries <= 1_000_000 else []
        search_t = _times(search, reps[2])
        scan_t = _times(scan, reps[1])
    full = {"full_p50_s": _p(all_t, 0.5), "full_p99_s": _p(all_t, 0.99)} if all_t else {}
    return {
        "entries": entries,
        "build_s": build_s,
        "ingest_per_s": entries / build_s,
        "run_p50_s": _p(run_t, 0.5),
        "run_p99_s": _p(run_t, 0.99),
        **full,
        "search_p50_s": _p(search_t, 0.5),
        "search_p99_s": _p(search_t, 0.99),
        "scan_p50_s": _p(scan_t, 0.5),
        "scan_p99_s": _p(scan_t, 0.99),
    }


# --- report ----------------------------------------------------------------------------


def _rate(results: Results, case: str) -> list[float]:
    return values(results, f"store-ingest/{case}", "delivered_per_s")


def _query_ratio(results: Results, case: str, slow: str, fast: str) -> Stat | None:
    key = f"store-query/{case}"
    return Stat.of(
        paired(values(results, key, slow), values(results, key, fast), lambda s, f: s / f)
    )


def store_targets(results: Results) -> list[Target]:
    """The log store's speed targets, for the backends that were measured."""
    out = []
    http = _rate(results, "structflow-http")
    for backend, name in (("sqlite", "SQLite"), ("postgres", "PostgreSQL")):
        own = _rate(results, f"structflow-{backend}")
        if not own:
            continue
        out.append(
            Target(
                f"StoreHandler → {name} vs INSERT + commit per record",
                speedup_rate(own, _rate(results, f"naive-{backend}")),
                30.0,
                True,
            )
        )
        out.append(
            Target(f"StoreHandler → {name} vs HTTPHandler", speedup_rate(own, http), 0.5, True)
        )
        case = f"{backend}-500k"
        out.append(
            Target(
                f"{name}, 500k entries: one run's entries vs the whole table",
                _query_ratio(results, case, "full_p50_s", "run_p50_s"),
                10.0,
                True,
            )
        )
        out.append(
            Target(
                f"{name}, 500k entries: full-text search vs a Python scan",
                _query_ratio(results, case, "scan_p50_s", "search_p50_s"),
                5.0,
                True,
            )
        )
    return out


def store_section(results: Results) -> str:
    """Tables of the store cases: ingest rates, and query latencies per store size."""
    parts = []
    rows = []
    for case in INGEST_CASES:
        rates = _rate(results, case)
        if rates:
            rows.append([label(results, f"store-ingest/{case}"), fmt_stat(Stat.of(rates), _count)])
    if rows:
        parts.append("**Ingest** (records stored per second, flush as the barrier)\n")
        parts.append(table(["set-up", "records/s"], rows))
    qrows = []
    for case in sorted(
        (c["name"] for c in results["cases"].values() if c["group"] == "store-query"),
        key=lambda name: (name.split("-")[0], len(name)),
    ):
        key = f"store-query/{case}"

        def cell(metric: str, key: str = key) -> str:
            return fmt_stat(Stat.of([v * 1e9 for v in values(results, key, metric)]), fmt_ns)

        entries = values(results, key, "entries")
        qrows.append(
            [
                f"{case.split('-')[0]}, {_count(entries[0]) if entries else '?'} entries",
                f"{cell('run_p50_s')} / {cell('run_p99_s')}",
                f"{cell('full_p50_s')} / {cell('full_p99_s')}",
                f"{cell('search_p50_s')} / {cell('search_p99_s')}",
                f"{cell('scan_p50_s')} / {cell('scan_p99_s')}",
                fmt_ratio(_query_ratio(results, case, "full_p50_s", "run_p50_s")),
                fmt_ratio(_query_ratio(results, case, "scan_p50_s", "search_p50_s")),
            ]
        )
    if qrows:
        parts.append(
            "\n**Queries** (p50 / p99; a run is 1/50 of the store; the rare word is in "
            f"{RARE_COUNT} entries)\n"
        )
        parts.append(
            table(
                [
                    "store",
                    "one run's entries",
                    "whole table via logs()",
                    "search (rare word)",
                    "Python scan",
                    "run vs whole table",
                    "search vs scan",
                ],
                qrows,
            )
        )
    return "\n".join(parts)


def _count(x: float) -> str:
    from benchmarks._stats import fmt_count

    return fmt_count(x)
