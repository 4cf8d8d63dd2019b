"""
The plan of the suite and its runner.

Every case runs in its own worker process (``python -m benchmarks.worker``),
once per round; within a group the rounds alternate the cases (each round
starts one case later than the previous one), so slow drifts in machine load
spread over all cases instead of landing on one. The figure of a case is the
median over rounds, reported with the minimum and maximum.
"""

from __future__ import annotations

import fnmatch
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import IO, Any

from benchmarks import rendering, scaling, serving, shipping, store
from benchmarks._common import RESULT_MARKER

# Statements timed by the import cases: (case, label, peer, statement).
IMPORTS: tuple[tuple[str, str, str, str], ...] = (
    ("python", "interpreter start (baseline)", "reference", "pass"),
    ("structflow", "import structflow", "structflow", "import structflow"),
    (
        "structflow-first-use",
        "import structflow + first get_logger",
        "structflow",
        "import structflow; structflow.get_logger('x')",
    ),
    ("logging", "import logging", "stdlib", "import logging"),
    (
        "python-json-logger",
        "import pythonjsonlogger.json",
        "python-json-logger",
        "import logging, pythonjsonlogger.json",
    ),
    ("structlog", "import structlog", "structlog", "import structlog"),
    ("loguru", "from loguru import logger", "loguru", "from loguru import logger"),
    (
        "opentelemetry",
        "import OpenTelemetry SDK logs + OTLP JSON exporter",
        "OpenTelemetry",
        "import opentelemetry.sdk._logs, opentelemetry.exporter.otlp.json.http._log_exporter",
    ),
)

SHIP_LABELS = {
    "structflow": "structflow HTTPHandler (NDJSON)",
    "structflow-gzip": "structflow HTTPHandler (NDJSON, gzip)",
    "structflow-spool": "structflow HTTPHandler (NDJSON, spool_dir)",
    "seed": "seed handler (requests.post per record)",
    "queue": "QueueHandler + thread, 1000 per POST",
    "otel": "OpenTelemetry LoggingHandler + batch + OTLP/HTTP JSON",
}
SHIP_PEERS = {
    "structflow": "structflow",
    "structflow-gzip": "structflow",
    "structflow-spool": "structflow",
    "seed": "seed handler",
    "queue": "stdlib",
    "otel": "OpenTelemetry",
}


@dataclass(frozen=True)
class Case:
    """One measured case: where it runs and how it is labelled."""

    group: str
    name: str
    label: str
    peer: str
    rounds: int
    timeout: float
    #: Rough seconds per run, for the progress estimate.
    cost: float

    @property
    def key(self) -> str:
        return f"{self.group}/{self.name}"


