"""
Shipping cases: records sent to a local receiver on 127.0.0.1.

Senders:

* ``structflow`` / ``structflow-gzip`` / ``structflow-spool``:
  ``structflow.handlers.HTTPHandler(url, encoding="ndjson", ...)``;
* ``seed``: the seed page's handler, one ``requests.post`` per record;
* ``queue``: a plain ``QueueHandler`` and a thread that batches up to 1,000
  records per POST with a ``requests.Session`` (the naive reference);
* ``otel``: OpenTelemetry's SDK ``LoggingHandler`` with its
  ``BatchLogRecordProcessor`` and the OTLP/HTTP JSON exporter.

``run_ship`` measures caller latency per call (p50/p99/max), the caller's
cost per record, and the delivered rate (records counted by the receiver per
second of wall time from the first call to the last delivery).
``run_outage`` logs at a fixed rate while the receiver is down and reports
peak RSS and records dropped or spooled. ``run_block`` times a burst from 8
threads with ``when_full="block"`` and a 64 KiB queue against the same burst
with the default queue. ``run_syslog`` ships to a real syslog-ng.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import logging.handlers
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from benchmarks._common import (
    ARG,
    CONTEXT,
    MESSAGE,
    BenchmarkError,
    check_rendered,
    percentile,
    rss_bytes,
)

SENDERS = ("structflow", "structflow-gzip", "structflow-spool", "seed", "queue", "otel")
OUTAGE_SENDERS = ("structflow", "structflow-spool", "seed", "queue", "otel")

#: Records per second logged during the outage cases.
OUTAGE_RATE = 5000
#: Records per POST in the naive queue reference.
QUEUE_BATCH = 1000

# --- the receiver process -------------------------------------------------------


class Receiver:
    """A ``benchmarks.receiver`` process on 127.0.0.1."""

    def __init__(self, port: int = 0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.receiver", "--port", str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.proc.kill()
            raise BenchmarkError(f"the receiver did not start (said {line!r})")
        self.port = int(line.split()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def _request(self, method: str, path: str) -> bytes:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path)
            return conn.getresponse().read()
        finally:
            conn.close()

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self._request("GET", "/_stats"))
        return result

    def reset(self) -> None:
        self._request("POST", "/_reset")

    def last_body(self) -> bytes:
        """The last body delivered, decoded (the seed handler's message for its requests)."""
        return self._request("GET", "/_last")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def wait_for(self, expected: int, *, settle: float, limit: float) -> dict[str, Any]:
        """
        Poll until *expected* records arrived, or the count stopped moving.

        Args:
            expected: records that would make delivery complete.
            settle: seconds without progress after which delivery is over.
            limit: seconds after which to stop waiting regardless.
        """
        deadline = time.monotonic() + limit
        last = -1
        last_change = time.monotonic()
        while True:
            stats = self.stats()
            now = time.monotonic()
            if stats["records"] >= expected or now >= deadline:
                return stats
            if stats["records"] != last:
                last = stats["records"]
                last_change = now
            elif now - last_change >= settle:
                return stats
            time.sleep(0.02)


# --- senders ------------------------------------------------------------------------


@dataclass
class Sender:
    """One shipping set-up: its timed loops, its barrier and its counters."""

    run: Callable[[int], None]
    run_timed: Callable[[int], list[int]]
    flush: Callable[[float], bool]
    close: Callable[[], None]
    stats: Callable[[], dict[str, Any]] = dict
    raised: list[int] = field(default_factory=lambda: [0])
    spool_dir: str | None = None


def _structflow_loops(
    info: Callable[..., None],
) -> tuple[Callable[[int], None], Callable[[int], list[int]]]:
    import structflow

    def run(n: int) -> None:
        with structflow.context(**CONTEXT):
            for _ in range(n):
                info(MESSAGE, ARG)

    def run_timed(n: int) -> list[int]:
        clock = time.perf_counter_ns
        out = [0] * n
        with structflow.context(**CONTEXT):
            for i in range(n):
                t0 = clock()
                info(MESSAGE, ARG)
                out[i] = clock() - t0
        return out

    return run, run_timed


def _stdlib_loops(
    info: Callable[..., None], raised: list[int]
) -> tuple[Callable[[int], None], Callable[[int], list[int]]]:
    """Loops for stdlib loggers; exceptions a handler raises into the caller are counted."""
    extra = dict(CONTEXT)

    def run(n: int) -> None:
        for _ in range(n):
            try:
                info(MESSAGE, ARG, extra=extra)
            except Exception:
                raised[0] += 1

    def run_timed(n: int) -> list[int]:
        clock = time.perf_counter_ns
        out = [0] * n
        for i in range(n):
            t0 = clock()
            try:
                info(MESSAGE, ARG, extra=extra)
            except Exception:
                raised[0] += 1
            out[i] = clock() - t0
        return out

    return run, run_timed


def _stdlib_logger(name: str, handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def structflow_sender(url: str, *, gzip: bool = False, spool_dir: str | None = None) -> Sender:
    import structflow
    from structflow.handlers import HTTPHandler

    structflow.configure(renderer="json", stream="none", level="INFO")
    kwargs: dict[str, Any] = {"encoding": "ndjson", "gzip": gzip}
    if spool_dir is not None:
        kwargs["spool_dir"] = spool_dir
    handler = HTTPHandler(url, **kwargs)
    logger = structflow.get_logger("Task B")
    logger.addHandler(handler)
    logger.propagate = False
    run, run_timed = _structflow_loops(logger.info)

    def flush(timeout: float) -> bool:
        return bool(handler.flush(timeout))

    def close() -> None:
        logger.removeHandler(handler)
        handler.close()

    def stats() -> dict[str, Any]:
        return dict(handler.stats())

    return Sender(run, run_timed, flush, close, stats)


class SeedHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """
    The seed page's handler: one blocking ``requests.post`` per record.

    Like the page's, it lets any error escape into the caller.
    """

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def emit(self, record: logging.LogRecord) -> None:
        import requests

        requests.post(self.url, params={"msg": record.getMessage()}, timeout=10)


def seed_sender(url: str) -> Sender:
    logger = _stdlib_logger("bench.seed", SeedHandler(url))
    raised = [0]
    run, run_timed = _stdlib_loops(logger.info, raised)
    # Nothing is ever pending: each call returns after its POST.
    return Sender(run, run_timed, lambda timeout: True, lambda: None, raised=raised)


class BatchingQueueShipper:
    """
    The naive reference: ``QueueHandler`` in front, one thread behind it
    POSTing NDJSON batches of up to 1,000 records with a ``requests.Session``.

    A failed POST drops its batch (counted); the queue is unbounded.
    """

    def __init__(self, url: str) -> None:
        import requests

        self.url = url
        self.queue: queue.SimpleQueue[logging.LogRecord | None] = queue.SimpleQueue()
        self.handler = logging.handlers.QueueHandler(self.queue)
        self.session = requests.Session()
        self.accepted = 0
        self.done = 0
        self.dropped = 0
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._work, name="queue-shipper", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        import orjson

        get = self.queue.get
        get_nowait = self.queue.get_nowait
        keys = tuple(CONTEXT)
        while True:
            first = get()
            if first is None:
                return
            batch = [first]
            with contextlib.suppress(queue.Empty):
                while len(batch) < QUEUE_BATCH:
                    item = get_nowait()
                    if item is None:
                        self.queue.put(None)
                        break
                    batch.append(item)
            lines = []
            for rec in batch:
                doc = {
                    "timestamp": rec.created,
                    "level": rec.levelname,
                    "logger": rec.name,
                    "message": rec.msg,
                }
                for k in keys:
                    doc[k] = getattr(rec, k, None)
                lines.append(orjson.dumps(doc))
            body = b"\n".join(lines) + b"\n"
            try:
                resp = self.session.post(
                    self.url,
                    data=body,
                    headers={"Content-Type": "application/x-ndjson"},
                    timeout=10,
                )
                ok = resp.status_code < 300
            except Exception:
                ok = False
            with self._cond:
                if not ok:
                    self.dropped += len(batch)
                self.done += len(batch)
                self._cond.notify_all()

    def count_accepted(self, n: int) -> None:
        with self._cond:
            self.accepted += n

    def flush(self, timeout: float) -> bool:
        with self._cond:
            target = self.accepted
            return self._cond.wait_for(lambda: self.done >= target, timeout)

    def close(self) -> None:
        self.queue.put(None)
        self._thread.join(10)
        self.session.close()


def queue_sender(url: str) -> Sender:
    shipper = BatchingQueueShipper(url)
    logger = _stdlib_logger("bench.queue", shipper.handler)
    raised = [0]
    base_run, base_timed = _stdlib_loops(logger.info, raised)

    def run(n: int) -> None:
        shipper.count_accepted(n)
        base_run(n)

    def run_timed(n: int) -> list[int]:
        shipper.count_accepted(n)
        return base_timed(n)

    def stats() -> dict[str, Any]:
        return {"dropped": shipper.dropped, "queued": shipper.accepted - shipper.done}

    return Sender(run, run_timed, shipper.flush, shipper.close, stats, raised)


def otel_sender(url: str) -> Sender:
    from opentelemetry.exporter.otlp.json.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    provider = LoggerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=url + "v1/logs"))
    )
    handler = LoggingHandler(level=logging.NOTSET, logger_provider=provider)
    logger = _stdlib_logger("bench.otel", handler)
    raised = [0]
    run, run_timed = _stdlib_loops(logger.info, raised)

    def flush(timeout: float) -> bool:
        return bool(provider.force_flush(int(timeout * 1000)))

    def close() -> None:
        logger.removeHandler(handler)
        provider.shutdown()

    return Sender(run, run_timed, flush, close, raised=raised)


