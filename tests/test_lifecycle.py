"""
The process around the workers: fork, multiprocessing, interpreter exit, dictConfig, worker threads.

Real subprocesses and a real receiver on 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

import pytest

from receivers import (
    Hang,
    HTTPReceiver,
    Respond,
    receiver_fixture,  # noqa: F401 - pytest finds it as 'receiver'
    run_python,
)
from structflow.handlers import HTTPHandler

pytestmark = pytest.mark.timeout(90)


def seqs(receiver: HTTPReceiver) -> list[int]:
    return [line["seq"] for line in receiver.lines()]


def test_diagnostics_and_urllib3_debug_logs_are_never_shipped(
    receiver: HTTPReceiver,
) -> None:
    """A handler on the root logger ships neither its own diagnostics nor urllib3's logs."""
    receiver.script(Respond(503))
    handler = HTTPHandler(receiver.url, retry_backoff=0.01)
    root = logging.getLogger()
    urllib3 = logging.getLogger("urllib3")
    saved = (root.level, urllib3.level)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    urllib3.setLevel(logging.DEBUG)
    try:
        logging.getLogger("tests.root").info("only this", extra={"seq": 0})
        assert handler.flush(timeout=10) is True
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        urllib3.setLevel(saved[1])
        handler.close()
    assert [line["message"] for line in receiver.lines()] == ["only this"]


HANGING_CHILD = """
import logging, sys, time
from structflow.formatters import JsonFormatter
from structflow.handlers import HTTPHandler
handler = HTTPHandler(sys.argv[1], timeout=10.0, shutdown_timeout=1.0)
logger = logging.getLogger("child")
logger.addHandler(handler)
logger.propagate = False
logger.setLevel(logging.INFO)
worst = 0.0
for i in range(20000):
    start = time.perf_counter()
    logger.info("record %d", i)
    worst = max(worst, time.perf_counter() - start)
print(f"{worst:.6f} {time.time():.6f}", flush=True)
"""


def test_a_receiver_that_never_answers_blocks_no_log_call_and_exit_is_bounded(
    receiver: HTTPReceiver,
) -> None:
    receiver.default = Hang()

    proc = run_python(HANGING_CHILD, receiver.url, timeout=30)
    ended = time.time()

    assert proc.returncode == 0, proc.stderr
    worst, done = (float(x) for x in proc.stdout.split())
    # Both bounds are far from what they guard against: the receiver's 10 s
    # timeout for a log call, and a hang for the exit.
    assert worst < 0.5
    assert ended - done < 1.0 + 1.0
    assert "not delivered within shutdown_timeout=1s" in proc.stderr


SHUTDOWN_CHILD = """
import logging, sys, time
from structflow.handlers import HTTPHandler
handlers = [HTTPHandler(sys.argv[1], shutdown_timeout=2.0, flush_interval=0.05) for _ in range(3)]
for n, handler in enumerate(handlers):
    logger = logging.getLogger(f"child.{n}")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.info("stuck")
time.sleep(0.5)  # every handler waits for its answer (10 s timeout) by now
start = time.monotonic()
logging.shutdown()
print(f"{time.monotonic() - start:.3f}", *(h.stats()["dropped"]["shutdown"] for h in handlers))
"""


def test_logging_shutdown_ends_within_shutdown_timeout_however_many_handlers(
    receiver: HTTPReceiver,
) -> None:
    """Three handlers stuck on a receiver that never answers drain together, not in turn."""
    receiver.default = Hang()

    proc = run_python(SHUTDOWN_CHILD, receiver.url, timeout=60)

    assert proc.returncode == 0, proc.stderr
    took, *shutdown_drops = proc.stdout.split()
    assert float(took) < 2.0 + 1.0
    assert shutdown_drops == ["1", "1", "1"]


