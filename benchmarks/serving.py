"""
Ingest cases: records into a fresh SQLite log store, locally or through ``structflow serve``.

* ``store-handler``: ``StoreHandler(url)`` on the task logger, in this
  process (render and store on the shared worker's threads);
* ``serve``: ``HTTPHandler(url, encoding="ndjson")`` to a ``structflow serve``
  subprocess on 127.0.0.1 that stores into its own fresh SQLite store.

Each case logs a burst of records with the run context, waits for
``flush()`` (a delivery barrier: every record stored), and reports records
stored per second of wall time from the first call to the barrier; then it
counts what the store holds, so a lost record fails the case.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from benchmarks._common import ARG, CONTEXT, MESSAGE, BenchmarkError

CASES = ("store-handler", "serve")
LABELS = {
    "store-handler": "StoreHandler into SQLite (local)",
    "serve": "HTTPHandler to structflow serve into SQLite",
}


@contextlib.contextmanager
def _server(store: str) -> Iterator[str]:
    """A ``structflow serve`` subprocess on a free loopback port; yields its ingest url."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "structflow.cli", "serve", "--store", store, "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("structflow serve: http://"):
            raise BenchmarkError(f"structflow serve did not start (said {line!r})")
        yield line.split()[2] + "api/logs"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _burst(handler: Any, n: int, limit: float) -> float:
    """Log *n* records through *handler*; return seconds until all were stored."""
    import structflow

    logger = structflow.get_logger("Task B")
    logger.addHandler(handler)
    logger.propagate = False
    info = logger.info
    try:
        t0 = time.perf_counter()
        with structflow.context(**CONTEXT):
            for _ in range(n):
                info(MESSAGE, ARG)
        if not handler.flush(limit):
            raise BenchmarkError(f"flush() timed out; handler stats {handler.stats()}")
        return time.perf_counter() - t0
    finally:
        logger.removeHandler(handler)


def _stored(url: str) -> int:
    from structflow.store import connect

    with connect(url) as store:
        return len(store.logs(flow_run_id=CONTEXT["flow_run_id"], limit=None))


def run(case: str, quick: bool) -> dict[str, Any]:
    """Measure one ingest path into a fresh store."""
    if case not in CASES:
        raise BenchmarkError(f"unknown ingest case {case!r}; expected one of {CASES}")
    import structflow
    from structflow.handlers import HTTPHandler, StoreHandler

    structflow.configure(stream="none", level="INFO")
    warm, n = (1000, 10_000) if quick else (5000, 100_000)
    limit = 60.0 if quick else 300.0
    with tempfile.TemporaryDirectory(prefix="structflow-bench-store-") as tmp:
        url = f"sqlite:///{os.path.join(tmp, 'logs.db')}"
        with contextlib.ExitStack() as stack:
            if case == "serve":
                target = stack.enter_context(_server(url))
                handler: Any = HTTPHandler(target, encoding="ndjson")
            else:
                handler = StoreHandler(url)
            stack.callback(handler.close)
            _burst(handler, warm, limit)
            seconds = _burst(handler, n, limit)
            dropped = sum(handler.stats()["dropped"].values())
        stored = _stored(url)
    if stored != warm + n or dropped:
        raise BenchmarkError(
            f"{case}: logged {warm + n} records, the store holds {stored} ({dropped} dropped)"
        )
    return {"stored_per_s": n / seconds, "seconds": seconds, "records": n}