@contextlib.contextmanager
def make_sender(name: str, url: str) -> Iterator[Sender]:
    """Build sender *name* pointed at *url*; close it (and its spool) afterwards."""
    spool: str | None = None
    if name == "structflow":
        sender = structflow_sender(url)
    elif name == "structflow-gzip":
        sender = structflow_sender(url, gzip=True)
    elif name == "structflow-spool":
        spool = tempfile.mkdtemp(prefix="structflow-bench-spool-")
        sender = structflow_sender(url, spool_dir=spool)
    elif name == "seed":
        sender = seed_sender(url)
    elif name == "queue":
        sender = queue_sender(url)
    elif name == "otel":
        sender = otel_sender(url)
    else:
        raise BenchmarkError(f"unknown sender {name!r}; expected one of {SENDERS}")
    sender.spool_dir = spool
    try:
        yield sender
    finally:
        sender.close()
        if spool is not None:
            shutil.rmtree(spool, ignore_errors=True)


def _latency(values: list[int]) -> dict[str, float]:
    values.sort()
    return {
        "p50_ns": percentile(values, 0.50),
        "p99_ns": percentile(values, 0.99),
        "max_ns": float(values[-1]),
        "mean_ns": statistics.fmean(values),
    }


def _deliver(sender: Sender, receiver: Receiver, expected: int, limit: float) -> dict[str, Any]:
    """Flush *sender* and wait until the receiver has what it will get."""
    sender.flush(limit)
    return receiver.wait_for(expected, settle=1.5, limit=limit)


