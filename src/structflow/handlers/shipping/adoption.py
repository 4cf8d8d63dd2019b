"""
Lock files, and finding what processes that ended left in a spool directory.

A worker tells live owners from dead ones with ``fcntl.flock``: a live owner
holds an exclusive lock on its ``<owner>.lock`` file, which the kernel
releases when the process dies, however it dies. Lock files are created
under a temporary name and renamed once locked (and their content synced),
so no one ever sees an unlocked fresh one.

What a lock file says (the identity of the records) is a hint: a lock file
emptied by a power cut, or damaged, does not strand its owner's segments,
whose own headers say what they hold. A file that cannot be adopted (an
unknown header, a directory named like a segment) is skipped, reported once
and counted. The :class:`~.spool.Spool` takes over what :meth:`Adopter.find`
returns.

The :class:`Adopter` also keeps the lock files this process holds: its own,
created when it first writes, and those of the dead owners it took over,
each removed once every segment of its owner is delivered. At close the
locks are released; a lock file stays (unlocked) while its owner's segments
remain, which is how the next worker knows they are to be adopted.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import stat
from collections.abc import Callable, Collection
from dataclasses import dataclass

from structflow.handlers.shipping.segments import (
    HEADER_SIZE,
    MAGIC,
    MAGIC_V1,
    Segment,
    fsync_dir,
    identity_digest,
    parse_segment_name,
    read_ack,
    unlink,
)

__all__ = ["Adopted", "Adopter"]

Report = Callable[..., object]


@dataclass
class Adopted:
    """What a dead owner left: its locked lock file and its segments, oldest first."""

    owner: str
    fd: int
    segments: list[Segment]


class Adopter:
    """
    The lock files of one spool directory, for one identity.

    Args:
        directory: the spool directory.
        identity: what this worker's entries are encoded for.
        fsync: the spool's policy; lock files are synced unless ``"never"``.
        report: ``report(kind, level, message, *args)``, rate-limited diagnostics.
    """

    def __init__(self, directory: str, identity: str, fsync: str, report: Report) -> None:
        self.directory = directory
        self.identity = identity
        self._digest = identity_digest(identity)
        self.fsync = fsync
        self._report = report
        #: Files that cannot be adopted, reported and counted once.
        self._skipped: set[str] = set()
        #: Segments written for another identity, behind an unreadable lock file.
        self._foreign: set[str] = set()
        #: How many files were skipped.
        self.skipped = 0
        self._forget_held()

    def _forget_held(self) -> None:
        #: This process's owner name, once it has written (None: not yet).
        self.owner: str | None = None
        self._owner_fd: int | None = None
        #: Dead owner taken over -> the descriptor of its locked lock file.
        self._adopted_fds: dict[str, int] = {}
        #: Owner -> how many of its segments the spool still lists.
        self._segments_left: dict[str, int] = {}

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    # --- this process's own lock file ----------------------------------------

    def create_lock(self, owner: str) -> int:
        """Create and lock ``<owner>.lock``; return its descriptor (kept for the process's life)."""
        tmp = self._path(f".{owner}.lock.tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.write_lock(fd)
            # Visible under its final name only once locked.
            os.rename(tmp, self._path(f"{owner}.lock"))
        except BaseException:
            os.close(fd)
            unlink(tmp)
            raise
        if self.fsync != "never":
            fsync_dir(self.directory)
        return fd

    def write_lock(self, fd: int) -> None:
        """Say in a held lock file what its segments hold; synced, so a power cut keeps it."""
        content = json.dumps({"pid": os.getpid(), "identity": self.identity}).encode() + b"\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, content, 0)
        if self.fsync != "never":
            os.fsync(fd)

    # --- the locks this process holds -------------------------------------------

    def own(self) -> str:
        """This process's owner name; its lock file is created on the first call."""
        if self.owner is None:
            owner = f"{os.getpid()}-{secrets.token_hex(4)}"
            self._owner_fd = self.create_lock(owner)
            self.owner = owner
            self._segments_left.setdefault(owner, 0)
        return self.owner

    def held(self) -> set[str]:
        """The owners whose lock this process holds: its own and those it took over."""
        held = set(self._adopted_fds)
        if self.owner is not None:
            held.add(self.owner)
        return held

    def took_over(self, adopted: Adopted) -> None:
        """Hold *adopted*'s lock until each of its segments is delivered."""
        self._adopted_fds[adopted.owner] = adopted.fd
        self._segments_left[adopted.owner] = len(adopted.segments)

    def segment_added(self, owner: str) -> None:
        """This process started one more segment of *owner* (its own)."""
        self._segments_left[owner] = self._segments_left.get(owner, 0) + 1

    def segment_gone(self, owner: str) -> bool:
        """
        One segment of *owner* was deleted; return whether it was a dead owner's last.

        Everything that owner left is then delivered: its lock is retired.
        """
        left = self._segments_left.get(owner, 1) - 1
        self._segments_left[owner] = left
        if left > 0 or owner not in self._adopted_fds:
            return False
        unlink(self._path(f"{owner}.lock"))
        os.close(self._adopted_fds.pop(owner))
        del self._segments_left[owner]
        return True

    def release(self, owners_left: Collection[str]) -> None:
        """At close: unlock every lock held, removing those of owners not in *owners_left*."""
        for owner, fd in list(self._adopted_fds.items()):
            if owner not in owners_left:
                unlink(self._path(f"{owner}.lock"))
            os.close(fd)
        self._adopted_fds.clear()
        if self.owner is not None:
            if self.owner not in owners_left:
                unlink(self._path(f"{self.owner}.lock"))
            if self._owner_fd is not None:
                os.close(self._owner_fd)
        self._owner_fd = None

    def after_fork_in_child(self) -> None:
        """
        Forget the parent's locks in a forked child, without touching them.

        The child's copies of the descriptors are closed (which releases no
        lock: the parent still holds its own); the child gets its own owner
        name on its first write, and counts skipped files afresh.
        """
        for fd in [self._owner_fd, *self._adopted_fds.values()]:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._forget_held()
        self.skipped = 0

    # --- dead owners ---------------------------------------------------------------

    def find(self, own: Collection[str]) -> list[Adopted]:
        """
        Lock and open what dead owners with this identity left, skipping the owners in *own*.

        An owner whose lock file is gone (removed by hand) is claimed with a
        fresh lock, created atomically only if absent. A dead owner that left
        nothing to adopt has its lock file removed.

        Raises:
            OSError: the directory cannot be listed.
        """
        names = os.listdir(self.directory)
        locks = sorted(n[:-5] for n in names if n.endswith(".lock") and not n.startswith("."))
        segs_by_owner: dict[str, list[tuple[int, str]]] = {}
        for name in names:
            parsed = parse_segment_name(name)
            if parsed is not None and name not in self._skipped and name not in self._foreign:
                segs_by_owner.setdefault(parsed[0], []).append((parsed[1], name))
        found: list[Adopted] = []
        for owner in locks:
            if owner in own:
                continue
            fd = self._lock_dead(self._path(f"{owner}.lock"))
            if fd is not None:
                self._open_all(owner, fd, segs_by_owner.get(owner, []), found)
        for owner, segs in segs_by_owner.items():
            if owner in locks or owner in own:
                continue
            fd = self._claim_orphan(owner)
            if fd is not None:
                self._open_all(owner, fd, segs, found)
        return found

    def _lock_dead(self, path: str) -> int | None:
        """
        Lock a dead owner's lock file; None when it lives, or wrote for another identity.

        A lock file that says nothing readable (emptied by a power cut, or
        damaged) is taken: the segments' own headers then decide.
        """
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # a live owner holds it
            return None
        try:
            # Another adopter may have finished with it and unlinked it
            # between our open() and flock(): then the file is stale.
            st_fd, st_path = os.fstat(fd), os.stat(path)
            if (st_fd.st_ino, st_fd.st_dev) != (st_path.st_ino, st_path.st_dev):
                raise FileNotFoundError(path)
            content = os.pread(fd, 4096, 0)
        except OSError:
            os.close(fd)
            return None
        identity = _lock_identity(content)
        if identity is not None and identity != self.identity:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            self._report(
                "spool_identity",
                "warning",
                "spool_dir %s holds records encoded for %r, not %r; they are left for a "
                "handler of that kind (use one spool_dir per handler)",
                self.directory,
                identity,
                self.identity,
            )
            return None
        return fd

    def _claim_orphan(self, owner: str) -> int | None:
        tmp = self._path(f".{owner}.{secrets.token_hex(4)}.lock.tmp")
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.write_lock(fd)
            os.link(tmp, self._path(f"{owner}.lock"))  # fails if someone else claimed it
        except OSError:
            os.close(fd)
            return None
        finally:
            unlink(tmp)
        return fd

    def _open_all(
        self, owner: str, fd: int, segs: list[tuple[int, str]], found: list[Adopted]
    ) -> None:
        """Open *owner*'s segments; add them to *found*, or give the lock file up."""
        segments: list[Segment] = []
        left_for_others = False
        for _number, name in sorted(segs):
            seg = self._open(owner, name)
            if seg is not None:
                segments.append(seg)
            left_for_others = left_for_others or name in self._foreign
        if not segments:
            if not left_for_others:
                unlink(self._path(f"{owner}.lock"))
            os.close(fd)
            return
        with contextlib.suppress(OSError):
            # Ours now: if this process dies too, the next one adopts them.
            self.write_lock(fd)
        found.append(Adopted(owner, fd, segments))

    def _skip(self, name: str, why: str) -> None:
        """Leave a file that cannot be adopted where it is: report it once and count it."""
        self._skipped.add(name)
        self.skipped += 1
        self._report(
            f"spool_skip {name}",
            "error",
            "spool file %s %s; it is left in place, not delivered",
            self._path(name),
            why,
        )

    def _open(self, owner: str, name: str) -> Segment | None:
        """Open one segment of a dead owner for reading; None when it is not to be adopted."""
        path = self._path(name)
        try:
            rfd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                self._skip(name, f"cannot be opened ({exc.strerror})")
            return None
        try:
            info = os.fstat(rfd)
            if not stat.S_ISREG(info.st_mode):
                os.close(rfd)
                self._skip(name, "is not a regular file")
                return None
            header = os.pread(rfd, HEADER_SIZE, 0)
        except OSError as exc:
            os.close(rfd)
            self._skip(name, f"cannot be read ({exc.strerror})")
            return None
        size = info.st_size
        magic, digest = header[:8], header[8:]
        if len(header) == HEADER_SIZE and magic in (MAGIC, MAGIC_V1) and digest != self._digest:
            os.close(rfd)
            # Behind an unreadable lock file: its own handler kind adopts it.
            self._foreign.add(name)
            self._report(
                f"spool_foreign {name}",
                "warning",
                "spool segment %s holds records encoded for another handler kind, not %r; "
                "it is left for a handler of that kind (use one spool_dir per handler)",
                path,
                self.identity,
            )
            return None
        if len(header) < HEADER_SIZE or magic not in (MAGIC, MAGIC_V1):
            os.close(rfd)
            if len(header) < HEADER_SIZE and header == (MAGIC + self._digest)[: len(header)]:
                # Died while creating it: nothing was ever written there.
                unlink(path)
                unlink(path + ".ack")
                return None
            self._skip(name, "has an unknown header")
            return None
        seg = Segment(
            self.directory, name, owner, -1, adopted=True, version=1 if magic == MAGIC_V1 else 2
        )
        seg.rfd = rfd
        seg.end = seg.size = size
        seg.ack_off = seg.read_off = self._check_ack(seg, read_ack(path, size))
        return seg

    def _check_ack(self, seg: Segment, ack: int) -> int:
        """
        Return the delivered offset to resume *seg* from.

        An offset that does not fall on a record boundary (a damaged
        ``.ack`` file) is moved back to the start of the record it falls
        in: that record may be delivered twice, none is lost.
        """
        if seg.version == 1 or ack in (HEADER_SIZE, seg.end) or seg.frame_at(ack, seg.end):
            return ack
        start = seg.boundary_at_or_before(ack)
        if start != ack:
            self._report(
                "spool_corrupt",
                "warning",
                "spool segment %s: the delivery progress in its .ack file (offset %d) is not "
                "at a record boundary; resuming from offset %d (a record may be sent twice)",
                seg.path,
                ack,
                start,
            )
        return start


def _lock_identity(content: bytes) -> str | None:
    """The identity a lock file names; None when it says nothing readable."""
    try:
        data = json.loads(content)
    except ValueError:
        return None
    identity = data.get("identity") if isinstance(data, dict) else None
    return identity if isinstance(identity, str) else None
