"""
The store's commands: ``structflow logs``, ``structflow runs``, ``structflow store prune``.

Entries print with the configured renderer (the console renderer's colours
on a terminal), or as JSON lines with ``--json``. Bad input (an unknown
level, a malformed time, a bad ``--where``, an unknown url scheme, a store
that cannot be reached) exits with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import IO, Any

import orjson

from structflow.store._configured import configured_age, configured_url
from structflow.store._dialects import StoreError
from structflow.store._entries import LogEntry, RunSummary
from structflow.store._filters import parse_where_pairs
from structflow.store._store import Store, connect

__all__ = [
    "COMMANDS",
    "Busy",
    "ProgressBar",
    "add_commands",
    "one_line",
    "reader_gone",
    "run_command",
]

COMMANDS = ("logs", "runs", "store")
EXIT_OK = 0
EXIT_BAD_INPUT = 2
#: How the CLI spells the filters in messages.
LABELS = {
    "flow_run_id": "FLOW_RUN_ID",
    "flow_name": "--flow",
    "task_name": "--task",
    "level": "--level",
    "since": "--since",
    "until": "--until",
    "search": "--search",
    "where": "--where",
    "limit": "--limit",
    "state": "--state",
    "older_than": "--older-than",
}
_ERRORS_AT = logging.ERROR
_WARNINGS_AT = logging.WARNING


class BadInput(Exception):
    """A command-line value the store refused; printed as one line, exit status 2."""


def one_line(exc: BaseException) -> str:
    """The message of *exc* on one line: its lines joined by ``; `` (after a colon, a space)."""
    text = ""
    for part in str(exc).splitlines():
        if part := part.strip():
            text += part if not text else (" " if text.endswith(":") else "; ") + part
    return text


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--limit={text!r} is invalid; expected an integer >= 1"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--limit={text!r} is invalid; expected an integer >= 1")
    return value


def add_commands(sub: Any) -> None:
    """Add ``logs``, ``runs`` and ``store prune`` to the ``structflow`` subcommands."""
    logs = sub.add_parser("logs", help="print stored log entries (a run's, or any)")
    logs.add_argument("flow_run_id", nargs="?", metavar="FLOW_RUN_ID", help="one flow run's")
    logs.add_argument("--flow", dest="flow_name", metavar="NAME", help="entries of this flow")
    logs.add_argument("--task", dest="task_name", metavar="NAME", help="entries of this task")
    logs.add_argument("--level", help="the minimum level: debug, info, warning, error, 30 ...")
    logs.add_argument("--since", help="entries at or after: 15m, 1h, 2d or an ISO 8601 time")
    logs.add_argument("--until", help="entries before: a duration ago or an ISO 8601 time")
    logs.add_argument("--search", metavar="WORDS", help="words that must all be in the message")
    logs.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="field equality, repeatable: rows=3, table=users, user.id=u1",
    )
    logs.add_argument(
        "--limit", type=_limit, help="how many of the latest entries (default 1000; 10 --follow)"
    )
    logs.add_argument("--json", action="store_true", help="print JSON lines")
    logs.add_argument("--follow", action="store_true", help="keep printing new entries (Ctrl-C)")
    logs.add_argument("--store", metavar="URL", help="the store (default: the configured one)")
    runs = sub.add_parser("runs", help="list flow runs, newest first")
    runs.add_argument("--flow", dest="flow_name", metavar="NAME", help="runs of this flow")
    runs.add_argument("--state", help="runs in this state: Success, Failed, Running ...")
    runs.add_argument("--since", help="runs active since: 15m, 1h, 2d or an ISO 8601 time")
    runs.add_argument("--limit", type=_limit, default=50, help="most runs shown (default 50)")
    runs.add_argument("--json", action="store_true", help="print JSON lines")
    runs.add_argument("--store", metavar="URL", help="the store (default: the configured one)")
    store = sub.add_parser("store", help="manage the log store")
    actions = store.add_subparsers(dest="store_action", required=True, metavar="ACTION")
    prune = actions.add_parser("prune", help="delete old entries")
    prune.add_argument(
        "--older-than",
        metavar="AGE",
        help="delete entries older than this (30d, 12h); default: [logging.store] retention_days",
    )
    prune.add_argument("--store", metavar="URL", help="the store (default: the configured one)")


def run_command(args: argparse.Namespace) -> int:
    """Run a store command; return its exit status."""
    command: Callable[[argparse.Namespace], int] = {
        "logs": _logs,
        "runs": _runs,
        "store": _prune,
    }[args.command]
    try:
        return command(args)
    except (BadInput, ValueError, StoreError, ImportError) as exc:
        text = one_line(exc)
        name = f"store {args.store_action}" if args.command == "store" else args.command
        sys.stderr.write(f"structflow {name}: {text}\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:
        return reader_gone()


def reader_gone() -> int:
    """
    Stop quietly when the reader of standard output went away (``structflow logs | head``).

    Standard output is pointed at the null device, so that Python's flush at
    exit does not fail a second time; returns exit status 0.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_OK


