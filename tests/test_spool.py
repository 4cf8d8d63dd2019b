"""
The crash-safe spool: records survive SIGKILL and are delivered by the next process.

Crashes are real: a child process spools records and kills itself with
SIGKILL; another process (or this one) with the same spool_dir delivers them.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from receivers import (
    Diagnostics,
    HTTPReceiver,
    Respond,
    attach,
    closing_fixture,  # noqa: F401 - pytest finds it as 'closing'
    diagnostics_fixture,  # noqa: F401 - pytest finds it as 'diagnostics'
    free_port,
    receiver_fixture,  # noqa: F401 - pytest finds it as 'receiver'
    run_python,
)
from structflow.handlers import HTTPHandler
from structflow.handlers.shipping.worker import DROP_REASONS

pytestmark = pytest.mark.timeout(90)

NO_DROPS = dict.fromkeys(DROP_REASONS, 0)
FAST = {"retry_backoff": 0.01, "retry_max_backoff": 0.05}

# Spools N records, flushes (which times out while the receiver is away),
# prints the flush result and the spooled count, then dies by SIGKILL.
CRASHING_CHILD = """
import json, logging, os, signal, sys
from structflow.handlers import HTTPHandler
url, spool, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
options = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
options = {"retry_backoff": 0.05, "retry_max_backoff": 0.2, "timeout": 2, **options}
handler = HTTPHandler(url, spool_dir=spool, **options)
logger = logging.getLogger("crash")
logger.addHandler(handler)
logger.propagate = False
logger.setLevel(logging.INFO)
for i in range(n):
    logger.info("record %d", i, extra={"seq": i})
