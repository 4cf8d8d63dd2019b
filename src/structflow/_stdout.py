"""
Printed lines as log records: :class:`RedirectToLog` and ``@task(log_stdout=True)``.

``print`` writes to ``sys.stdout``, one object for the whole process, so
swapping it (as ``contextlib.redirect_stdout`` does) would catch what every
thread prints. For ``log_stdout`` tasks, :func:`prints_to` instead installs a
:class:`StdoutRouter` as ``sys.stdout`` while at least one such task runs. The
router looks up a context variable: in a log_stdout task it holds that task
run's :class:`RedirectToLog`; everywhere else it is unset and the write goes
to the stream that was ``sys.stdout`` when the router was installed (a test
runner's capture, an application's own redirect). Executors run each task in
a copy of the submitting context, so concurrent tasks on threads and Dask
worker threads never see each other's lines. Nothing of this runs for tasks
without ``log_stdout``.

Logging handlers may write to ``sys.stdout`` themselves (structflow's stream
handler looks it up at each record). A write made while a handler handles a
record is never turned into a record again: it goes to the real stream, so
a task's own log lines are not logged twice and nothing loops.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import logging
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any, Protocol, TextIO

from structflow._setup import get_logger

__all__ = ["RedirectToLog", "StdoutRouter", "prints_to"]

#: A partial line longer than this (in characters) is logged without waiting
#: for its newline, so a task printing without newlines cannot grow it forever.
MAX_PENDING_CHARS = 1_000_000
# Frames walked up from a write, looking for a logging handler at work.
_HANDLER_SEARCH_DEPTH = 64
_HANDLE_CODE = logging.Handler.handle.__code__


class SupportsLog(Protocol):
    """What :class:`RedirectToLog` needs of a logger: stdlib's ``log(level, msg)``."""

    def log(self, level: int, msg: object, /) -> None: ...


def _inside_handler() -> bool:
    """Return True when the caller's write comes from a logging handler handling a record."""
    frame: FrameType | None = sys._getframe(1)
    for _ in range(_HANDLER_SEARCH_DEPTH):
        if frame is None:
            return False
        if frame.f_code is _HANDLE_CODE:
            return True
        frame = frame.f_back
    return False


def _check_level(level: object) -> int:
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    if isinstance(level, str):
        names = logging.getLevelNamesMapping()
        number = names.get(level, names.get(level.upper()))
        if number is not None:
            return number
        raise ValueError(
            f"RedirectToLog(level={level!r}): not a level name; use a number or one of "
            f"{', '.join(sorted(names, key=names.__getitem__))}"
        )
    raise TypeError(f"RedirectToLog(level=...) must be an int or a level name, got {level!r}")