# --- progress -----------------------------------------------------------------------


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class ProgressBar:
    """
    A plain progress bar on stderr, drawn only when stderr is a terminal.

    Call it as ``bar(done, total, what)``; it redraws one line and ends it
    when ``done`` reaches ``total``.
    """

    def __init__(self, stream: IO[str] | None = None, width: int = 30) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.enabled = _is_terminal(self.stream)
        self._open = False

    def __call__(self, done: int, total: int, what: str) -> None:
        if not self.enabled:
            return
        total = max(total, 1)
        filled = min(self.width, self.width * done // total)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{what} [{bar}] {done:,}/{total:,}")
        self._open = done < total
        if not self._open:
            self.stream.write("\n")
        self.stream.flush()

    def close(self) -> None:
        """End a bar left unfinished (an error, an interruption)."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


class Busy:
    """
    A line on stderr saying that a query still runs, drawn only when stderr is a terminal.

    A query done within *after* seconds draws nothing; a longer one shows
    ``what… N s``, redrawn every *every* seconds, and the line is cleared
    when it ends (queries have no total to show a bar of).
    """

    def __init__(
        self, what: str, stream: IO[str] | None = None, after: float = 1.0, every: float = 0.5
    ) -> None:
        self.what = what
        self.stream = stream if stream is not None else sys.stderr
        self.after = after
        self.every = every
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._drawn = 0

    def __enter__(self) -> Busy:
        if _is_terminal(self.stream):
            self._thread = threading.Thread(target=self._draw, name="structflow-busy", daemon=True)
            self._thread.start()
        return self

    def _draw(self) -> None:
        if self._done.wait(self.after):
            return
        started = time.monotonic() - self.after
        while True:
            text = f"\r{self.what}\u2026 {time.monotonic() - started:.0f} s"
            self.stream.write(text)
            self.stream.flush()
            self._drawn = max(self._drawn, len(text) - 1)
            if self._done.wait(self.every):
                return

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        if self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self.stream.flush()


def _open_store(url: str | None) -> Store:
    bar = ProgressBar()
    try:
        # Reading a store never creates one: a mistyped url is an error, not an empty store.
        return connect(url, create=False, progress=bar)
    finally:
        bar.close()


# --- logs -----------------------------------------------------------------------------


def _formatter() -> logging.Formatter:
    """The formatter of the configured renderer, for standard output."""
    from structflow._config import effective_config
    from structflow._setup import _formatter_options
    from structflow.formatters import formatter_for

    cfg = effective_config()
    options = _formatter_options(cfg)
    renderer = cfg.logging.renderer
    if renderer == "console":
        options["stream"] = sys.stdout
        if cfg.logging.source("datefmt").kind == "default":
            options.pop("datefmt")
    return formatter_for(renderer, **options)


def entry_record(entry: LogEntry) -> logging.LogRecord:
    """A record carrying *entry* as the logger made it, for any formatter to render."""
    from structflow._records import RESERVED

    record = logging.LogRecord(entry.logger, entry.levelno, "", 0, entry.message, None, None)
    record.levelname = entry.level.upper()
    record.created = entry.timestamp.timestamp()
    record.msecs = (record.created - int(record.created)) * 1000
    names: list[str] = []
    context = {
        "flow_name": entry.flow_name,
        "flow_run_id": entry.flow_run_id,
        "task_name": entry.task_name,
        "task_run_id": entry.task_run_id,
        "map_index": entry.map_index,
    }
    for key, value in (*context.items(), *entry.fields.items()):
        if value is None and key in context:
            continue
        name = key + "_" if key in RESERVED or key in record.__dict__ else key
        record.__dict__[name] = value
        names.append(name)
    record.structflow_fields = tuple(names)
    if entry.exception:
        record.exc_text = entry.exception
    return record


def _write(lines: Iterable[str]) -> None:
    out = sys.stdout
    for text in lines:
        out.write(text + "\n")
    out.flush()


def _logs(args: argparse.Namespace) -> int:
    try:
        where = parse_where_pairs(args.where)
    except ValueError as exc:
        raise BadInput(f"--{exc}".replace("key=value", "KEY=VALUE")) from None
    filters: dict[str, Any] = {
        "flow_run_id": args.flow_run_id,
        "flow_name": args.flow_name,
        "task_name": args.task_name,
        "level": args.level,
        "since": args.since,
        "until": args.until,
        "search": args.search,
        "where": where or None,
    }
    render: Callable[[LogEntry], str]
    if args.json:
        render = lambda entry: orjson.dumps(entry.to_dict()).decode("utf-8")  # noqa: E731
    else:
        formatter = _formatter()
        render = lambda entry: formatter.format(entry_record(entry))  # noqa: E731
    with _open_store(args.store) as store:
        if args.follow:
            _notes_on_stderr("structflow logs")
            backlog = args.limit if args.limit is not None else 10
            for entry in _checked(store.follow, filters, limit=backlog):
                _write([render(entry)])
            return EXIT_OK
        limit = args.limit if args.limit is not None else 1000
        with Busy("structflow logs: reading the store"):
            latest = _checked(store.logs, filters, limit=limit + 1, order="desc")
        if len(latest) > limit:
            sys.stderr.write(
                f"structflow logs: showing the latest {limit:,} entries; use --limit or --since "
                "for more\n"
            )
        if latest:
            _write(render(entry) for entry in reversed(latest[:limit]))
        elif not args.json:
            # As `structflow runs` says it: a mistyped run id is not mistaken
            # for a run that logged nothing.
            sys.stderr.write("structflow logs: no entries in the store match\n")
    return EXIT_OK


def _notes_on_stderr(command: str) -> None:
    """
    Show the store's notes (``follow`` lost its connection, follows again) on stderr only.

    One line each, named after *command*; not passed on to the handlers the
    configuration gives the ``structflow`` logger.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{command}: %(message)s"))
    notes = logging.getLogger("structflow.store")
    notes.addHandler(handler)
    notes.setLevel(logging.INFO)
    notes.propagate = False


def _checked(call: Callable[..., Any], filters: dict[str, Any], **more: Any) -> Any:
    """Call a store method, naming filters the CLI way in any ValueError."""
    try:
        return call(**filters, **more)
    except ValueError as exc:
        text = str(exc)
        for name, label in LABELS.items():
            if text.startswith(f"{name}=") or text.startswith(f"{name} "):
                text = label + text[len(name) :]
                break
        raise BadInput(text) from None


# --- runs -----------------------------------------------------------------------------


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _local(moment: dt.datetime | None) -> str:
    return "-" if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _count(run: RunSummary, low: int, high: int | None = None) -> int:
    from structflow.store._filters import level_number

    total = 0
    for level, n in run.counts.items():
        number = level_number(level)
        if number is not None and number >= low and (high is None or number < high):
            total += n
    return total


def runs_table(runs: list[RunSummary]) -> list[str]:
    """The aligned table ``structflow runs`` prints."""
    header = ("STARTED", "FLOW", "STATE", "DURATION", "TASKS", "WARNINGS", "ERRORS", "FLOW RUN ID")
    rows = [header]
    for run in runs:
        rows.append(
            (
                _local(run.started),
                run.flow_name or "-",
                run.state or "-",
                _duration(run.duration_s),
                str(len(run.task_runs)),
                str(_count(run, _WARNINGS_AT, _ERRORS_AT)),
                str(_count(run, _ERRORS_AT)),
                run.flow_run_id,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _runs(args: argparse.Namespace) -> int:
    filters = {"flow_name": args.flow_name, "state": args.state, "since": args.since}
    with _open_store(args.store) as store, Busy("structflow runs: reading the store"):
        runs = _checked(store.runs, filters, limit=args.limit)
    if args.json:
        _write(orjson.dumps(run.to_dict()).decode("utf-8") for run in runs)
    elif runs:
        _write(runs_table(runs))
    else:
        sys.stderr.write("structflow runs: no flow runs in the store match\n")
    return EXIT_OK


# --- store prune ------------------------------------------------------------------------


def _prune(args: argparse.Namespace) -> int:
    older_than: Any = args.older_than if args.older_than is not None else configured_age()
    if older_than is None:
        raise BadInput("give --older-than (such as 30d) or set [logging.store] retention_days")
    url = args.store if args.store is not None else configured_url()
    with _open_store(url) as store:
        bar = ProgressBar()
        try:
            deleted = _checked(store.prune, {"older_than": older_than}, progress=bar)
        finally:
            bar.close()
        shown = store.url
    print(f"structflow store prune: deleted {deleted:,} entries from {shown}")
    return EXIT_OK