@dataclass
class Outcome:
    """What the rounds of one case produced."""

    case: Case
    rounds: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def build_plan(
    quick: bool,
    rounds: int | None = None,
    only: Sequence[str] | None = None,
    large_store: bool = False,
) -> list[Case]:
    """
    Return every case of the suite, in group order.

    Args:
        quick: run each case once and briefly (the smoke test).
        rounds: override the number of rounds of the repeated groups.
        only: keep only cases whose ``group/name`` matches one of these globs.
        large_store: add the query cases on a store of 5,000,000 entries.
    """
    r = rounds if rounds is not None else (1 if quick else 5)
    plan: list[Case] = []
    for cid in rendering.case_ids():
        setup = rendering.SETUPS[cid.split(":")[0]]
        variant = cid.split(":")[1]
        label = setup.label if variant == "info" else f"{setup.label}, debug filtered out"
        plan.append(Case("render", cid, label, setup.peer, r, 120, 0.15 if quick else 0.85))
    for cid in scaling.case_ids():
        kind, setup_name, count = cid.split(":")
        peer = rendering.SETUPS[setup_name].peer
        unit = "thread" if kind == "threads" else "bound field"
        plural = "" if count == "1" else "s"
        label = f"{rendering.SETUPS[setup_name].label}, {count} {unit}{plural}"
        plan.append(Case("scaling", cid, label, peer, r, 120, 0.2 if quick else 1.3))
    for sender in shipping.SENDERS:
        cost = 1.5 if quick else 5.0
        plan.append(Case("ship", sender, SHIP_LABELS[sender], SHIP_PEERS[sender], r, 300, cost))
    plan.append(
        Case(
            "ship-block",
            "structflow",
            "structflow HTTPHandler, 8 threads, when_full=block: 64 KiB vs default queue",
            "structflow",
            r,
            300,
            2.0 if quick else 25.0,
        )
    )
    # The outage cases last tens of seconds each and measure memory and
    # losses, not speed: one round.
    for sender in shipping.OUTAGE_SENDERS:
        cost = 3.0 if quick else 40.0
        plan.append(Case("outage", sender, SHIP_LABELS[sender], SHIP_PEERS[sender], 1, 300, cost))
    if shipping.syslog_ng_path() is not None:
        plan.append(
            Case(
                "syslog",
                "structflow",
                "structflow SyslogHandler to syslog-ng (TCP, RFC 5424)",
                "structflow",
                r,
                300,
                2.0 if quick else 5.0,
            )
        )
    for name in store.ingest_cases():
        plan.append(
            Case(
                "store-ingest",
                name,
                store.INGEST_LABELS[name],
                "structflow" if name.startswith("structflow") else "naive handler",
                r,
                300,
                3.0 if quick else 8.0,
            )
        )
    # Building the store takes most of a query case: one round, many repetitions within.
    for name in store.query_cases(large_store):
        big = name.endswith("5m")
        cost = 4.0 if quick else (600.0 if big else 60.0)
        label = f"queries on a {name.split('-')[0]} store of {name.split('-')[1]} entries"
        plan.append(Case("store-query", name, label, "structflow", 1, 3600 if big else 600, cost))
    for name in serving.CASES:
        cost = 3.0 if quick else 12.0
        plan.append(Case("ingest", name, serving.LABELS[name], "structflow", r, 600, cost))
    for name, label, peer, _stmt in IMPORTS:
        plan.append(Case("import", name, label, peer, r, 60, 0.1 if quick else 0.6))
    if only:
        plan = [c for c in plan if any(fnmatch.fnmatch(c.key, g) for g in only)]
    return plan


def schedule(plan: list[Case]) -> list[tuple[int, Case]]:
    """
    Return (round, case) pairs: group by group, rounds alternating the cases.

    Round ``r`` of a group starts at its ``r``-th case and wraps around.
    """
    order: list[tuple[int, Case]] = []
    groups: dict[str, list[Case]] = {}
    for case in plan:
        groups.setdefault(case.group, []).append(case)
    for cases in groups.values():
        most = max(c.rounds for c in cases)
        for r in range(most):
            shift = r % len(cases)
            for case in cases[shift:] + cases[:shift]:
                if r < case.rounds:
                    order.append((r, case))
    return order


def worker_env(tmp: str) -> dict[str, str]:
    """The environment of worker processes: no user config file, unbuffered."""
    env = dict(os.environ)
    # A user's own config file could add handlers or change levels.
    env["STRUCTFLOW__USER_CONFIG_PATH"] = os.devnull
    env["PYTHONUNBUFFERED"] = "1"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def run_worker(case: Case, quick: bool, env: dict[str, str]) -> dict[str, Any]:
    """
    Run one round of *case* in a worker process.

    Raises:
        RuntimeError: when the worker fails, times out or prints no result.
    """
    cmd = [sys.executable, "-m", "benchmarks.worker", case.group, case.name]
    if quick:
        cmd.append("--quick")
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=case.timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"timed out after {case.timeout:.0f} s") from None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            if proc.returncode != 0:
                break
            result: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
            return result
    tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
    raise RuntimeError(f"worker exited with {proc.returncode}:\n{tail}")


def run_import(case: Case, quick: bool, env: dict[str, str]) -> dict[str, Any]:
    """Time a fresh interpreter running the case's import statement (after one untimed run)."""
    stmt = {name: s for name, _l, _p, s in IMPORTS}[case.name]
    reps = 2 if quick else 5
    # Timed as an installed package is imported: from bytecode. pip writes
    # the peers' bytecode when it installs them; structflow's own (an
    # editable install in a checkout) is written by the untimed first run,
    # which PYTHONDONTWRITEBYTECODE would prevent, timing the compiler.
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    times = []
    for rep in range(reps + 1):
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", stmt],
            capture_output=True,
            text=True,
            timeout=case.timeout,
            env=env,
            check=False,
        )
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
            raise RuntimeError(f"`python -c {stmt!r}` exited with {proc.returncode}:\n{tail}")
        if rep:
            times.append(elapsed * 1e3)
    return {"ms": statistics.median(times), "samples_ms": times}


