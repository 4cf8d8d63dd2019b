"""
Real small filesystems for the spool tests: a tmpfs mounted for one test.

Mounting needs root. On a developer machine without it the tests that need
a small disk are skipped; under ``CI=true`` they fail instead (see
:func:`needs.require`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from needs import require


def _mount_tmpfs(mountpoint: Path, size: int) -> bool:
    """Mount a tmpfs of *size* bytes on *mountpoint*; return whether it worked."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mountpoint)],
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


@contextlib.contextmanager
def small_disk(mountpoint: Path, size: int) -> Iterator[Path]:
    """A tmpfs of *size* bytes mounted on *mountpoint* (made if missing) while the block runs."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    require(_mount_tmpfs(mountpoint, size), f"a tmpfs of {size} bytes (mounting needs root)")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "--lazy", str(mountpoint)], capture_output=True, check=False)


def used_bytes(path: Path) -> int:
    """Bytes in use on the filesystem holding *path*."""
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


@pytest.fixture(name="small_disk")
def small_disk_fixture(tmp_path: Path) -> Iterator[Path]:
    """A directory on a 2 MiB filesystem of its own, unmounted after the test."""
    with small_disk(tmp_path / "small-disk", 2 * 1024 * 1024) as mountpoint:
        yield mountpoint