ok = handler.flush(1.0)
print(ok, handler.stats()["spooled"], flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""

# Delivers what the spool holds, then exits normally.
DELIVERING_CHILD = """
import logging, sys
from structflow.handlers import HTTPHandler
handler = HTTPHandler(sys.argv[1], spool_dir=sys.argv[2])
print(handler.flush(30), handler.stats()["adopted"], flush=True)
handler.close()
"""


def crash(url: str, spool: Path, n: int, **options: object) -> list[str]:
    proc = run_python(CRASHING_CHILD, url, str(spool), str(n), json.dumps(options), timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return proc.stdout.split()


def seqs(receiver: HTTPReceiver) -> list[int]:
    return [line["seq"] for line in receiver.lines()]


def files(spool: Path) -> list[str]:
    return sorted(p.name for p in spool.iterdir())


def test_records_spooled_before_sigkill_are_delivered_by_the_next_process(
    receiver: HTTPReceiver, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    assert crash(f"http://127.0.0.1:{free_port()}/", spool, 5000) == ["False", "5000"]
    assert any(name.endswith(".seg") for name in files(spool))

    proc = run_python(DELIVERING_CHILD, receiver.url, str(spool), timeout=60)

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "5000"]
    assert list(range(5000)) == seqs(receiver)
    assert files(spool) == []


def test_records_are_forgotten_only_after_a_2xx(receiver: HTTPReceiver, tmp_path: Path) -> None:
    """What was confirmed before the crash is not sent again; the rest is."""
    spool = tmp_path / "spool"
    first = HTTPReceiver()
    first.script(Respond(200), Respond(200))
    first.default = Respond(503)
    try:
        crash(first.url, spool, 3000, batch_max_records=500, flush_interval=30)
    finally:
        first.close()
    confirmed = len(seqs(first))
    assert 0 < confirmed < 3000
    assert list(range(confirmed)) == seqs(first)

    proc = run_python(DELIVERING_CHILD, receiver.url, str(spool), timeout=60)

    assert proc.returncode == 0, proc.stderr
    assert list(range(confirmed, 3000)) == seqs(receiver)


@pytest.mark.parametrize("damage", ["garbage", "torn"])
def test_a_corrupt_tail_is_skipped_and_reported(
    receiver: HTTPReceiver,
    closing: list[logging.Handler],
    diagnostics: Diagnostics,
    tmp_path: Path,
    damage: str,
) -> None:
    spool = tmp_path / "spool"
    crash(f"http://127.0.0.1:{free_port()}/", spool, 1000)
    (segment,) = (spool / name for name in files(spool) if name.endswith(".seg"))
    if damage == "garbage":
        with open(segment, "ab") as f:  # a record header whose checksum is wrong
            f.write(b"\x00\x00\x00\x10\xde\xad\xbe\xef" + b"x" * 16 + b"\x01\x02")
        expected = list(range(1000))
    else:  # cut in the middle of the last record, as a crash during a write would
        os.truncate(segment, segment.stat().st_size - 20)
        expected = list(range(999))

    handler = HTTPHandler(receiver.url, spool_dir=str(spool))
    closing.append(handler)

    assert handler.flush(timeout=30) is True
    assert expected == seqs(receiver)
    assert handler.stats()["dropped"] == {**NO_DROPS, "spool_corrupt": 1}
    assert any("corrupt data at offset" in m for m in diagnostics.messages())


def test_the_disk_cap_evicts_the_oldest_records_and_counts_them(
    receiver: HTTPReceiver, closing: list[logging.Handler], tmp_path: Path
) -> None:
    receiver.default = Respond(503)
    handler = HTTPHandler(receiver.url, spool_dir=str(tmp_path), spool_max_bytes=1_048_576, **FAST)  # type: ignore[arg-type]
    closing.append(handler)
    logger = attach(handler)
    for i in range(5000):
        logger.info("x" * 1000, extra={"seq": i})
    assert handler.flush(timeout=0.5) is False
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 1_048_576 + 4096

    receiver.default = Respond(200)
    assert handler.flush(timeout=30) is True
    stats = handler.stats()
    delivered = seqs(receiver)
    assert stats["spooled"] == 5000
    assert stats["dropped"]["spool_full"] > 0
    assert {**NO_DROPS, "spool_full": stats["dropped"]["spool_full"]} == stats["dropped"]
    assert stats["delivered"] + stats["dropped"]["spool_full"] == 5000
    assert sorted(set(delivered)) == delivered
    assert 4999 in delivered


def test_a_live_owners_spool_is_left_alone_and_adopted_once_it_dies(
    receiver: HTTPReceiver, closing: list[logging.Handler], tmp_path: Path
) -> None:
    code = CRASHING_CHILD.replace(
        "os.kill(os.getpid(), signal.SIGKILL)",
        "sys.stdin.read()\nos.kill(os.getpid(), signal.SIGKILL)",
    )
    spool = tmp_path / "spool"
    url = f"http://127.0.0.1:{free_port()}/"
    live = subprocess.Popen(
        [sys.executable, "-c", code, url, str(spool), "500"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert live.stdout is not None
        assert live.stdout.readline().strip() == "False 500"

        bystander = HTTPHandler(receiver.url, spool_dir=str(spool))
        closing.append(bystander)
        assert bystander.flush(timeout=10) is True
        assert (bystander.stats()["adopted"], receiver.lines()) == (0, [])
    finally:
        live.communicate(timeout=30)  # closing stdin lets it kill itself
    assert live.returncode == -signal.SIGKILL

    heir = HTTPHandler(receiver.url, spool_dir=str(spool))
    closing.append(heir)
    assert heir.flush(timeout=30) is True
    assert list(range(500)) == seqs(receiver)


def test_a_spool_written_for_another_encoding_is_left_for_its_own_handler(
    receiver: HTTPReceiver, closing: list[logging.Handler], diagnostics: Diagnostics, tmp_path: Path
) -> None:
    crash(f"http://127.0.0.1:{free_port()}/", tmp_path, 200)

    loki = HTTPHandler(receiver.url, encoding="loki", spool_dir=str(tmp_path))
    closing.append(loki)
    assert loki.flush(timeout=10) is True
    assert receiver.accepted == []
    assert any("records encoded for 'http ndjson'" in m for m in diagnostics.messages())

    ndjson = HTTPHandler(receiver.url, spool_dir=str(tmp_path))
    closing.append(ndjson)
    assert ndjson.flush(timeout=30) is True
    assert list(range(200)) == seqs(receiver)


def test_segments_whose_lock_file_was_removed_are_adopted(
    receiver: HTTPReceiver, closing: list[logging.Handler], tmp_path: Path
) -> None:
    crash(f"http://127.0.0.1:{free_port()}/", tmp_path, 300)
    for path in tmp_path.glob("*.lock"):
        path.unlink()

    handler = HTTPHandler(receiver.url, spool_dir=str(tmp_path))
    closing.append(handler)

    assert handler.flush(timeout=30) is True
    assert list(range(300)) == seqs(receiver)


def test_close_keeps_undelivered_records_for_the_next_handler(
    receiver: HTTPReceiver, closing: list[logging.Handler], diagnostics: Diagnostics, tmp_path: Path
) -> None:
    receiver.default = Respond(503)
    first = HTTPHandler(receiver.url, spool_dir=str(tmp_path), shutdown_timeout=0.2, **FAST)  # type: ignore[arg-type]
    logger = attach(first)
    for i in range(100):
        logger.info("r", extra={"seq": i})
    first.close()

    assert first.stats()["dropped"]["shutdown"] == 0
    assert any(
        "100 record(s) not delivered" in m and "stay in spool_dir" in m
        for m in diagnostics.messages()
    )
    assert any(name.endswith(".seg") for name in files(tmp_path))

    receiver.default = Respond(200)
    second = HTTPHandler(receiver.url, spool_dir=str(tmp_path))
    closing.append(second)
    assert second.flush(timeout=30) is True
    assert list(range(100)) == seqs(receiver)
    second.close()
    assert files(tmp_path) == []


@pytest.mark.parametrize("fsync", ["always", "interval", "never"])
def test_every_fsync_policy_spools_and_delivers(
    receiver: HTTPReceiver, closing: list[logging.Handler], tmp_path: Path, fsync: str
) -> None:
    handler = HTTPHandler(receiver.url, spool_dir=str(tmp_path), fsync=fsync, fsync_interval=0.05)
    closing.append(handler)
    logger = attach(handler)
    for i in range(300):
        logger.info("r", extra={"seq": i})

    assert handler.flush(timeout=30) is True
    assert list(range(300)) == seqs(receiver)
    stats = handler.stats()
    assert (stats["spooled"], stats["delivered"], stats["dropped"]) == (300, 300, NO_DROPS)


FORK_WITH_SPOOL = """
import logging, os, sys
from structflow.handlers import HTTPHandler
handler = HTTPHandler(sys.argv[1], spool_dir=sys.argv[2], flush_interval=30.0)
logger = logging.getLogger("fork")
logger.addHandler(handler)
logger.propagate = False
logger.setLevel(logging.INFO)
for i in range(400):
    logger.info("parent", extra={"who": "parent", "seq": i})
pid = os.fork()
if pid == 0:
    for i in range(300):
        logger.info("child", extra={"who": "child", "seq": i})
    ok = handler.flush(20)
    handler.close()
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
print(handler.flush(20), os.waitstatus_to_exitcode(status))
"""


def test_after_fork_parent_and_child_each_deliver_their_spooled_records_once(
    receiver: HTTPReceiver, tmp_path: Path
) -> None:
    proc = run_python(FORK_WITH_SPOOL, receiver.url, str(tmp_path), timeout=60)

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "0"]
    expected = Counter([("parent", i) for i in range(400)] + [("child", i) for i in range(300)])
    assert expected == Counter((line["who"], line["seq"]) for line in receiver.lines())
