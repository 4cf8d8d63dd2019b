"""
Helpers shared by the benchmark workers: the record every case logs, timing
loops, output capture and small statistics.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

#: The message every case logs, with one ``%s`` argument (as in the seed page).
MESSAGE = "Beginning to run Task B with input %s"
#: The same message for loguru, whose users write ``{}`` placeholders.
MESSAGE_BRACES = "Beginning to run Task B with input {}"
ARG = 3
RENDERED_MESSAGE = "Beginning to run Task B with input 3"

#: The run context each record carries (the four fields of a task run).
CONTEXT: dict[str, str] = {
    "flow_name": "logging-example",
    "flow_run_id": "6c1d2a9e-3b5f-4c8a-9d7e-0f1a2b3c4d5e",
    "task_name": "Task B",
    "task_run_id": "a7b8c9d0-e1f2-4a3b-8c4d-5e6f7a8b9c0d",
}
#: The key the ``bind`` cases add on top of the run context.
BIND_KEY = "run_id"
BIND_VALUE = "r-20240601-0001"
#: The two keys the structlog comparison binds on top of the run context.
BIND_TWO: dict[str, str] = {BIND_KEY: BIND_VALUE, "request_id": "q-5e1d7c2a"}

CLASSIC_FORMAT = "[%(asctime)s] %(levelname)s - %(name)s | %(message)s"
CLASSIC_DATEFMT = "%Y-%m-%d %H:%M:%S%z"

#: Marks the line a worker prints its result on, so stray output cannot be
#: mistaken for it.
RESULT_MARKER = "BENCHMARK-RESULT "


_LOGFMT_PAIR = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)')


class BenchmarkError(Exception):
    """A case could not be set up or produced wrong output."""


@dataclass(frozen=True)
class Sinks:
    """The ``/dev/null`` files a case writes to (text and binary)."""

    text: IO[str]
    binary: IO[bytes]

    @classmethod
    def open(cls) -> Sinks:
        """Open both sinks on ``os.devnull``."""
        return cls(open(os.devnull, "w"), open(os.devnull, "wb"))


@contextlib.contextmanager
def capture(sinks: Sinks) -> Iterator[Callable[[], str]]:
    """
    Point both sinks' file descriptors at a temporary file for the block.

    The logging libraries keep their own references to the sink objects, so
    the descriptor is swapped underneath them rather than the objects.

    Yields:
        A function returning what was written so far, decoded as UTF-8.
    """
    files: list[IO[Any]] = [sinks.text, sinks.binary]
    with tempfile.TemporaryFile() as tmp:
        saved = []
        for f in files:
            f.flush()
            saved.append(os.dup(f.fileno()))
            os.dup2(tmp.fileno(), f.fileno())

        def read() -> str:
            for f in files:
                f.flush()
            tmp.seek(0)
            return tmp.read().decode("utf-8")

        try:
            yield read
        finally:
            for f, fd in zip(files, saved, strict=True):
                f.flush()
                os.dup2(fd, f.fileno())
                os.close(fd)


def measure(
    run: Callable[[int], object], *, min_time: float, samples: int
) -> tuple[list[float], int]:
    """
    Time ``run(n)`` (n calls) and return nanoseconds per call for each sample.

    The loop count doubles until one run lasts at least *min_time* seconds;
    those calibration runs are the warm-up. Then *samples* runs of that length
    are timed.

    Returns:
        (ns per call for each sample, calls per sample)
    """
    n = 8
    target = min_time * 1e9
    while True:
        t0 = time.perf_counter_ns()
        run(n)
        dt = time.perf_counter_ns() - t0
        if dt >= target:
            break
        grow = target / dt * 1.1 if dt > 0 else 10.0
        n = int(n * min(max(grow, 2.0), 10.0))
    values = []
    for _ in range(samples):
        t0 = time.perf_counter_ns()
        run(n)
        values.append((time.perf_counter_ns() - t0) / n)
    return values, n


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Return the *q* quantile (0..1) of already sorted values, nearest rank."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    index = max(0, min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1))))
    return float(sorted_values[index])


def summary(values: Sequence[float]) -> dict[str, float]:
    """Return median, min and max of *values*."""
    return {
        "median": float(statistics.median(values)),
        "min": float(min(values)),
        "max": float(max(values)),
    }


def rss_bytes() -> int:
    """Return the current resident set size of this process."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def collect_strings(obj: object) -> set[str]:
    """Return every string (keys and values) found in a parsed JSON document."""
    found: set[str] = set()
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.add(item)
        elif isinstance(item, Mapping):
            for k, v in item.items():
                found.add(str(k))
                stack.append(v)
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif item is not None:
            found.add(str(item))
    return found


def check_rendered(
    text: str, *, case: str, style: str, fields: Mapping[str, str], message: str = RENDERED_MESSAGE
) -> None:
    """
    Check that *text* is exactly one rendered record carrying *fields*.

    Args:
        text: what the case wrote for one call.
        case: the case name, for the error message.
        style: ``json`` (parsed, fields looked up anywhere in the object),
            ``logfmt`` (``key=value`` pairs) or ``text`` (message only).
        fields: the fields the record must carry.
        message: the rendered message the record must contain.

    Raises:
        BenchmarkError: when the output is not one record with those fields.
    """
    lines = text.splitlines()
    if len(lines) != 1:
        raise BenchmarkError(f"{case}: expected one line for one call, got {len(lines)}: {text!r}")
    line = lines[0]
    if style == "json":
        try:
            doc = json.loads(line)
        except ValueError as exc:
            raise BenchmarkError(f"{case}: output is not JSON ({exc}): {line!r}") from None
        strings = collect_strings(doc)
        missing = [k for k, v in fields.items() if k not in strings or v not in strings]
        if message not in strings:
            raise BenchmarkError(f"{case}: message {message!r} not in {line!r}")
    elif style == "logfmt":
        pairs = {}
        for m in _LOGFMT_PAIR.finditer(line):
            value = m.group(2)
            if value.startswith('"'):
                value = json.loads(value)
            pairs[m.group(1)] = value
        missing = [k for k, v in fields.items() if pairs.get(k) != v]
        if message not in line:
            raise BenchmarkError(f"{case}: message {message!r} not in {line!r}")
    elif style == "text":
        missing = [k for k, v in fields.items() if v not in line]
        if message not in line:
            raise BenchmarkError(f"{case}: message {message!r} not in {line!r}")
    else:
        raise ValueError(f"unknown output style {style!r}; expected json, logfmt or text")
    if missing:
        raise BenchmarkError(f"{case}: fields {missing} missing from {line!r}")