class RedirectToLog(io.TextIOBase, TextIO):
    """
    A text stream that logs what is written to it, one record per line.

    Args:
        logger: where the lines go; defaults to ``get_logger("stdout")``
            (``structflow.stdout``), as in Prefect 1.
        level: the records' level, a number or a level name (``"INFO"``,
            or a name registered with :func:`logging.addLevelName`).

    A line is logged when its newline is written, with trailing whitespace
    removed; blank lines are skipped, as Prefect 1 did. ``flush()`` (and
    ``close()``) logs a partial line as it stands. Records are logged on the
    writing thread, so they carry the run context of the task that printed.
    A write made by a logging handler (one that writes to ``sys.stdout``
    while this object is ``sys.stdout``) goes to the process's original
    standard output, ``sys.__stdout__``, instead of looping back into the log.

    Example::

        import contextlib
        from structflow.utilities.logging import RedirectToLog, get_logger

        with contextlib.redirect_stdout(RedirectToLog(get_logger("Task B"))):
            print("hello")   # one INFO record "hello" on structflow.Task B

    ``@task(log_stdout=True)`` uses one for each task run, without replacing
    ``sys.stdout`` for the other threads.

    Raises:
        TypeError: *level* is neither a number nor a name.
        ValueError: *level* is a name no level has.

    .. versionadded:: 0.1.0
    """

    def __init__(self, logger: SupportsLog | None = None, level: int | str = logging.INFO) -> None:
        super().__init__()
        self.logger: SupportsLog = get_logger("stdout") if logger is None else logger
        self.level = _check_level(level)
        self._pending: list[str] = []
        self._pending_chars = 0
        # Reentrant: a handler may write here while a line is being logged.
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        name = getattr(self.logger, "name", None)
        shown = repr(name) if isinstance(name, str) else repr(self.logger)
        return f"<RedirectToLog {shown} ({logging.getLevelName(self.level)})>"

    def __del__(self) -> None:
        # IOBase's finaliser would close(), logging a partial line at an
        # arbitrary point of garbage collection; a partial line is logged by
        # flush() or close() only.
        pass

    def write(self, s: str) -> int:
        """
        Log every complete line of *s*; keep a partial last line for later.

        Returns:
            ``len(s)``, as a text file's ``write`` does.

        Raises:
            TypeError: *s* is not a str.
            ValueError: the stream is closed.
        """
        if _inside_handler():
            fallback = sys.__stdout__
            if fallback is None:
                return len(s)
            return fallback.write(s)
        return self.write_lines(s)

    def write_lines(self, s: str) -> int:
        """:meth:`write` for a caller that knows no logging handler is writing."""
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        if self.closed:
            raise ValueError("I/O operation on a closed RedirectToLog")
        with self._lock:
            if "\n" not in s:
                self._pending.append(s)
                self._pending_chars += len(s)
                if self._pending_chars > MAX_PENDING_CHARS:
                    self._log_pending()
                return len(s)
            *lines, rest = s.split("\n")
            if self._pending:
                lines[0] = "".join(self._pending) + lines[0]
                self._pending.clear()
            self._pending_chars = 0
            if rest:
                self._pending.append(rest)
                self._pending_chars = len(rest)
            for line in lines:
                self._log(line)
        return len(s)

    def flush(self) -> None:
        """Log a partial line as it stands (print's ``flush=True`` calls this)."""
        with self._lock:
            self._log_pending()

    def close(self) -> None:
        """Log a partial line and close the stream; later writes raise ValueError."""
        if not self.closed:
            self.flush()
        super().close()

    def _log_pending(self) -> None:
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            self._pending_chars = 0
            self._log(text)

    def _log(self, line: str) -> None:
        text = line.rstrip()
        if text:
            self.logger.log(self.level, text)

    # -- what the rest of a text file says about itself --

    def writable(self) -> bool:
        """True: the stream takes writes."""
        return True

    def isatty(self) -> bool:
        """False: what is written goes to a log, not to a terminal."""
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        """``"utf-8"``: lines are logged as str, so any text can be written."""
        return "utf-8"

    @property
    def errors(self) -> str:  # type: ignore[override]
        """``"strict"``, as a text file reports it."""
        return "strict"

    @property
    def newlines(self) -> None:  # type: ignore[override]
        """None: the stream is not read."""
        return None

    @property
    def line_buffering(self) -> bool:
        """True: a line is logged as soon as its newline is written."""
        return True

    @property
    def name(self) -> str:
        """The logger's name in angle brackets, like ``<stdout>``."""
        name = getattr(self.logger, "name", None)
        return f"<{name}>" if isinstance(name, str) else "<RedirectToLog>"

    @property
    def mode(self) -> str:
        """``"w"``."""
        return "w"

    @property
    def buffer(self) -> Any:
        """There is no binary buffer under the stream: raises AttributeError."""
        raise AttributeError("RedirectToLog has no binary buffer; write str to it")


_current: contextvars.ContextVar[RedirectToLog | None] = contextvars.ContextVar(
    "structflow_stdout_redirect", default=None
)


