"""
A long run: 1,000,000 records through a receiver that keeps failing, and a spool that fills up.

The handler runs in a child process (as an application would); the
receiver, in this one, cycles through healthy, 503, cut connections, 413
for all but small bodies and requests it never answers, with one long
outage first, during which the spool's disk (a tmpfs of its own) fills up. At the
end every record is delivered or counted as dropped with its reason, and
the receiver saw each delivered record exactly once.

Marked ``slow``: about a minute on two cores.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from disks import small_disk
from receivers import Action, Cut, Hang, HTTPReceiver, Request, Respond

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

RECORDS = 1_000_000

CHILD = """
import json, logging, sys
from structflow.handlers import HTTPHandler
url, spool, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
handler = HTTPHandler(url, spool_dir=spool, timeout=2.0, retry_backoff=0.01,
                      retry_max_backoff=0.2, max_queue_bytes=2 * 1024 * 1024)
logger = logging.getLogger("soak")
logger.addHandler(handler)
logger.propagate = False
logger.setLevel(logging.INFO)
for i in range(n):
    logger.info("soak record %d", i, extra={"seq": i})
print(json.dumps({"flushed": handler.flush(240), "stats": handler.stats()}), flush=True)
handler.close()
"""

_SEQ = re.compile(rb'"seq":(\d+)')


class CountingReceiver(HTTPReceiver):
    """Keeps how often each ``seq`` arrived, not the bodies (a million would not fit)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.seen = bytearray(n)
        self.duplicates = 0
        self.arrived = 0

    def record(self, request: Request, accepted: bool) -> None:
        if not accepted:
            return
        with self.lock:
            for match in _SEQ.finditer(request.body):
                seq = int(match.group(1))
                if self.seen[seq]:
                    self.duplicates += 1
                self.seen[seq] = 1
                self.arrived += 1


#: One cycle of the receiver's answers: (default answer, largest body taken, seconds).
CYCLE: list[tuple[Action, int | None, float]] = [
    (Respond(200), None, 1.0),
    (Respond(503), None, 0.4),
    (Cut(), None, 0.3),
    (Respond(200), 20_000, 0.4),  # 413 for bodies over 20 kB: batches are split
    (Hang(), None, 0.6),
]


def flap(receiver: CountingReceiver, cycles: int, stop: threading.Event) -> None:
    """A long outage (the spool's disk fills up), then *cycles* cycles; then stay healthy."""
    receiver.default = Respond(503)
    stop.wait(5.0)
    for _ in range(cycles):
        for action, max_body, seconds in CYCLE:
            if stop.is_set():
                break
            receiver.default = action
            receiver.max_body = max_body
            stop.wait(seconds)
            if isinstance(action, Hang):
                receiver.released.set()  # let the hung requests go
                time.sleep(0.05)
                receiver.released.clear()
    receiver.default = Respond(200)
    receiver.max_body = None
    receiver.released.set()


@pytest.fixture(name="counting")
def counting_fixture() -> Iterator[CountingReceiver]:
    server = CountingReceiver(RECORDS)
    try:
        yield server
    finally:
        server.close()


def test_a_million_records_through_a_flapping_receiver_and_a_full_spool_are_all_accounted_for(
    counting: CountingReceiver, tmp_path: Path
) -> None:
    with small_disk(tmp_path / "spool", 8 * 1024 * 1024) as spool:
        stop = threading.Event()
        flapper = threading.Thread(target=flap, args=(counting, 4, stop), daemon=True)
        flapper.start()
        try:
            child = subprocess.run(
                [sys.executable, "-c", CHILD, counting.url, str(spool), str(RECORDS)],
                capture_output=True,
                text=True,
                timeout=400,
                check=False,
            )
        finally:
            stop.set()
            flapper.join(10)
        out, err = child.stdout, child.stderr

    assert child.returncode == 0, err
    result = json.loads(out)
    stats = result["stats"]
    dropped = stats["dropped"]
    assert result["flushed"] is True
    assert stats["accepted"] == RECORDS
    assert stats["accepted"] == stats["delivered"] + sum(dropped.values())
    assert stats["spool_fallback"] > 0  # the disk did fill up
    assert (counting.arrived, counting.duplicates) == (stats["delivered"], 0)
    assert {k for k, v in dropped.items() if v} <= {"queue_full"}