def _check_shipped(case: str, body: bytes) -> None:
    """Check that one shipped record has the message and (but for the seed page) the context."""
    text = body.decode("utf-8")
    if case == "seed":
        check_rendered(text, case=case, style="text", fields={})
    elif case == "otel":
        # OTLP/JSON spreads a record over nested objects: flatten to one line.
        check_rendered(json.dumps(json.loads(text)), case=case, style="json", fields=CONTEXT)
    else:
        check_rendered(text, case=case, style="json", fields=CONTEXT)


def run_ship(case: str, quick: bool) -> dict[str, Any]:
    """
    Measure one sender against a fresh receiver.

    Phases: a check (one record must arrive), a warm-up, a latency phase
    timing each call, and a throughput phase timing the whole burst and
    counting deliveries.
    """
    if case not in SENDERS:
        raise BenchmarkError(f"unknown sender {case!r}; expected one of {SENDERS}")
    slow = case == "seed"
    if quick:
        warm, lat_n, thr_n = (20, 50, 150) if slow else (1000, 3000, 10_000)
    else:
        warm, lat_n, thr_n = (50, 500, 2000) if slow else (5000, 20_000, 100_000)
    limit = 30.0 if quick else 60.0
    receiver = Receiver()
    try:
        with make_sender(case, receiver.url) as sender:
            sender.run(1)
            got = _deliver(sender, receiver, 1, limit)["records"]
            if got != 1:
                raise BenchmarkError(f"{case}: one record sent, the receiver counted {got}")
            _check_shipped(case, receiver.last_body())
            receiver.reset()

            sender.run(warm)
            _deliver(sender, receiver, warm, limit)
            receiver.reset()

            latencies = sender.run_timed(lat_n)
            _deliver(sender, receiver, lat_n, limit)
            receiver.reset()

            wall0 = time.time()
            t0 = time.perf_counter_ns()
            sender.run(thr_n)
            emit_ns = (time.perf_counter_ns() - t0) / thr_n
            flushed = sender.flush(limit)
            stats = receiver.wait_for(thr_n, settle=1.5, limit=limit)
            sender_stats = sender.stats()
            raised = sender.raised[0]
    finally:
        receiver.stop()
    delivered = int(stats["records"])
    if delivered and stats["last"] is not None:
        elapsed = max(float(stats["last"]) - wall0, 1e-9)
        rate = delivered / elapsed
    else:
        rate = 0.0
    if case.startswith("structflow") and (delivered != thr_n or not flushed):
        raise BenchmarkError(
            f"{case}: sent {thr_n} records, {delivered} delivered, flush returned {flushed}; "
            f"handler stats {sender_stats}"
        )
    return {
        "delivered_per_s": rate,
        "emit_ns_per_call": emit_ns,
        **_latency(latencies),
        "sent": thr_n,
        "delivered": delivered,
        "lost": max(0, thr_n - delivered),
        "requests": stats["requests"],
        "bytes": stats["bytes"],
        "raised_into_caller": raised,
        "flush_returned": flushed,
        "sender_stats": sender_stats,
    }