class Progress:
    """One line per finished run on a stream; a rewritten line on a terminal."""

    def __init__(self, stream: IO[str], total_cost: float, count: int) -> None:
        self.stream = stream
        self.total_cost = total_cost
        self.count = count
        self.done_cost = 0.0
        self.done = 0
        self.start = time.monotonic()
        self.tty = stream.isatty()

    def update(self, r: int, case: Case, ok: bool) -> None:
        self.done += 1
        self.done_cost += case.cost
        elapsed = time.monotonic() - self.start
        rate = elapsed / self.done_cost if self.done_cost else 1.0
        left = max(0.0, (self.total_cost - self.done_cost) * rate)
        status = "ok" if ok else "FAILED"
        line = (
            f"[{self.done:>3}/{self.count}] {_clock(elapsed)} elapsed, ~{_clock(left)} left | "
            f"round {r + 1}/{case.rounds} | {case.key} {status}"
        )
        if self.tty:
            self.stream.write("\r\033[K" + line)
            if self.done == self.count:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s"


def run_plan(
    plan: list[Case],
    quick: bool,
    progress_stream: IO[str] | None = None,
    on_error: Callable[[Case, int, str], None] | None = None,
) -> dict[str, Outcome]:
    """Run every (round, case) of *plan*; return the outcomes by case key."""
    order = schedule(plan)
    outcomes = {case.key: Outcome(case) for case in plan}
    progress = (
        Progress(progress_stream, sum(c.cost for _r, c in order), len(order))
        if progress_stream is not None
        else None
    )
    with tempfile.TemporaryDirectory(prefix="structflow-bench-") as tmp:
        env = worker_env(tmp)
        for r, case in order:
            outcome = outcomes[case.key]
            try:
                if case.group == "import":
                    result = run_import(case, quick, env)
                else:
                    result = run_worker(case, quick, env)
            except RuntimeError as exc:
                outcome.errors.append(f"round {r + 1}: {exc}")
                if on_error is not None:
                    on_error(case, r, str(exc))
                ok = False
            else:
                outcome.rounds.append(result)
                ok = True
            if progress is not None:
                progress.update(r, case, ok)
    return outcomes


def machine_info() -> dict[str, Any]:
    """Describe the machine and the software measured."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for dist in (
        "structflow",
        "structlog",
        "orjson",
        "python-json-logger",
        "loguru",
        "opentelemetry-sdk",
        "opentelemetry-exporter-otlp-json-http",
        "requests",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_at_start": list(load),
        "versions": versions,
        "syslog_ng": shipping.syslog_ng_path() is not None,
    }


def missing_peers() -> list[str]:
    """Return the peer packages the suite needs but cannot import."""
    import importlib.util

    needed = {
        "structlog": "structlog",
        "orjson": "orjson",
        "pythonjsonlogger": "python-json-logger",
        "loguru": "loguru",
        "requests": "requests",
        "opentelemetry.sdk": "opentelemetry-sdk",
        "opentelemetry.exporter.otlp.json.http": "opentelemetry-exporter-otlp-json-http",
    }
    missing = []
    for module, dist in needed.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(dist)
    return missing


def summarise(outcomes: Iterable[Outcome]) -> dict[str, Any]:
    """Return the JSON-ready results: each case's rounds and per-metric summary."""
    cases: dict[str, Any] = {}
    for o in outcomes:
        metrics: dict[str, dict[str, float]] = {}
        if o.rounds:
            for key, value in o.rounds[0].items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    values = [
                        float(r[key]) for r in o.rounds if isinstance(r.get(key), int | float)
                    ]
                    metrics[key] = {
                        "median": statistics.median(values),
                        "min": min(values),
                        "max": max(values),
                    }
        cases[o.case.key] = {
            "group": o.case.group,
            "name": o.case.name,
            "label": o.case.label,
            "peer": o.case.peer,
            "rounds": o.rounds,
            "summary": metrics,
            "errors": o.errors,
        }
    return cases