class StdoutRouter(io.TextIOBase, TextIO):
    """
    ``sys.stdout`` while log_stdout tasks run: each write goes to its context's destination.

    In a log_stdout task run the destination is that run's
    :class:`RedirectToLog`; elsewhere, and for writes made by logging
    handlers, it is *target*, the stream that was ``sys.stdout`` when the
    router was installed. Everything else a text file has (``fileno``,
    ``encoding``, ``buffer``, ...) is *target*'s.
    """

    def __init__(self, target: TextIO | None) -> None:
        super().__init__()
        self.target = target

    def __repr__(self) -> str:
        return f"<structflow stdout router over {self.target!r}>"

    def __del__(self) -> None:
        # IOBase's finaliser would close() the target: the real stdout.
        pass

    def __getattr__(self, name: str) -> Any:
        # Only for what the router does not define; "target" itself is set
        # in __init__, so asking for it here means it is not set (yet).
        target = self.__dict__.get("target")
        if name == "target" or target is None:
            raise AttributeError(name)
        return getattr(target, name)

    def _redirect(self) -> RedirectToLog | None:
        redirect = _current.get()
        if redirect is None or redirect.closed or _inside_handler():
            return None
        return redirect

    def write(self, s: str) -> int:
        """Write *s* to the current task run's log, or else to the target stream."""
        redirect = self._redirect()
        if redirect is not None:
            return redirect.write_lines(s)
        target = self.target
        if target is None:
            # As print() does when sys.stdout is None.
            return len(s)
        return target.write(s)

    def flush(self) -> None:
        """Flush the current task run's partial line, or else the target stream."""
        redirect = self._redirect()
        if redirect is not None:
            redirect.flush()
        elif self.target is not None:
            self.target.flush()

    def isatty(self) -> bool:
        """False in a log_stdout task run (its lines go to a log), else the target's answer."""
        if _current.get() is not None:
            return False
        return self.target is not None and self.target.isatty()

    def fileno(self) -> int:
        """The target's file descriptor (writing to it bypasses the log)."""
        if self.target is None:
            raise io.UnsupportedOperation("sys.stdout was None when the router was installed")
        return self.target.fileno()

    def writable(self) -> bool:
        """True: the router takes writes."""
        return True

    def close(self) -> None:
        """Close the target stream, as closing ``sys.stdout`` would."""
        if self.target is not None:
            self.target.close()

    @property
    def closed(self) -> bool:
        """Whether the target stream is closed."""
        return self.target is not None and self.target.closed

    @property
    def encoding(self) -> str:  # type: ignore[override]
        """The target's encoding (``"utf-8"`` without a target)."""
        return getattr(self.target, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        """The target's error handler."""
        return getattr(self.target, "errors", None)

    @property
    def newlines(self) -> Any:  # type: ignore[override]
        """The target's ``newlines``."""
        return getattr(self.target, "newlines", None)

    @property
    def line_buffering(self) -> bool:
        """The target's ``line_buffering``."""
        return bool(getattr(self.target, "line_buffering", False))

    @property
    def name(self) -> Any:
        """The target's name (``<stdout>``)."""
        return getattr(self.target, "name", "<stdout>")

    @property
    def mode(self) -> str:
        """The target's mode (``"w"``)."""
        return str(getattr(self.target, "mode", "w"))

    @property
    def buffer(self) -> Any:
        """The target's binary buffer: bytes written there bypass the log."""
        if self.target is None:
            raise AttributeError("sys.stdout was None when the router was installed")
        return self.target.buffer


_install_lock = threading.Lock()
_users = 0
_router: StdoutRouter | None = None


def _install() -> None:
    global _users, _router
    with _install_lock:
        if _users == 0:
            current = sys.stdout
            if isinstance(current, StdoutRouter):
                # A router left in place: someone else's stream sat on top of
                # it when the last run ended, and has been taken away since.
                _router = current
            else:
                _router = StdoutRouter(current)
                sys.stdout = _router
        _users += 1


def _uninstall() -> None:
    global _users, _router
    with _install_lock:
        _users -= 1
        if _users == 0:
            router, _router = _router, None
            # Put back what was there, unless someone has replaced the router
            # since: their stream stays, and the router under it passes
            # everything through.
            if router is not None and sys.stdout is router:
                sys.stdout = router.target


@contextlib.contextmanager
def prints_to(redirect: RedirectToLog) -> Iterator[None]:
    """
    Send what the current context prints to *redirect* for the block.

    Threads and tasks running in other contexts keep printing where they
    did. At the end of the block a partial line is logged; the stream that
    was ``sys.stdout`` is put back when no other block is open.
    """
    _install()
    token = _current.set(redirect)
    try:
        yield
    finally:
        _current.reset(token)
        try:
            redirect.flush()
        finally:
            _uninstall()
