"""
:class:`Store`: ingest, query, follow and prune the stored records.

Every method takes the store's lock for the time of its queries, so one
``Store`` may be shared by threads; a process may open as many stores (on
the same file or database) as it likes.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import orjson

from structflow.store._configured import configured_age, configured_url
from structflow.store._dialects import (
    Dialect,
    Progress,
    RefusedData,
    StillLocked,
    StoreError,
    dialect_for,
)
from structflow.store._entries import IngestResult, LogEntry, RunSummary
from structflow.store._filters import (
    LOG_FILTERS,
    Query,
    build_query,
    decode_cursor,
    encode_cursor,
    from_micros,
    parse_limit,
    parse_text,
    parse_time,
)
from structflow.store._ingest import Columns, InvalidLine, parse_line
from structflow.store._runs import decode_run_cursor, list_runs, summarise_run
from structflow.store._schema import migrate

__all__ = ["Store", "connect"]

T = TypeVar("T")

# From level to map_index, the columns are LogEntry's fields in its order:
# _entry hands them on by position.
_SELECT = (
    "SELECT seq, uid, ts, level, levelno, logger, message, flow_name, flow_run_id, task_name, "
    "task_run_id, map_index, {fields}, exception FROM structflow_entries"
)
#: Rows per query while following or reading a backlog.
_PAGE = 1000
#: Rows deleted per transaction by prune (other writers get the lock between).
_PRUNE_CHUNK = 5000
#: Longest wait between tries while following a store whose connection was lost.
_RECONNECT_MAX_SECONDS = 5.0
#: Where ``follow`` says that it lost the connection, and that it follows again.
_logger = logging.getLogger("structflow.store")
_loads = orjson.loads


def _driver_errors() -> tuple[type[Exception], ...]:
    errors: list[type[Exception]] = [sqlite3.Error]
    try:
        import psycopg
    except ImportError:
        pass
    else:
        errors.append(psycopg.Error)
    return tuple(errors)


_DRIVER_ERRORS = _driver_errors()


def connect(
    url: str | None = None,
    *,
    create: bool = True,
    timeout: float = 30.0,
    progress: Progress | None = None,
) -> Store:
    """
    Open the log store at *url*, creating or upgrading its schema as needed.

    Args:
        url: ``sqlite:///path/to/logs.db`` (relative, ``~/...``, or
            ``sqlite:////absolute/path``) or
            ``postgresql://user:password@host:5432/db`` (the
            ``structflow[postgres]`` extra). None: ``[logging.store] url``
            from the configuration, else ``sqlite:///~/.structflow/logs.db``.
        create: make the store when there is none yet (the file, its
            directory, the tables). False: a url where nothing was ever stored
            (a mistyped path, say) raises :class:`StoreError` and leaves the
            database as it was; ``structflow logs``, ``runs`` and ``store
            prune`` open stores this way.
        timeout: seconds to wait for a database lock or a connection.
        progress: called as ``progress(done, total, what)`` while a schema
            upgrade rewrites existing entries.

    Returns:
        The open :class:`Store` (also a context manager that closes it).

    Raises:
        ValueError: *url* is invalid (unknown scheme, no path).
        StoreError: the store cannot be reached or opened, its schema is
            newer than this structflow, or (with *create* false) it does not
            exist.
        ImportError: a PostgreSQL url without psycopg installed.

    .. versionadded:: 0.1.0
    """
    dialect = dialect_for(configured_url() if url is None else url, timeout)
    _open_schema(dialect, create, progress, "opening the store")
    return Store(dialect)


def _open_schema(dialect: Dialect, create: bool, progress: Progress | None, doing: str) -> None:
    """Connect *dialect* and bring its schema up to date; closed again on any error."""
    try:
        dialect.open(create)
        migrate(dialect, progress)
    except _DRIVER_ERRORS as exc:
        dialect.close()
        raise dialect.translate(exc, doing) from None
    except BaseException:
        dialect.close()
        raise


class Store:
    """
    A log store on SQLite or PostgreSQL; made by :func:`connect`.

    Both backends behave the same: the same filters, the same results, the
    same errors.

    .. versionadded:: 0.1.0
    """

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._lock = threading.RLock()
        self._closed = False

    @property
    def url(self) -> str:
        """The store's url, without its password."""
        return self._dialect.shown

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._dialect.name

    def __repr__(self) -> str:
        state = " (closed)" if self._closed else ""
        return f"<structflow Store {self.url!r}{state}>"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection; the store cannot be used afterwards (idempotent)."""
        with self._lock:
            self._closed = True
            self._dialect.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def _do(self, doing: str, work: Callable[[Dialect], T]) -> T:
        with self._lock:
            if self._closed:
                raise StoreError(f"store {self.url}: {doing} failed: the store is closed")
            dialect = self._dialect
            if dialect.removed():
                self._reopen(doing)
            was_open = dialect.is_open
            try:
                return work(dialect)
            except _DRIVER_ERRORS as exc:
                if not (was_open and not dialect.is_open):
                    raise dialect.translate(exc, doing) from None
            # The connection was lost since its last use (PostgreSQL restarted,
            # a proxy closed it while idle): once more on a new one. Every
            # operation may run twice: a write stores an entry once per id,
            # and a prune deletes what is old whether or not it ran.
            try:
                return work(dialect)
            except _DRIVER_ERRORS as exc:
                raise dialect.translate(exc, doing) from None

    def _reopen(self, doing: str) -> None:
        """Open the database the url names now, in place of the one removed (lock held)."""
        dialect = self._dialect
        dialect.close()
        _open_schema(dialect, dialect.create, None, doing)
        _logger.warning(
            "store %s: its files were removed while it was open; %s",
            self.url,
            "a new store was made there" if dialect.create else "opened the store there now",
        )

    def after_fork_in_child(self) -> None:
        """Forget the connection inherited from the parent; the next use opens a new one."""
        self._lock = threading.RLock()
        self._dialect.forget()

    # --- writing ---------------------------------------------------------------------

    def ingest(self, lines: Iterable[bytes | str | Mapping[str, Any]]) -> IngestResult:
        """
        Store JSON lines, in one transaction; lines seen before are not stored again.

        Each line is one JSON object as :class:`structflow.formatters.JsonFormatter`
        renders it with the default schema (bytes, text, or the dict itself):

        * ``timestamp`` (RFC 3339; without an offset: UTC) and ``message`` are
          required; ``level`` (default ``info``) and ``logger`` (default ``""``);
        * the run context ``flow_name``, ``flow_run_id``, ``task_name``,
          ``task_run_id`` (strings) and ``map_index`` (an integer);
        * ``exception``: ``{type, message, traceback}`` (the traceback text is
          kept) or a string;
        * ``_record_id``: the sender's unique id of the line (1 to 128
          characters). A line whose id is already stored is counted as a
          duplicate and not stored again, which makes a retried batch safe.
          Without it, a hash of the line stands in (identical lines are then
          stored once);
        * ``_levelno``: the level's number, for level names the store does not
          know (without it such a level ranks as INFO);
        * every other key (``task_run_count``, ``lifecycle``, bound keys,
          ``extra=`` fields ...) is kept in ``fields``.

        NUL characters become U+FFFD and lone surrogates their ``\\udXXX``
        escape, as every backend can store them.

        Returns:
            How many lines were stored, how many were duplicates, and the
            index and reason of every invalid line (the valid ones are stored
            all the same), including lines the database refused (see
            :meth:`store_entries`).

        Raises:
            StoreError: the database failed; nothing of the batch was stored
                (or, while halving a refused batch, part of it was: ingesting
                the same lines again stores each once).
        """
        encode = self.encode_entry
        entries: list[bytes] = []
        positions: list[int] = []
        invalid: list[tuple[int, str]] = []
        seen: set[str] = set()
        repeated = 0
        for index, line in enumerate(lines):
            try:
                uid, columns = parse_line(line)
                entry = encode(columns)
            except InvalidLine as exc:
                invalid.append((index, str(exc)))
                continue
            except Exception as exc:  # a line no rule foresaw must not stop the others
                invalid.append((index, f"{type(exc).__name__}: {exc}"))
                continue
            if uid in seen:
                repeated += 1
            else:
                seen.add(uid)
                entries.append(entry)
                positions.append(index)
        if not entries:
            return IngestResult(0, repeated, invalid)
        result = self.store_entries(entries)
        if result.invalid:
            invalid = sorted(invalid + [(positions[i], why) for i, why in result.invalid])
        return IngestResult(result.stored, repeated + result.duplicates, invalid)

    def encode_entry(self, columns: Columns) -> bytes:
        """An entry of *columns* (in the order of ``COLUMNS``), encoded as the store keeps it."""
        return self._dialect.encode_entry(columns)

    def store_entries(self, entries: Sequence[bytes]) -> IngestResult:
        """
        Store entries already made (by StoreHandler), in one transaction.

        An entry holds the columns of one record as the store's dialect
        encodes them (:meth:`encode_entry`); one whose id is stored already
        is left out (a duplicate).

        When the database refuses the batch for a value it will not hold
        (a constraint of its own, a value too large for it), the batch is
        stored in halves, a transaction each, down to each refused entry
        alone: those are left out, and the others stored.

        Returns:
            How many entries were stored, how many were duplicates, and the
            index and the database's reason of every entry it refused.

        Raises:
            StoreError: the database failed: nothing of the batch was
                stored, or (while halving a refused batch) part of it was;
                storing the same entries again stores each once.
        """
        return self._store_part(entries, range(len(entries)))

    def _store_part(self, entries: Sequence[bytes], indexes: Sequence[int]) -> IngestResult:
        """:meth:`store_entries` of *entries* (at *indexes* of the batch), halved when refused."""
        try:
            stored = self._do("storing entries", lambda dialect: dialect.insert(entries))
        except RefusedData as exc:
            if len(entries) == 1:
                return IngestResult(0, 0, [(indexes[0], f"the database refused it: {exc.reason}")])
            middle = len(entries) // 2
            first = self._store_part(entries[:middle], indexes[:middle])
            second = self._store_part(entries[middle:], indexes[middle:])
            return IngestResult(
                first.stored + second.stored,
                first.duplicates + second.duplicates,
                first.invalid + second.invalid,
            )
        return IngestResult(stored, len(entries) - stored, [])

    def prune(
        self,
        older_than: object = None,
        *,
        limit: int | None = None,
        progress: Progress | None = None,
    ) -> int:
        """
        Delete the entries older than *older_than*; return how many were deleted.

        Args:
            older_than: a duration (``"30d"``, ``"12h"``, a timedelta: entries
                older than that), or a datetime (entries before it). None:
                ``[logging.store] retention_days`` of the configuration, as
                ``structflow store prune`` without ``--older-than`` does.
            limit: delete at most this many, the oldest first (None: every
                one); a caller that must not be held up long prunes a slice
                at a time, until fewer than *limit* are deleted.
            progress: called as ``progress(done, total, "pruning")`` after each
                chunk of deletions.

        Deletion goes in chunks of a few thousand entries, one transaction
        each, so writers are never kept waiting long. SQLite keeps the freed
        pages for new entries; ``VACUUM`` gives them back to the disk.

        Raises:
            ValueError: *older_than* is not a duration or a time (or is None
                while no ``retention_days`` is configured), or *limit* is not
                an integer >= 1.
            StoreError: the database failed (what was deleted stays deleted).
        """
        if older_than is None:
            older_than = configured_age()
            if older_than is None:
                raise ValueError(
                    "older_than=None and no [logging.store] retention_days is set; "
                    "give older_than, such as '30d'"
                )
        cutoff = parse_time(older_than, "older_than")
        most = parse_limit(limit)

        def count(dialect: Dialect) -> int:
            rows = dialect.query("SELECT COUNT(*) FROM structflow_entries WHERE ts < ?", (cutoff,))
            return int(rows[0][0])

        total = 0 if progress is None else self._do("counting entries to prune", count)
        done = 0
        while most is None or done < most:
            chunk = _PRUNE_CHUNK if most is None else min(_PRUNE_CHUNK, most - done)

            def delete_chunk(dialect: Dialect, chunk: int = chunk) -> int:
                with dialect.transaction():
                    return dialect.delete_before(cutoff, chunk)

            deleted = self._do("pruning entries", delete_chunk)
            done += deleted
            if progress is not None and (deleted or not done):
                progress(done, max(total, done), "pruning")
            if deleted < chunk:
                break
        return done

    # --- reading ---------------------------------------------------------------------

    def _entries(
        self, dialect: Dialect, q: Query, extra: Sequence[str] = (), params: Sequence[Any] = ()
    ) -> list[tuple[int, LogEntry]]:
        """Run *q* (plus *extra* conditions); return (seq, entry) pairs."""
        conditions, values = _conditions(dialect, q)
        conditions.extend(extra)
        values.extend(params)
        sql = _SELECT.format(fields=dialect.fields_column)
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        direction = " DESC" if q.descending else ""
        sql += f" ORDER BY ts{direction}, seq{direction}"
        if q.limit is not None:
            sql += " LIMIT ?"
            values.append(q.limit)
        return [(row[0], _entry(row)) for row in dialect.query(sql, values)]

    def logs(
        self,
        flow_run_id: str | None = None,
        task_run_id: str | None = None,
        flow_name: str | None = None,
        task_name: str | None = None,
        level: str | int | None = None,
        since: object = None,
        until: object = None,
        search: str | None = None,
        where: Mapping[str, Any] | None = None,
        limit: int | None = 1000,
        order: str = "asc",
        after: str | None = None,
    ) -> list[LogEntry]:
        """
        Return the entries that match every filter given, in time order.

        Args:
            flow_run_id: entries of this flow run (exact match).
            task_run_id: entries of this task run.
            flow_name: entries of this flow.
            task_name: entries of this task.
            level: the minimum level: a name (``"warning"``, any case) or a
                number (``30``).
            since: entries at or after this moment: a datetime (naive: local
                time), a timedelta (that long ago), a duration string
                (``"15m"``, ``"1h"``, ``"2d"``; s, m, h, d, w) or an ISO 8601
                time (``"2024-06-01T12:00:00Z"``; without an offset: local
                time).
            until: entries before this moment, in the same forms.
            search: words that must all be in the message (case-insensitive,
                whole words; a word is a run of letters and digits).
            where: field equality, ``{"rows": 3, "user.id": "u1"}``: each key
                a field path (dots for nested fields), each value a string,
                number, bool or None, compared with the stored JSON value of
                that type. ``logger``, ``level``, ``message``, the run-context
                keys and ``map_index`` compare with those columns.
            limit: most entries returned (None: all).
            order: ``"asc"`` (oldest first) or ``"desc"`` (newest first).
            after: the :attr:`LogEntry.cursor` of the last entry of the
                previous page: returns the entries that come after it in this
                order. Entries stored since do not shift the pages.

        Raises:
            ValueError: a filter is invalid; the message names it, the value
                and what is allowed.
            StoreError: the database failed.
        """
        q = build_query(**_filters(locals()), limit=limit, order=order)
        return [entry for _seq, entry in self._do("reading entries", lambda d: self._entries(d, q))]

    def follow(
        self,
        flow_run_id: str | None = None,
        task_run_id: str | None = None,
        flow_name: str | None = None,
        task_name: str | None = None,
        level: str | int | None = None,
        since: object = None,
        until: object = None,
        search: str | None = None,
        where: Mapping[str, Any] | None = None,
        limit: int | None = 10,
        after: str | None = None,
        poll_interval: float = 0.5,
    ) -> Iterator[LogEntry]:
        """
        Yield matching entries as they land: a live tail.

        First the latest *limit* stored entries that match (oldest first), or
        with *after*, every match after that cursor; then each new matching
        entry, in the order entries land (a record that arrives late, from a
        spool, shows up when it lands). The filters are those of :meth:`logs`.
        The iterator ends when the store is closed; otherwise stop it with
        ``break`` (or Ctrl-C).

        When the connection is lost while following (PostgreSQL restarted,
        a network failure), or a read waits past ``timeout`` for a lock
        another session holds (``ALTER TABLE``, ``VACUUM FULL``), the
        iterator keeps trying, every *poll_interval* and then less often, up
        to every 5 seconds, until the database answers again; it then goes
        on from the last entry it yielded, so nothing that landed meanwhile
        is missed or repeated. It says so on
        the ``structflow.store`` logger: a warning when the connection is
        lost, an info when it follows again.

        Args:
            limit: how many stored entries to show first (None: all).
            poll_interval: seconds between looks for new entries.

        Raises:
            ValueError: a filter is invalid (raised here, before iterating).
            StoreError: the database failed (other than by a lost connection
                or a lock once following).
        """
        if isinstance(poll_interval, bool) or not isinstance(poll_interval, int | float):
            raise ValueError(f"poll_interval={poll_interval!r} is invalid; expected seconds > 0")
        if not 0 < poll_interval <= 3600:
            raise ValueError(f"poll_interval={poll_interval!r} is invalid; expected seconds > 0")
        backlog = parse_limit(limit)
        q = build_query(**_filters(locals()), limit=_PAGE)
        return self._follow(q, backlog, float(poll_interval))

    def _follow(self, q: Query, backlog: int | None, poll: float) -> Iterator[LogEntry]:
        def newest(dialect: Dialect) -> int:
            return int(dialect.query("SELECT COALESCE(MAX(seq), 0) FROM structflow_entries")[0][0])

        last = self._do("following entries", newest)
        # What is stored already (up to `last`), in time order.
        if q.after is not None or backlog is None:
            page = q
            while True:
                got = self._select(page, "seq <= ?", last)
                for _seq, entry in got:
                    yield entry
                if len(got) < _PAGE:
                    break
                page = _with(page, after=decode_cursor(got[-1][1].cursor))
        else:
            recent = _with(q, limit=backlog, descending=True)
            for _seq, entry in reversed(self._select(recent, "seq <= ?", last)):
                yield entry
        # Then what lands, in the order it lands.
        tail = _with(q, after=None, limit=_PAGE)
        lost_at: float | None = None
        wait = poll
        while not self._closed:
            try:
                got = self._select(tail, "seq > ?", last, by_seq=True)
            except StoreError as exc:
                if self._closed:
                    return
                if self._dialect.is_open and not isinstance(exc, StillLocked):
                    raise  # the database answered, with an error: trying again would not help
                if lost_at is None:
                    lost_at = time.monotonic()
                    _logger.warning(
                        "%s while following: %s; trying again, at most every %g s",
                        "held up by a lock" if isinstance(exc, StillLocked) else "lost the store",
                        exc,
                        _RECONNECT_MAX_SECONDS,
                    )
                self._nap(wait, poll)
                wait = min(wait * 2, max(poll, _RECONNECT_MAX_SECONDS))
                continue
            if lost_at is not None:
                _logger.info(
                    "store %s: following again, after %.1f s",
                    self.url,
                    time.monotonic() - lost_at,
                )
                lost_at, wait = None, poll
            for seq, entry in got:
                last = seq
                yield entry
            if len(got) < _PAGE:
                time.sleep(poll)

    def _nap(self, seconds: float, step: float) -> None:
        """Sleep *seconds*, in steps of at most *step*, waking early when the store is closed."""
        deadline = time.monotonic() + seconds
        while not self._closed and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(step, left))

    def _select(
        self, q: Query, condition: str, value: int, *, by_seq: bool = False
    ) -> list[tuple[int, LogEntry]]:
        """Entries of *q* that also meet *condition* (one ``?``), as (seq, entry) pairs."""

        def select(dialect: Dialect) -> list[tuple[int, LogEntry]]:
            if not by_seq:
                return self._entries(dialect, q, [condition], [value])
            conditions, values = _conditions(dialect, _with(q, after=None))
            conditions.append(condition)
            values.append(value)
            sql = _SELECT.format(fields=dialect.fields_column)
            sql += " WHERE " + " AND ".join(conditions) + " ORDER BY seq LIMIT ?"
            values.append(q.limit)
            return [(row[0], _entry(row)) for row in dialect.query(sql, values)]

        return self._do("following entries", select)

    def run(self, flow_run_id: str) -> RunSummary | None:
        """
        Return the summary of one flow run, or None when the store has no entry of it.

        The summary is derived from the records: state, timing and task runs
        from the lifecycle records of ``structflow.FlowRunner`` and
        ``structflow.TaskRunner``, counts from every entry of the run.

        Raises:
            ValueError: *flow_run_id* is not a string.
            StoreError: the database failed.
        """
        run_id = parse_text(flow_run_id, "flow_run_id")
        if run_id is None:
            raise ValueError("flow_run_id=None is invalid; expected a string")
        return self._do("summarising a run", lambda d: summarise_run(d, run_id))

    def runs(
        self,
        flow_name: str | None = None,
        state: str | None = None,
        since: object = None,
        limit: int | None = 50,
        after: str | None = None,
    ) -> list[RunSummary]:
        """
        Return flow runs, newest first.

        Lists the runs that have lifecycle records (every run of a
        :class:`structflow.Flow`); :meth:`run` also finds runs that only have
        records logged with their context.

        Args:
            flow_name: only runs of this flow.
            state: only runs in this state (``"Failed"``, ``"Success"``,
                ``"Running"``; any case).
            since: only runs active at or after this moment (same forms as
                :meth:`logs`' ``since``).
            limit: most runs returned (None: all).
            after: the :attr:`RunSummary.cursor` of the last run of the
                previous page: returns the runs that come after it.

        Raises:
            ValueError: a filter is invalid.
            StoreError: the database failed.
        """
        name = parse_text(flow_name, "flow_name")
        wanted = parse_text(state, "state")
        moment = None if since is None else parse_time(since, "since")
        most = parse_limit(limit)
        position = None if after is None else decode_run_cursor(after)
        return self._do(
            "listing runs", lambda d: list_runs(d, name, wanted, moment, most, position)
        )


def _filters(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The filters and ``after`` among a call's *arguments* (its ``locals()``), for build_query."""
    return {name: arguments[name] for name in (*LOG_FILTERS, "after")}


def _with(q: Query, **changes: Any) -> Query:
    return replace(q, **changes)


def _conditions(dialect: Dialect, q: Query) -> tuple[list[str], list[Any]]:
    """The SQL conditions of *q* and their parameters (``?`` placeholders)."""
    conditions: list[str] = []
    values: list[Any] = []
    for name in ("flow_run_id", "task_run_id", "flow_name", "task_name"):
        value = getattr(q, name)
        if value is not None:
            conditions.append(f"{name} = ?")
            values.append(value)
    if q.min_levelno is not None:
        conditions.append("levelno >= ?")
        values.append(q.min_levelno)
    if q.since is not None:
        conditions.append("ts >= ?")
        values.append(q.since)
    if q.until is not None:
        conditions.append("ts < ?")
        values.append(q.until)
    if q.words:
        words_sql, params = dialect.words_condition(q.words)
        conditions.append(words_sql)
        values.extend(params)
    for term in q.where:
        column = term.column
        if column is None:
            sql, params = dialect.field_condition(term)
            conditions.append(sql)
            values.extend(params)
        elif term.value is None:
            conditions.append(f"{column} IS NULL")
        elif _same_type(column, term.value):
            conditions.append(f"{column} = ?")
            value = term.value
            values.append(value.lower() if column == "level" and isinstance(value, str) else value)
        else:
            conditions.append("1 = 0")  # a text column never equals a number, nor the reverse
    if q.after is not None:
        op = "<" if q.descending else ">"
        conditions.append(f"(ts, seq) {op} (?, ?)")
        values.extend(q.after)
    return conditions, values


def _same_type(column: str, value: object) -> bool:
    if column == "map_index":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, str)


def _entry(row: Sequence[Any]) -> LogEntry:
    seq, uid, ts, *columns, fields, exception = row
    values = (uid, from_micros(ts), *columns, _loads(fields), exception, encode_cursor(ts, seq))
    return LogEntry(*values)