#: Logging threads of the block case, and the small queue it compares.
BLOCK_THREADS = 8
BLOCK_QUEUE = 65_536


def _block_burst(url: str, name: str, records: int, small: bool) -> dict[str, Any]:
    """
    Log *records* short records from each of :data:`BLOCK_THREADS` threads, then flush.

    With *small*, the handler has ``when_full="block"`` and a
    :data:`BLOCK_QUEUE`-byte queue; otherwise the defaults.
    """
    import structflow
    from structflow.handlers import HTTPHandler

    structflow.configure(renderer="json", stream="none", level="INFO")
    options: dict[str, Any] = (
        {"max_queue_bytes": BLOCK_QUEUE, "when_full": "block"} if small else {}
    )
    handler = HTTPHandler(url, **options)
    logger = _stdlib_logger(name, handler)
    start = threading.Barrier(BLOCK_THREADS + 1)

    def work(thread: int) -> None:
        start.wait()
        for i in range(records):
            logger.info("t%d", thread, extra={"worker": thread, "seq": i})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(BLOCK_THREADS)]
    try:
        for t in threads:
            t.start()
        start.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        flushed = handler.flush(60.0)
        seconds = time.perf_counter() - t0
        stats = dict(handler.stats())
    finally:
        logger.removeHandler(handler)
        handler.close()
    expected = records * BLOCK_THREADS
    if not flushed or stats["delivered"] != expected:
        raise BenchmarkError(
            f"block: {expected} records sent, {stats['delivered']} delivered, flush returned "
            f"{flushed}; handler stats {stats}"
        )
    return {"seconds": seconds, "stats": stats}


def run_block(case: str, quick: bool) -> dict[str, Any]:
    """
    Time one burst from 8 threads with a 64 KiB queue in block mode and with the default queue.

    The two set-ups run in this process one after the other against the same
    receiver (the order alternates between two pairs of runs); the figure is
    the ratio of their completion times (from the first call to the end of
    the flush), which is 1 when a small queue costs nothing.
    """
    if case != "structflow":
        raise BenchmarkError(f"unknown block case {case!r}; expected 'structflow'")
    records = 2000 if quick else 20_000
    receiver = Receiver()
    small: list[float] = []
    large: list[float] = []
    requests = 0
    try:
        for pair in range(2):
            for is_small in (True, False) if pair % 2 == 0 else (False, True):
                receiver.reset()
                out = _block_burst(
                    receiver.url, f"bench.block.{pair}.{is_small}", records, is_small
                )
                (small if is_small else large).append(out["seconds"])
                if is_small:
                    requests += int(receiver.stats()["requests"])
    finally:
        receiver.stop()
    small_s, large_s = statistics.fmean(small), statistics.fmean(large)
    return {
        "ratio": small_s / large_s,
        "small_queue_s": small_s,
        "default_queue_s": large_s,
        "records": records * BLOCK_THREADS,
        "small_queue_requests": requests / len(small),
    }


