"""
The shipping worker: delivery, ordering, flush, back-pressure, shutdown, fork, dictConfig.

Real sockets on 127.0.0.1 (an HTTPHandler posting to a local receiver),
real threads and real subprocesses; every wait is bounded.
"""

from __future__ import annotations

import itertools
import json
import logging
import socket
import threading
import time

import pytest

from receivers import (
    NO_DROPS,
    Diagnostics,
    Hang,
    HTTPReceiver,
    Respond,
    attach,
    closing_fixture,  # noqa: F401 - pytest finds it as 'closing'
    diagnostics_fixture,  # noqa: F401 - pytest finds it as 'diagnostics'
    receiver_fixture,  # noqa: F401 - pytest finds it as 'receiver'
    run_python,
    wait_until,
)
from structflow.formatters import JsonFormatter
from structflow.handlers import HTTPHandler

pytestmark = pytest.mark.timeout(90)


def seqs(receiver: HTTPReceiver, key: str = "seq") -> list[int]:
    return [line[key] for line in receiver.lines()]


def wait_for_hang(receiver: HTTPReceiver) -> None:
    assert wait_until(lambda: "hang" in receiver.statuses(), timeout=10)


def test_100k_records_are_delivered_exactly_once_in_order(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    handler = HTTPHandler(receiver.url)
    closing.append(handler)
    logger = attach(handler)

    for i in range(100_000):
        logger.info("record %d", i, extra={"seq": i})

    assert handler.flush(timeout=60) is True
    stats = handler.stats()
    assert (stats["accepted"], stats["delivered"], stats["dropped"]) == (100_000, 100_000, NO_DROPS)
    assert seqs(receiver) == list(range(100_000))


def assert_160k_delivered_in_order(receiver: HTTPReceiver, handler: HTTPHandler) -> None:
    """8 threads x 20,000 records: all delivered, none dropped, each thread's in its order."""
    assert handler.flush(timeout=60) is True
    stats = handler.stats()
    assert (stats["accepted"], stats["delivered"], stats["dropped"]) == (160_000, 160_000, NO_DROPS)
    by_thread: dict[int, list[int]] = {}
    for line in receiver.lines():
        by_thread.setdefault(line["worker"], []).append(line["seq"])
    assert by_thread == {t: list(range(20_000)) for t in range(8)}


def test_eight_threads_deliver_the_exact_count_each_in_its_order(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    handler = HTTPHandler(receiver.url)
    closing.append(handler)
    logger = attach(handler)
    start = threading.Barrier(8)

    def work(thread: int) -> None:
        start.wait()
        for i in range(20_000):
            logger.info("t%d %d", thread, i, extra={"worker": thread, "seq": i})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert_160k_delivered_in_order(receiver, handler)


def test_flushing_while_other_threads_log_neither_duplicates_nor_drops(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    handler = HTTPHandler(receiver.url, flush_interval=0.01)
    closing.append(handler)
    logger = attach(handler)

    def work(thread: int) -> None:
        for i in range(5000):
            logger.info("r", extra={"worker": thread, "seq": i})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    flushes = 0
    while any(t.is_alive() for t in threads):
        assert handler.flush(timeout=30) is True
        flushes += 1
    for t in threads:
        t.join(30)

    assert handler.flush(timeout=30) is True
    stats = handler.stats()
    assert (stats["accepted"], stats["delivered"], stats["dropped"]) == (20_000, 20_000, NO_DROPS)
    assert sorted((line["worker"], line["seq"]) for line in receiver.lines()) == [
        (t, i) for t in range(4) for i in range(5000)
    ]
    assert flushes > 0


def test_flush_called_while_the_writer_renders_waits_for_every_earlier_record(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    """
    The barrier covers records still queued behind the chunk the writer is busy with.

    The writer is held on its first record while the others are logged and
    flush() is called, then on the second chunk until well after the first
    record was delivered: a barrier placed after the first chunk only would
    let flush() return with one record delivered.
    """
    first, release_first, release_second = threading.Event(), threading.Event(), threading.Event()
    calls = itertools.count()

    class Held(JsonFormatter):
        def format_bytes(self, record: logging.LogRecord) -> bytes:
            call = next(calls)
            if call == 0:
                first.set()
                release_first.wait(10)
            elif call == 1:
                release_second.wait(10)
            return super().format_bytes(record)

    def conductor() -> None:
        time.sleep(0.2)  # flush() is waiting by now
        release_first.set()
        # A wrong barrier sends the first record at once; a right one sends
        # nothing until the second chunk is rendered.
        if wait_until(lambda: len(receiver.accepted) >= 1, timeout=1.0):
            time.sleep(0.3)  # ample time for the wrong barrier to be released
        release_second.set()

    handler = HTTPHandler(receiver.url, flush_interval=30)
    handler.setFormatter(Held())
    closing.append(handler)
    logger = attach(handler)
    logger.info("first", extra={"seq": 0})
    assert first.wait(10)
    for i in range(1, 100):
        logger.info("queued", extra={"seq": i})
    threading.Thread(target=conductor, daemon=True).start()

    assert handler.flush(timeout=20) is True
    assert handler.stats()["delivered"] == 100
    assert seqs(receiver) == list(range(100))


def test_flush_waits_for_delivery_and_returns_false_on_timeout(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    receiver.default = Hang()
    handler = HTTPHandler(receiver.url, timeout=30, shutdown_timeout=0.1)
    closing.append(handler)
    logger = attach(handler)
    logger.info("stuck", extra={"seq": 0})

    assert handler.flush(timeout=0.3) is False
    assert handler.stats()["delivered"] == 0


def test_flush_covers_records_accepted_before_it_only(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    """flush() returns once earlier records are delivered, even while others keep coming."""
    handler = HTTPHandler(receiver.url, flush_interval=30)
    closing.append(handler)
    logger = attach(handler)
    for i in range(10):
        logger.info("r", extra={"seq": i})

    assert handler.flush(timeout=10) is True
    assert list(range(10)) == seqs(receiver)


def test_a_partial_batch_is_sent_after_flush_interval(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    handler = HTTPHandler(receiver.url, flush_interval=0.05)
    closing.append(handler)
    logger = attach(handler)
    logger.info("alone", extra={"seq": 1})

    assert wait_until(lambda: receiver.count_lines() == 1, timeout=10)


def test_batches_respect_batch_max_records_and_batch_max_bytes(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    by_records = HTTPHandler(receiver.url, batch_max_records=7)
    by_bytes = HTTPHandler(receiver.url + "bytes", batch_max_bytes=2048)
    closing.extend([by_records, by_bytes])
    for handler in (by_records, by_bytes):
        logger = attach(handler)
        for i in range(100):
            logger.info("x" * 100, extra={"seq": i})
        assert handler.flush(timeout=10) is True

    counts = [r.body.count(b"\n") for r in receiver.accepted if r.path == "/"]
    sizes = [len(r.body) for r in receiver.accepted if r.path == "/bytes"]
    assert (sum(counts), max(counts)) == (100, 7)
    assert max(sizes) <= 2048
    assert sum(len(r.body.splitlines()) for r in receiver.accepted if r.path == "/bytes") == 100


# --- a small queue and a healthy receiver --------------------------------------


def test_a_1_mib_queue_drops_nothing_while_the_receiver_keeps_up(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    """Records of about 1 KB: a batch is sent before the queue fills, not after flush_interval."""
    handler = HTTPHandler(receiver.url, max_queue_bytes=1_048_576)
    closing.append(handler)
    logger = attach(handler)
    for i in range(50_000):
        logger.info("x" * 900, extra={"seq": i})

    assert handler.flush(timeout=60) is True
    stats = handler.stats()
    assert (stats["delivered"], stats["dropped"]) == (50_000, NO_DROPS)


def eight_threads(logger: logging.Logger, n: int) -> None:
    """Log *n* short records from each of 8 threads started together."""
    start = threading.Barrier(8)

    def work(thread: int) -> None:
        start.wait()
        for i in range(n):
            logger.info("t%d", thread, extra={"worker": thread, "seq": i})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)


def test_eight_threads_with_a_1_mib_queue_drop_nothing(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    handler = HTTPHandler(receiver.url, max_queue_bytes=1_048_576)
    closing.append(handler)
    eight_threads(attach(handler), 20_000)

    assert handler.flush(timeout=60) is True
    stats = handler.stats()
    assert (stats["delivered"], stats["dropped"]) == (160_000, NO_DROPS)


def test_block_with_a_64_kib_queue_lets_eight_threads_finish_without_a_drop(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    """No log call waits as long as block_timeout (1 s) while the receiver keeps up."""
    handler = HTTPHandler(receiver.url, max_queue_bytes=65_536, when_full="block")
    closing.append(handler)
    eight_threads(attach(handler), 5_000)

    assert handler.flush(timeout=60) is True
    stats = handler.stats()
    assert (stats["delivered"], stats["dropped"]) == (40_000, NO_DROPS)


@pytest.mark.timeout(180)
def test_block_with_a_64_kib_queue_finishes_a_burst_of_160k_records_in_order(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    """8 threads x 20,000 records; a log call may wait for room as long as it takes."""
    handler = HTTPHandler(
        receiver.url, max_queue_bytes=65_536, when_full="block", block_timeout=120
    )
    closing.append(handler)
    eight_threads(attach(handler), 20_000)

    assert_160k_delivered_in_order(receiver, handler)


def _fill(receiver: HTTPReceiver, handler: HTTPHandler, total: int) -> logging.Logger:
    """Send one batch that the receiver holds, then *total* more records."""
    logger = attach(handler)
    for i in range(10):
        logger.info("x" * 1000, extra={"seq": i})
    wait_for_hang(receiver)
    for i in range(10, total):
        logger.info("x" * 1000, extra={"seq": i})
    return logger


FULL = {"batch_max_records": 10, "max_queue_bytes": 65_536, "timeout": 1.0, "retry_backoff": 0.01}


def test_when_full_drop_newest_keeps_what_is_queued_and_counts_the_new(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    receiver.script(Hang())
    handler = HTTPHandler(receiver.url, when_full="drop_newest", **FULL)  # type: ignore[arg-type]
    closing.append(handler)
    _fill(receiver, handler, 400)

    assert handler.flush(timeout=20) is True
    stats = handler.stats()
    delivered = seqs(receiver)
    assert stats["dropped"]["queue_full"] > 0
    assert stats["accepted"] == stats["delivered"] + stats["dropped"]["queue_full"] == 400
    assert {**NO_DROPS, "queue_full": stats["dropped"]["queue_full"]} == stats["dropped"]
    assert stats["delivered"] == len(delivered) == len(set(delivered))
    assert list(range(10)) == delivered[:10]
    assert 399 not in delivered


def test_when_full_drop_oldest_keeps_the_newest_and_counts_the_old(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    receiver.script(Hang())
    handler = HTTPHandler(receiver.url, when_full="drop_oldest", **FULL)  # type: ignore[arg-type]
    closing.append(handler)
    _fill(receiver, handler, 400)

    assert handler.flush(timeout=20) is True
    stats = handler.stats()
    delivered = seqs(receiver)
    assert stats["dropped"]["queue_full"] > 0
    assert stats["accepted"] == 400
    assert stats["delivered"] + stats["dropped"]["queue_full"] == 400
    assert {**NO_DROPS, "queue_full": stats["dropped"]["queue_full"]} == stats["dropped"]
    assert stats["delivered"] == len(delivered) == len(set(delivered))
    assert list(range(10)) == delivered[:10]  # the batch in flight is never dropped
    assert 10 not in delivered  # the oldest queued record went first
    assert 399 in delivered


def test_when_full_block_waits_for_room_and_drops_nothing(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    receiver.script(Hang())
    handler = HTTPHandler(receiver.url, when_full="block", block_timeout=30, **FULL)  # type: ignore[arg-type]
    closing.append(handler)
    _fill(receiver, handler, 400)

    assert handler.flush(timeout=20) is True
    stats = handler.stats()
    assert (stats["accepted"], stats["delivered"], stats["dropped"]) == (400, 400, NO_DROPS)
    assert list(range(400)) == seqs(receiver)


def test_when_full_block_drops_after_block_timeout_and_counts_it(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    receiver.default = Hang()
    handler = HTTPHandler(
        receiver.url,
        when_full="block",
        block_timeout=0.05,
        shutdown_timeout=0.1,
        **{**FULL, "timeout": 30.0},  # type: ignore[arg-type]
    )
    closing.append(handler)
    _fill(receiver, handler, 70)

    stats = handler.stats()
    assert stats["dropped"]["queue_full"] > 0
    assert stats["accepted"] == 70


MEMORY_CHILD = """
import json, logging, resource, sys, time, tracemalloc
from structflow.handlers import HTTPHandler
url, total, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
handler = HTTPHandler(url, max_queue_bytes=limit, retry_backoff=0.01, retry_max_backoff=0.05,
                      timeout=2.0, shutdown_timeout=0.5)
logger = logging.getLogger("memory.bound")
logger.addHandler(handler)
logger.propagate = False
logger.setLevel(logging.INFO)
logger.info("started")  # the worker's threads and connection pool exist from here
time.sleep(0.3)
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
base = tracemalloc.get_traced_memory()[0]
context = {"flow_name": "nightly", "flow_run_id": "2b6f7d1e-0f6a-4d9e-9d3a-2f0e0f4c6a11",
           "task_name": "Task B", "task_run_id": "6a3c1b2e-8d4f-4e5a-9b7c-1d2e3f4a5b6c"}
for i in range(1, total):
    logger.info("Beginning to run Task B with input %d", i, extra=context)
    if i % 2000 == 0:
        time.sleep(0.01)  # a steady rate, as in production, not one burst
time.sleep(1.0)  # the writer catches up; the sender keeps failing
peak = tracemalloc.get_traced_memory()[1] - base
tracemalloc.stop()
rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024
handler.close()
print(json.dumps({"peak": peak, "rss_growth": rss_growth, "stats": handler.stats()}))
"""


@pytest.mark.parametrize("answer", ["refused", "503"])
def test_memory_stays_within_max_queue_bytes_while_the_receiver_is_down(
    receiver: HTTPReceiver, answer: str
) -> None:
    # Many more records than fit: each one rendered is about 330 bytes, so
    # 1 MiB holds about 3,000 of them. Rendered entries that kept a larger
    # allocation than their length (orjson's results do), or failed attempts
    # that kept their request bodies alive, grew the process far past the bound.
    total, limit = 30_000, 1_048_576
    if answer == "503":
        receiver.default = Respond(503)
        url = receiver.url
    else:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{probe.getsockname()[1]}/"  # nothing listens

    proc = run_python(MEMORY_CHILD, url, str(total), str(limit), timeout=60)

    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    stats = out["stats"]
    # The bound, plus one batch body and one chunk being rendered.
    assert out["peak"] < 3 * limit
    assert out["rss_growth"] < 12 * limit
    assert stats["delivered"] == 0
    assert stats["dropped"]["queue_full"] > total // 2
    # Every record logged is delivered or counted in exactly one drop reason.
    assert stats["delivered"] + sum(stats["dropped"].values()) == total
    assert stats["accepted"] == total


def test_close_drops_and_reports_what_it_could_not_deliver(
    receiver: HTTPReceiver, diagnostics: Diagnostics
) -> None:
    receiver.default = Hang()
    handler = HTTPHandler(receiver.url, timeout=30, shutdown_timeout=0.2)
    logger = attach(handler)
    for i in range(5):
        logger.info("r", extra={"seq": i})

    handler.close()

    assert handler.closed
    assert handler.stats()["dropped"]["shutdown"] == 5
    assert any("not delivered within shutdown_timeout" in m for m in diagnostics.messages())
    logger.info("after close")
    assert handler.stats()["dropped"]["closed"] == 1
    assert handler.flush(timeout=1) is False


def test_stats_count_every_reason_and_bytes(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    handler = HTTPHandler(receiver.url)
    closing.append(handler)
    attach(handler).info("hello")
    assert handler.flush(timeout=10) is True

    stats = handler.stats()
    body = receiver.accepted[0].body
    assert {
        "accepted": 1,
        "delivered": 1,
        "retried": 0,
        "spooled": 0,
        "adopted": 0,
        "dropped": NO_DROPS,
        "queued_bytes": 0,
        "delivered_bytes": len(body) - 1,  # the entry, without the line break
        "spool_fallback": 0,
        "spool_skipped": 0,
    } == stats
