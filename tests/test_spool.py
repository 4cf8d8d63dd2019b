"""
The crash-safe spool: records survive SIGKILL and are delivered by the next process.

Crashes are real: a child process spools records and kills itself with
SIGKILL; another process (or this one) with the same spool_dir delivers them.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections import Counter
from pathlib import Path

import pytest

from disks import small_disk_fixture, used_bytes  # noqa: F401 - pytest finds it as 'small_disk'
from receivers import (
    FAST,
    NO_DROPS,
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
from structflow.handlers.shipping import spool as spool_module
from structflow.handlers.shipping.segments import REC, identity_digest

pytestmark = pytest.mark.timeout(90)


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


# --- a full disk ---------------------------------------------------------------


def fill_the_disk(receiver: HTTPReceiver, handler: HTTPHandler, n: int) -> logging.Logger:
    """Log *n* records of about 600 bytes while the receiver answers 503: more than fits."""
    receiver.default = Respond(503)
    logger = attach(handler)
    for i in range(n):
        logger.info("x" * 500, extra={"seq": i})
    assert handler.flush(timeout=1.0) is False
    return logger


def test_records_a_full_disk_cannot_take_wait_in_memory_and_are_delivered_in_order(
    receiver: HTTPReceiver, closing: list[logging.Handler], small_disk: Path
) -> None:
    handler = HTTPHandler(receiver.url, spool_dir=str(small_disk), **FAST)  # type: ignore[arg-type]
    closing.append(handler)
    fill_the_disk(receiver, handler, 6000)

    receiver.default = Respond(200)
    assert handler.flush(timeout=30) is True
    stats = handler.stats()
    assert (stats["delivered"], stats["dropped"]) == (6000, NO_DROPS)
    assert 0 < stats["spool_fallback"] < 6000
    assert stats["spooled"] + stats["spool_fallback"] == 6000
    assert list(range(6000)) == seqs(receiver)


def test_once_a_full_disk_is_delivered_its_space_comes_back_and_later_records_are_spooled(
    receiver: HTTPReceiver, closing: list[logging.Handler], small_disk: Path
) -> None:
    handler = HTTPHandler(receiver.url, spool_dir=str(small_disk), **FAST)  # type: ignore[arg-type]
    closing.append(handler)
    logger = fill_the_disk(receiver, handler, 6000)
    receiver.default = Respond(200)
    assert handler.flush(timeout=30) is True
    assert used_bytes(small_disk) < 256 * 1024
    spooled = handler.stats()["spooled"]

    for i in range(6000, 36_000):
        logger.info("y" * 100, extra={"seq": i})

    assert handler.flush(timeout=60) is True
    stats = handler.stats()
    assert (stats["delivered"], stats["dropped"]) == (36_000, NO_DROPS)
    # The disk takes records again: most of what the freed space holds at
    # once (about 6,000 of these), where it would take none were it not back.
    assert stats["spooled"] - spooled > 5_000
    assert list(range(36_000)) == seqs(receiver)
    assert used_bytes(small_disk) < 256 * 1024


# --- files a dead process left that are not quite right -------------------------


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}/"


def heir(receiver: HTTPReceiver, closing: list[logging.Handler], spool: Path) -> HTTPHandler:
    """A handler that adopts *spool* and has delivered everything in it."""
    handler = HTTPHandler(receiver.url, spool_dir=str(spool))
    closing.append(handler)
    assert handler.flush(timeout=30) is True
    return handler


@pytest.mark.parametrize("content", [b"", b"\x8f\x01 not json \xff\x00"])
def test_a_dead_owners_spool_is_adopted_whatever_its_lock_file_holds(
    receiver: HTTPReceiver, closing: list[logging.Handler], tmp_path: Path, content: bytes
) -> None:
    """A lock file emptied by a power cut (or damaged) does not strand the records."""
    spool = tmp_path / "spool"
    crash(dead_url(), spool, 300)
    (lock,) = spool.glob("*.lock")
    lock.write_bytes(content)

    heir(receiver, closing, spool)

    assert list(range(300)) == seqs(receiver)


def test_a_file_that_cannot_be_adopted_is_skipped_reported_once_and_counted(
    receiver: HTTPReceiver,
    closing: list[logging.Handler],
    diagnostics: Diagnostics,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(spool_module, "ADOPT_INTERVAL", 0.02)
    spool = tmp_path / "spool"
    crash(dead_url(), spool, 300)
    (segment,) = spool.glob("*.seg")
    odd = spool / (segment.name.rsplit("-", 1)[0] + "-99999999.seg")
    odd.mkdir()

    handler = heir(receiver, closing, spool)
    time.sleep(0.3)  # several more adoption passes

    assert list(range(300)) == seqs(receiver)
    assert handler.stats()["spool_skipped"] == 1
    assert len([m for m in diagnostics.messages() if str(odd) in m]) == 1


# --- damage inside a segment ----------------------------------------------------


def one_segment(spool: Path) -> Path:
    (segment,) = (spool / name for name in files(spool) if name.endswith(".seg"))
    return segment


def record_start(data: bytes, after: int) -> int:
    """Offset of the first record (its frame header) starting after *after*."""
    return data.find(b'{"timestamp"', after) - REC.size


def test_damage_in_the_middle_of_a_segment_loses_only_the_damaged_records_and_counts_them(
    receiver: HTTPReceiver, closing: list[logging.Handler], tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    crash(dead_url(), spool, 3000)
    segment = one_segment(spool)
    data = bytearray(segment.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = random.Random(11).randbytes(16)
    segment.write_bytes(bytes(data))

    handler = heir(receiver, closing, spool)

    delivered = seqs(receiver)
    lost = handler.stats()["dropped"]["spool_corrupt"]
    assert 1 <= lost <= 2
    assert (len(delivered) + lost, delivered[-1]) == (3000, 2999)


def test_a_delivery_offset_pointing_inside_a_record_sends_that_record_again_and_loses_none(
    receiver: HTTPReceiver, closing: list[logging.Handler], tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    crash(dead_url(), spool, 3000)
    segment = one_segment(spool)
    data = segment.read_bytes()
    start = record_start(data, len(data) // 2)
    match = re.search(rb'"seq":(\d+)', data[start:])
    assert match is not None
    inside = int(match.group(1))
    Path(f"{segment}.ack").write_bytes(struct.pack(">Q", start + REC.size + 10))

    handler = heir(receiver, closing, spool)

    delivered = seqs(receiver)
    assert handler.stats()["dropped"] == NO_DROPS
    assert delivered[0] <= inside
    assert list(range(delivered[0], 3000)) == delivered


def test_records_cut_from_the_end_of_a_finished_segment_are_counted(
    receiver: HTTPReceiver, closing: list[logging.Handler], tmp_path: Path
) -> None:
    """A cut that lands exactly between two records is noticed too."""
    spool = tmp_path / "spool"
    crash(dead_url(), spool, 5000, spool_max_bytes=2_097_152)  # segments of 256 KiB
    first, *others = sorted(spool.glob("*.seg"))
    assert others
    data = first.read_bytes()
    os.truncate(first, record_start(data, len(data) // 2))

    handler = heir(receiver, closing, spool)

    delivered = seqs(receiver)
    lost = handler.stats()["dropped"]["spool_corrupt"]
    assert lost > 0
    assert len(delivered) + lost == 5000


def test_a_spool_written_in_the_previous_format_is_delivered(
    receiver: HTTPReceiver, closing: list[logging.Handler], tmp_path: Path
) -> None:
    """Segments in the previous format (``SFSPOOL1``: length and CRC-32 per record) are read."""
    identity = "http ndjson"
    owner = "4242-0badc0de"
    payloads = [json.dumps({"message": "old", "seq": i}).encode() for i in range(100)]
    body = b"".join(struct.pack(">II", len(p), zlib.crc32(p)) + p for p in payloads)
    (tmp_path / f"{owner}-00000000.seg").write_bytes(b"SFSPOOL1" + identity_digest(identity) + body)
    (tmp_path / f"{owner}.lock").write_text(json.dumps({"pid": 4242, "identity": identity}))

    handler = heir(receiver, closing, tmp_path)

    assert list(range(100)) == seqs(receiver)
    assert handler.stats()["adopted"] == 100