def _paced(run: Callable[[int], None], rate: int, seconds: float) -> tuple[int, int]:
    """
    Log at *rate* records/s for *seconds*, in 10 ms ticks.

    A caller that falls behind does not catch up past the end of the window.

    Returns:
        (records logged, the slowest tick's length in ns)
    """
    per_tick = max(1, rate // 100)
    start = time.monotonic()
    end = start + seconds
    sent = 0
    slowest = 0
    tick = 0
    while True:
        now = time.monotonic()
        if now >= end:
            return sent, slowest
        due = start + tick * 0.01
        if now < due:
            time.sleep(due - now)
        t0 = time.perf_counter_ns()
        run(per_tick)
        slowest = max(slowest, time.perf_counter_ns() - t0)
        sent += per_tick
        tick += 1


class RssSampler:
    """Sample this process's RSS every 50 ms in a thread; keep the peak."""

    def __init__(self) -> None:
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def _dir_bytes(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(root, name))
    return total


def run_outage(case: str, quick: bool) -> dict[str, Any]:
    """
    Log at a fixed rate while the receiver is down, then bring it back.

    Phases: receiver up (a short warm phase), receiver stopped for the
    outage window, receiver restarted on the same port and given a bounded
    time to receive the backlog.
    """
    if case not in OUTAGE_SENDERS:
        raise BenchmarkError(f"unknown outage sender {case!r}; expected one of {OUTAGE_SENDERS}")
    up_s, down_s, recover_s, settle = (0.3, 1.0, 10.0, 1.0) if quick else (2.0, 30.0, 45.0, 2.0)
    receiver = Receiver()
    port = receiver.port
    with make_sender(case, receiver.url) as sender:
        sent_up, _ = _paced(sender.run, OUTAGE_RATE, up_s)
        first = receiver.wait_for(sent_up, settle=settle, limit=10.0)
        receiver.stop()

        rss_before = rss_bytes()
        raised_before = sender.raised[0]
        with RssSampler() as rss:
            t0 = time.monotonic()
            sent_down, slowest_tick = _paced(sender.run, OUTAGE_RATE, down_s)
            achieved = sent_down / (time.monotonic() - t0)
            rss_end = rss_bytes()
            stats_down = sender.stats()
            spool_bytes = _dir_bytes(sender.spool_dir) if sender.spool_dir else None
            raised = sender.raised[0] - raised_before

            receiver = Receiver(port)
            try:
                t_back = time.monotonic()
                flushed = sender.flush(recover_s)
                second = receiver.wait_for(sent_down, settle=settle, limit=recover_s)
                recovery_s = time.monotonic() - t_back
                stats_end = sender.stats()
            finally:
                receiver.stop()
    sent = sent_up + sent_down
    delivered = int(first["records"]) + int(second["records"])
    return {
        "rate_target": OUTAGE_RATE,
        "rate_achieved": achieved,
        "down_s": down_s,
        "sent": sent,
        "delivered": delivered,
        "lost": max(0, sent - delivered),
        "duplicates": max(0, delivered - sent),
        "raised_into_caller": raised,
        "slowest_tick_ns": slowest_tick,
        "rss_before_bytes": rss_before,
        "rss_end_of_outage_bytes": rss_end,
        "peak_rss_bytes": rss.peak,
        "rss_growth_bytes": max(0, rss.peak - rss_before),
        "spool_bytes_at_end_of_outage": spool_bytes,
        "flush_returned": flushed,
        "recovery_s": recovery_s,
        "sender_stats_end_of_outage": stats_down,
        "sender_stats_end": stats_end,
    }


# --- syslog-ng ----------------------------------------------------------------------

SYSLOG_NG_CONFIG = """\
@version: 3.38
options {{ keep-hostname(yes); frac-digits(6); stats-freq(0); }};
source s_net {{ syslog(ip("127.0.0.1") port({port}) transport("tcp") max-connections(16)
  log-iw-size(100000)); }};
destination d_file {{ file("{out}" template("${{MESSAGE}}\\n")); }};
log {{ source(s_net); destination(d_file); }};
"""


def syslog_ng_path() -> str | None:
    """Return the syslog-ng executable, or None when it is not installed."""
    return shutil.which("syslog-ng") or (
        "/usr/sbin/syslog-ng" if os.access("/usr/sbin/syslog-ng", os.X_OK) else None
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SyslogNg:
    """A syslog-ng process receiving RFC 5424 over TCP into a file."""

    def __init__(self, workdir: str) -> None:
        exe = syslog_ng_path()
        if exe is None:
            raise BenchmarkError("syslog-ng is not installed (Debian package syslog-ng-core)")
        self.port = _free_port()
        self.out = os.path.join(workdir, "out.log")
        conf = os.path.join(workdir, "syslog-ng.conf")
        with open(conf, "w") as f:
            f.write(SYSLOG_NG_CONFIG.format(port=self.port, out=self.out))
        self.log: IO[bytes] = open(os.path.join(workdir, "syslog-ng.stderr"), "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                exe,
                "-F",
                "-f",
                conf,
                "-R",
                os.path.join(workdir, "persist"),
                "-p",
                os.path.join(workdir, "pid"),
                "-c",
                os.path.join(workdir, "ctl"),
            ],
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None:
                self.log.close()
                with open(os.path.join(workdir, "syslog-ng.stderr"), errors="replace") as f:
                    said = f.read()[-2000:]
                raise BenchmarkError(f"syslog-ng exited with {self.proc.returncode}: {said}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchmarkError("syslog-ng did not start listening") from None
                time.sleep(0.05)

    def lines(self) -> int:
        try:
            with open(self.out, "rb") as f:
                return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
        except FileNotFoundError:
            return 0

    def wait_for(self, expected: int, *, settle: float, limit: float) -> tuple[int, float]:
        """Poll the output file; return (lines, wall time the count last grew)."""
        deadline = time.monotonic() + limit
        last, last_change, last_wall = -1, time.monotonic(), time.time()
        while True:
            count = self.lines()
            now = time.monotonic()
            if count != last:
                last, last_change, last_wall = count, now, time.time()
            if count >= expected or now >= deadline or now - last_change >= settle:
                return count, last_wall
            time.sleep(0.01)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def run_syslog(case: str, quick: bool) -> dict[str, Any]:
    """Ship records with structflow's SyslogHandler to a real syslog-ng."""
    if case != "structflow":
        raise BenchmarkError(f"unknown syslog sender {case!r}; expected 'structflow'")
    import structflow
    from structflow.handlers import SyslogHandler

    lat_n, thr_n = (1000, 5000) if quick else (20_000, 100_000)
    limit = 30.0 if quick else 60.0
    with tempfile.TemporaryDirectory(prefix="structflow-bench-syslog-") as workdir:
        daemon = SyslogNg(workdir)
        try:
            structflow.configure(renderer="json", stream="none", level="INFO")
            handler = SyslogHandler(f"tcp://127.0.0.1:{daemon.port}", app_name="bench")
            logger = structflow.get_logger("Task B")
            logger.addHandler(handler)
            logger.propagate = False
            run, run_timed = _structflow_loops(logger.info)
            try:
                run(1)
                handler.flush(limit)
                got, _ = daemon.wait_for(1, settle=5.0, limit=limit)
                if got != 1:
                    raise BenchmarkError(f"syslog: one record sent, syslog-ng wrote {got} lines")
                with open(daemon.out, encoding="utf-8") as f:
                    check_rendered(f.read(), case="syslog", style="json", fields=CONTEXT)
                latencies = run_timed(lat_n)
                handler.flush(limit)
                base, _ = daemon.wait_for(1 + lat_n, settle=5.0, limit=limit)
                wall0 = time.time()
                t0 = time.perf_counter_ns()
                run(thr_n)
                emit_ns = (time.perf_counter_ns() - t0) / thr_n
                flushed = handler.flush(limit)
                total, last_wall = daemon.wait_for(base + thr_n, settle=5.0, limit=limit)
                sender_stats = dict(handler.stats()) if hasattr(handler, "stats") else {}
            finally:
                logger.removeHandler(handler)
                handler.close()
        finally:
            daemon.stop()
    delivered = total - base
    if delivered != thr_n:
        raise BenchmarkError(
            f"syslog: sent {thr_n} records, syslog-ng wrote {delivered}; stats {sender_stats}"
        )
    return {
        "delivered_per_s": delivered / max(last_wall - wall0, 1e-9),
        "emit_ns_per_call": emit_ns,
        **_latency(latencies),
        "sent": thr_n,
        "delivered": delivered,
        "lost": thr_n - delivered,
        "flush_returned": flushed,
        "sender_stats": sender_stats,
    }
