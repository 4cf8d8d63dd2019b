"""
Scaling cases: records per second as logging threads and bound fields grow.

* ``threads:<set-up>:<T>``: T threads log concurrently through one JSON
  set-up (the rendering set-ups, run context included); the figure is the
  total rate, so a flat line means the work is serialised by the GIL and
  locks, and a falling one means contention costs extra.
* ``fields:<set-up>:<K>``: one thread logs records carrying K bound fields
  and no run context, bound the way each library's users bind them.
"""

from __future__ import annotations

import logging
import statistics
import threading
from collections.abc import Callable
from typing import Any, BinaryIO, cast

from benchmarks import rendering
from benchmarks._common import ARG, MESSAGE, BenchmarkError, Sinks, capture, check_rendered, measure

THREADS = (1, 2, 4, 8)
FIELDS = (0, 4, 16, 64)

#: Set-ups the thread cases use (names in :data:`benchmarks.rendering.SETUPS`).
THREAD_SETUPS = ("structflow.json", "pjl.orjson")
#: Set-ups the field cases use, with the way each binds fields.
FIELD_SETUPS = ("structflow.json", "pjl.orjson", "structlog.native")


def case_ids() -> list[str]:
    """Return every scaling case id."""
    ids = [f"threads:{s}:{t}" for s in THREAD_SETUPS for t in THREADS]
    ids += [f"fields:{s}:{k}" for s in FIELD_SETUPS for k in FIELDS]
    return ids


def bound_fields(count: int) -> dict[str, str]:
    """Return *count* distinct key/value pairs of realistic size."""
    return {f"field_{i:02d}": f"value-{i:02d}-abcdef" for i in range(count)}


def _threaded(loop: Callable[[int], None], threads: int) -> Callable[[int], None]:
    """Return a loop running *loop* split across *threads* threads started together."""

    def run(n: int) -> None:
        share = max(1, n // threads)
        start = threading.Barrier(threads + 1)

        def body() -> None:
            start.wait()
            loop(share)

        workers = [threading.Thread(target=body) for _ in range(threads)]
        for w in workers:
            w.start()
        start.wait()
        for w in workers:
            w.join()

    return run


def _fields_loop(setup: str, sinks: Sinks, fields: dict[str, str]) -> Callable[[int], None]:
    if setup == "structflow.json":
        import structflow
        from structflow.formatters import JsonFormatter

        structflow.configure(renderer="json", stream="none", level="INFO")
        base = structflow.get_logger("Task B")
        handler = logging.StreamHandler(sinks.text)
        handler.setFormatter(JsonFormatter())
        base.addHandler(handler)
        base.propagate = False
        sf_info = base.bind(**fields).info

        def run_sf(n: int) -> None:
            for _ in range(n):
                sf_info(MESSAGE, ARG)

        return run_sf
    if setup == "pjl.orjson":
        from pythonjsonlogger.orjson import OrjsonFormatter

        formatter = OrjsonFormatter("%(levelname)s %(name)s %(message)s", timestamp=True)
        logger = rendering._stdlib_logger("bench.pjlo", sinks, formatter)
        std_info = logger.info
        extra = dict(fields)

        def run_std(n: int) -> None:
            for _ in range(n):
                std_info(MESSAGE, ARG, extra=extra)

        return run_std
    if setup == "structlog.native":
        import orjson
        import structlog

        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.JSONRenderer(serializer=orjson.dumps),
            ],
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            logger_factory=structlog.BytesLoggerFactory(cast("BinaryIO", sinks.binary)),
            cache_logger_on_first_use=True,
        )
        sl_info = structlog.get_logger().bind(logger="bench.structlog", **fields).info

        def run_sl(n: int) -> None:
            for _ in range(n):
                sl_info(MESSAGE, ARG)

        return run_sl
    raise BenchmarkError(f"unknown field set-up {setup!r}; expected one of {FIELD_SETUPS}")


def run(case: str, quick: bool) -> dict[str, Any]:
    """
    Measure one scaling case in this process.

    Returns:
        ``ns_per_call`` (wall time per record over all threads) and samples.
    """
    kind, setup, count_text = case.split(":")
    count = int(count_text)
    sinks = Sinks.open()
    if kind == "threads":
        if setup not in THREAD_SETUPS or count not in THREADS:
            raise BenchmarkError(f"unknown thread case {case!r}; expected one of {case_ids()}")
        loops = rendering.SETUPS[setup].build(sinks)
        with capture(sinks) as read:
            loops.info(1)
            check_rendered(read(), case=case, style=loops.style, fields=loops.fields)
        loop = _threaded(loops.info, count)
    elif kind == "fields":
        if count not in FIELDS:
            raise BenchmarkError(f"unknown field count in {case!r}; expected one of {FIELDS}")
        fields = bound_fields(count)
        loop = _fields_loop(setup, sinks, fields)
        with capture(sinks) as read:
            loop(1)
            check_rendered(read(), case=case, style="json", fields=fields)
    else:
        raise BenchmarkError(f"unknown scaling kind {kind!r}; expected threads or fields")
    samples, calls = measure(loop, min_time=0.02 if quick else 0.15, samples=2 if quick else 5)
    return {
        "ns_per_call": statistics.median(samples),
        "samples": samples,
        "calls_per_sample": calls,
    }