DICTCONFIG_CHILD = """
import logging, logging.config, sys, threading
from structflow.formatters import JsonFormatter
from structflow.handlers import HTTPHandler
handler = HTTPHandler(sys.argv[1], batch_max_records=100, flush_interval=0.01)
logger = logging.getLogger("app.shipping")
logger.addHandler(handler)
logger.propagate = False
logger.setLevel(logging.INFO)
# The sender logs through urllib3; after every dictConfig the level cache is
# empty, so those calls take logging's module lock while dictConfig holds it.
logging.getLogger("urllib3").setLevel(logging.DEBUG)
stop = threading.Event()
runs = [0]
def reconfigure():
    while not stop.is_set():
        logging.config.dictConfig({
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"null": {"class": "logging.NullHandler"}},
            "loggers": {"other": {"handlers": ["null"], "level": "INFO"}},
        })
        runs[0] += 1
thread = threading.Thread(target=reconfigure, daemon=True)
thread.start()
for i in range(20000):
    logger.info("record %d", i, extra={"seq": i})
ok = handler.flush(30)
stop.set()
thread.join(10)
print(ok, runs[0], handler.stats()["delivered"], thread.is_alive(), flush=True)
"""


def test_dictconfig_called_repeatedly_from_another_thread_neither_deadlocks_nor_loses(
    receiver: HTTPReceiver,
) -> None:
    proc = run_python(DICTCONFIG_CHILD, receiver.url, timeout=60)

    assert proc.returncode == 0, proc.stderr
    ok, runs, delivered, alive = proc.stdout.split()
    assert (ok, delivered, alive) == ("True", "20000", "False")
    assert int(runs) > 10
    assert list(range(20000)) == seqs(receiver)


FORK_CHILD = """
import logging, os, sys
from structflow.formatters import JsonFormatter
from structflow.handlers import HTTPHandler
handler = HTTPHandler(sys.argv[1], flush_interval=30.0, batch_max_records=100000)
logger = logging.getLogger("fork")
logger.addHandler(handler)
logger.propagate = False
logger.setLevel(logging.INFO)
for i in range(1000):
    logger.info("parent", extra={"who": "parent", "seq": i})
# Those 1000 are still queued (flush_interval is long) when the process forks.
pid = os.fork()
if pid == 0:
    for i in range(700):
        logger.info("child", extra={"who": "child", "seq": i})
    os._exit(0 if handler.flush(20) else 3)
for i in range(1000, 1500):
    logger.info("parent", extra={"who": "parent", "seq": i})
_, status = os.waitpid(pid, 0)
print(handler.flush(20), os.waitstatus_to_exitcode(status), handler.stats()["delivered"])
"""


def _who(receiver: HTTPReceiver) -> Counter[tuple[str, int]]:
    return Counter((line["who"], line["seq"]) for line in receiver.lines())


def test_after_fork_parent_and_child_records_are_each_delivered_once(
    receiver: HTTPReceiver,
) -> None:
    proc = run_python(FORK_CHILD, receiver.url, timeout=60)

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "0", "1500"]
    expected = Counter([("parent", i) for i in range(1500)] + [("child", i) for i in range(700)])
    assert expected == _who(receiver)


MULTIPROCESSING_CHILD = """
import logging, multiprocessing, sys
from structflow.formatters import JsonFormatter
from structflow.handlers import HTTPHandler
handler = HTTPHandler(sys.argv[1], flush_interval=30.0)
logger = logging.getLogger("mp")
logger.addHandler(handler)
logger.propagate = False
logger.setLevel(logging.INFO)
def work():
    for i in range(300):
        logger.info("child", extra={"who": "child", "seq": i})
    # no flush: the child ends with os._exit, after multiprocessing's finalizers
process = multiprocessing.get_context("fork").Process(target=work)
process.start()
process.join(30)
print(process.exitcode, handler.flush(10))
"""


def test_a_multiprocessing_child_delivers_its_records_when_it_ends(
    receiver: HTTPReceiver,
) -> None:
    proc = run_python(MULTIPROCESSING_CHILD, receiver.url, timeout=60)

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", "True"]
    assert Counter(("child", i) for i in range(300)) == _who(receiver)
