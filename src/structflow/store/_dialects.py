"""
Where SQLite and PostgreSQL differ, and nowhere else.

A :class:`Dialect` owns one connection and knows its database's way of
connecting, locking, inserting a batch, matching words and comparing a JSON
field. Everything else (the queries' shape, migrations, summaries) is
written once, in SQL both understand, with ``?`` placeholders that the
PostgreSQL dialect turns into its own.

* SQLite (stdlib ``sqlite3``): WAL journal (readers never wait for the
  writer, several processes share the file), ``synchronous=NORMAL``,
  ``BEGIN IMMEDIATE`` write transactions that wait up to ``timeout`` for the
  lock, a hundred entries per INSERT, FTS5 for words, ``json_extract`` for
  fields.
* PostgreSQL (psycopg 3): autocommit reads; a batch is one COPY, a
  transaction of its own (no BEGIN, lock, savepoint or COMMIT statements:
  two round trips a batch where there were seven), whose insert trigger
  takes an advisory lock so ``seq`` order is commit order (``follow`` never
  skips an entry committed late); a
  ``tsvector`` for words and ``@>`` on ``jsonb`` for fields, both
  GIN-indexed.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import inspect
import itertools
import operator
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import orjson

from structflow._paths import make_directory
from structflow.store._copy_text import copy_line
from structflow.store._filters import WhereTerm, words_text
from structflow.store._ingest import COLUMNS, Columns, json_entry

if TYPE_CHECKING:
    import psycopg

__all__ = ["DEFAULT_URL", "Dialect", "StoreError", "dialect_for", "mask_url"]

#: The store used when neither an argument nor ``[logging.store] url`` names one.
DEFAULT_URL = "sqlite:///~/.structflow/logs.db"
SCHEMES = ("sqlite", "postgresql", "postgres")
_URL_HELP = "expected 'sqlite:///path/to/logs.db' or 'postgresql://user:password@host:5432/db'"
_INSTALL_HINT = "install the extra with: pip install 'structflow[postgres]'"
#: Advisory lock keys (PostgreSQL): schema changes, and inserts.
_MIGRATION_LOCK = 0x5F_57_F1_03_00_01
#: The advisory lock that serialises writers of a PostgreSQL store (taken by
#: the insert trigger the schema creates).
INGEST_LOCK = 0x5F_57_F1_03_00_02
_BACKFILL_CHUNK = 5000
_loads = orjson.loads
_COLUMN_LIST = ", ".join(COLUMNS)
_INSERT_INTO = f"INSERT INTO structflow_entries ({_COLUMN_LIST}) "
#: The columns an entry may leave empty (None): ``flow_name`` to ``exception``.
_NULLABLE = slice(6, 15)
#: Entries one SQLite INSERT stores: a statement run once for many rows costs
#: SQLite and Python's sqlite3 about 40% less per row than one run per row.
_ROWS_PER_INSERT = 100
_chain = itertools.chain.from_iterable
# A batch goes straight into the table with COPY, which writes the rows a
# page at a time (an INSERT writes and logs them one by one): the server's
# work per entry is about a third less. The entries are COPY's own text
# lines, sent as they are. The words column takes the words as tsvector
# text: they are letters and digits only, so each is one lexeme, as
# array_to_tsvector would make it.
_POSTGRES_COPY = f"COPY structflow_entries ({_COLUMN_LIST}) FROM STDIN"
#: Bytes of a batch libpq holds before psycopg waits for them to be sent:
#: twice a default batch (``batch_max_bytes`` is 4 MiB), so that a default
#: batch goes in one go and a larger one keeps libpq's copy of it bounded.
_COPY_FLUSH_BYTES = 8 * 1024 * 1024
# COPY cannot leave out an entry stored already (a batch retried after its
# commit was lost, a spool replayed): such a batch goes through a temporary
# table instead, and from there into the entries in its order, leaving out
# the ids stored already (and those repeated in the batch).
_POSTGRES_INCOMING = (
    "CREATE TEMPORARY TABLE structflow_incoming ON COMMIT DROP AS "
    f"SELECT {_COLUMN_LIST} FROM structflow_entries WITH NO DATA"
)
_POSTGRES_COPY_INCOMING = f"COPY structflow_incoming ({_COLUMN_LIST}) FROM STDIN"
_POSTGRES_INSERT_INCOMING = (
    f"{_INSERT_INTO}SELECT {_COLUMN_LIST} FROM structflow_incoming "
    "ORDER BY ctid ON CONFLICT (uid) DO NOTHING"
)


Progress = Callable[[int, int, str], None]


class StoreError(Exception):
    """
    The store cannot be opened or used.

    For example: PostgreSQL cannot be reached, the file is not a SQLite
    database, the store's schema is newer than this structflow, or the
    database stayed locked longer than the timeout. The message names the
    store (without its password) and the reason.

    .. versionadded:: 0.1.0
    """


class RefusedData(StoreError):
    """
    The database refused what a call gave it (a value it will not hold), not the call itself.

    Making the same call again fails the same way; a batch of entries that
    fails so holds an entry to set aside. ``reason`` is the database's word.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class StillLocked(StoreError):
    """Another session held a lock the call needed for longer than the store's ``timeout``."""


def mask_url(url: str) -> str:
    """*url* with its password replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class Dialect(abc.ABC):
    """One database connection and its dialect's SQL."""

    name: ClassVar[str]

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self._conn: Any = None
        #: Whether the database may be made when there is none (``open``'s argument).
        self.create = True

    @property
    def shown(self) -> str:
        """The url as messages show it (no password)."""
        return mask_url(self.url)

    @abc.abstractmethod
    def open(self, create: bool = True) -> None:
        """
        Connect; raise :class:`StoreError` when the database cannot be reached.

        With *create* false, a database that holds no store yet (a SQLite file
        that does not exist) is refused with a :class:`StoreError`, and left
        as it was.
        """

    def removed(self) -> bool:
        """
        Whether the database open was removed (a SQLite store's files deleted by hand).

        A :class:`~structflow.store.Store` then opens the url again, which
        makes a new store there.

        Raises:
            StoreError: the database was moved or replaced in a way that
                cannot be followed safely; nothing is written until it is back.
        """
        return False

    def _refuse_without_store(self, why: str) -> None:
        """Raise :class:`StoreError` (and close) unless the connected database holds a store."""
        if self.tables(["structflow_schema", "structflow_entries"]):
            return
        self.close()
        raise self._no_store(why)

    def _no_store(self, why: str) -> StoreError:
        return StoreError(
            f"store {self.shown}: nothing has been stored there yet ({why}); "
            "check the url, or log a run to it first"
        )

    def close(self) -> None:
        """Close the connection (idempotent)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def forget(self) -> None:
        """Drop a connection inherited across ``fork()`` without closing it."""
        # A child must neither use nor close its parent's connection (closing
        # a PostgreSQL one would end the parent's session on the shared
        # socket): keep it referenced so that it is never finalised here.
        if self._conn is not None:
            _inherited.append(self._conn)
        self._conn = None

    @property
    @abc.abstractmethod
    def is_open(self) -> bool:
        """Whether the connection is usable."""

    @abc.abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run *sql* (``?`` placeholders) and return its rows."""

    @abc.abstractmethod
    def transaction(self, lock: str = "") -> contextlib.AbstractContextManager[None]:
        """A write transaction; *lock* ``"migration"`` serialises it with other migrations."""

    @abc.abstractmethod
    def tables(self, names: Sequence[str]) -> set[str]:
        """Which of the tables *names* exist (read at one moment)."""

    @staticmethod
    @abc.abstractmethod
    def encode_entry(columns: Columns) -> bytes:
        """One entry of *columns*, as the dialect keeps it (in a queue, a spool) and inserts it."""

    @abc.abstractmethod
    def insert(self, entries: Sequence[bytes]) -> int:
        """
        Insert *entries* (as :attr:`encode_entry` makes them) whose uid is new; return how many.

        One transaction of its own, serialised with every other writer's (so
        ``seq`` order is commit order): all of the batch is stored, or none.
        """

    @abc.abstractmethod
    def delete_before(self, cutoff: int, limit: int) -> int:
        """Delete up to *limit* of the oldest entries before *cutoff* (in a transaction)."""

    def backfill_words(self, progress: Progress | None) -> None:
        """Fill the full-text index for entries stored before it existed (a migration step)."""

        def set_words(chunk: list[tuple[Any, ...]]) -> None:
            self._set_words([(words_text(message), seq) for seq, message in chunk])

        self._in_chunks("seq, message", set_words, progress)
        self._index_words()

    def index_words(self, progress: Progress | None) -> None:  # noqa: B027 - only SQLite's is apart
        """Index the stored words again, into a full-text index made anew (a migration step)."""

    def _in_chunks(
        self, columns: str, work: Callable[[list[tuple[Any, ...]]], None], progress: Progress | None
    ) -> None:
        """Hand every entry's *columns* (``seq`` first) to *work*, in chunks, in seq order."""
        total = self.query("SELECT COUNT(*) FROM structflow_entries")[0][0]
        done = last = 0
        while True:
            chunk = self.query(
                f"SELECT {columns} FROM structflow_entries WHERE seq > ? ORDER BY seq LIMIT ?",
                (last, _BACKFILL_CHUNK),
            )
            if not chunk:
                break
            work(chunk)
            last = chunk[-1][0]
            done += len(chunk)
            if progress is not None:
                progress(done, total, "indexing words")

    @abc.abstractmethod
    def _set_words(self, pairs: list[tuple[str, int]]) -> None:
        """Store each (words, seq) pair's words on that entry."""

    def _index_words(self) -> None:  # noqa: B027 - only SQLite indexes apart from the column
        """Index the words set by :meth:`_set_words`, when the dialect does so separately."""

    @abc.abstractmethod
    def words_condition(self, words: Sequence[str]) -> tuple[str, list[Any]]:
        """A condition true for entries whose message holds every word."""

    @abc.abstractmethod
    def field_condition(self, term: WhereTerm) -> tuple[str, list[Any]]:
        """A condition true for entries whose JSON field at ``term.path`` equals ``term.value``."""

    #: How the ``fields`` column is selected (as JSON text).
    fields_column: ClassVar[str] = "fields"

    def translate(self, error: Exception, doing: str) -> StoreError:
        """A :class:`StoreError` for a driver error met while *doing* something."""
        text = _first_line(error)
        message = f"store {self.shown}: {doing} failed: {text}"
        if self.waited_for_lock(error):
            return StillLocked(f"{message} (still locked after waiting {self.timeout:g} s)")
        return RefusedData(message, text) if self.refused_data(error) else StoreError(message)

    @abc.abstractmethod
    def waited_for_lock(self, error: Exception) -> bool:
        """Whether *error* says a lock was still held by another writer after :attr:`timeout`."""

    @abc.abstractmethod
    def refused_data(self, error: Exception) -> bool:
        """Whether *error* refuses a value given (see :class:`RefusedData`)."""


# --- SQLite -------------------------------------------------------------------------------


class SQLiteDialect(Dialect):
    """SQLite through the standard library, one file (or ``:memory:``)."""

    encode_entry = staticmethod(json_entry)

    name = "sqlite"

    def __init__(self, url: str, path: str, timeout: float) -> None:
        super().__init__(url, timeout)
        self.path = path
        self._conn: sqlite3.Connection | None = None
        #: The open file's device and inode, and its path.
        self._file: tuple[int, int, str] | None = None

    def open(self, create: bool = True) -> None:
        self.create = create
        path = self.path
        self._file = None
        if path != ":memory:":
            path = os.path.expanduser(path)
            if not os.path.exists(path):
                if not create:
                    raise self._no_store(f"{path} does not exist")
                if os.path.exists(path + "-wal"):
                    # A journal without its database: a new file would take it
                    # for its own.
                    raise StoreError(
                        f"store {self.shown}: {path} is missing but its journal "
                        f"{path}-wal is there (the file was moved or removed while "
                        "open); put the file back, or remove the journal "
                        f"({path}-wal and {path}-shm) to start a new store"
                    )
            problem = make_directory(Path(path).parent)
            if problem:
                raise StoreError(
                    f"store {self.shown}: cannot create the directory for {path} ({problem})"
                )
        try:
            conn = sqlite3.connect(
                path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"store {self.shown}: cannot open {path} ({exc})") from None
        try:
            if not create:
                self._conn = conn
                self._refuse_without_store(f"{path} holds no structflow tables")
            if path != ":memory:":
                self._use_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            self._conn = None
            conn.close()
            raise StoreError(
                f"store {self.shown}: {path} is not a usable SQLite database ({exc})"
            ) from None
        self._conn = conn
        if path != ":memory:":
            with contextlib.suppress(OSError):
                st = os.stat(path)
                self._file = (st.st_dev, st.st_ino, path)

    def removed(self) -> bool:
        # What is written through a connection whose file was deleted goes
        # to a file nobody can open again. When every file of the store is
        # gone, a new store is made at the path. When the file was moved or
        # replaced, SQLite keeps part of the database in the journal under
        # the old name, where a new store would take it for its own: then
        # nothing is written until the file is back.
        opened = self._file
        if opened is None or self._conn is None:
            return False
        path = opened[2]
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if not os.path.exists(path + "-wal"):
                return True
        except OSError:
            return False
        else:
            if (st.st_dev, st.st_ino) == opened[:2]:
                return False
        raise StoreError(
            f"store {self.shown}: {path} is no longer the file this store opened (it was "
            "moved, replaced, or removed without its journal while open); nothing is "
            f"written until it is back. To start a new store there, remove {path}-wal and "
            f"{path}-shm too, or restart the process"
        )

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switch a new database to WAL; another process doing the same may hold it a moment."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL").fetchall()
                return
            except sqlite3.OperationalError as exc:
                # Changing the journal mode does not wait on the busy handler.
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.open(self.create)
        assert self._conn is not None
        return self._conn

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._connection().execute(sql, params).fetchall()

    @contextlib.contextmanager
    def transaction(self, lock: str = "") -> Iterator[None]:
        conn = self._connection()
        # IMMEDIATE takes the write lock now (waiting up to the timeout),
        # rather than failing at the first write when another process holds it.
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def tables(self, names: Sequence[str]) -> set[str]:
        marks = ", ".join("?" for _ in names)
        rows = self.query(
            f"SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ({marks})", names
        )
        return {name for (name,) in rows}

    def insert(self, entries: Sequence[bytes]) -> int:
        with self.transaction():
            return self._insert(entries)

    def _insert(self, entries: Sequence[bytes]) -> int:
        conn = self._connection()
        # Within the write transaction no one else inserts: the new entries
        # are exactly those past the largest seq now.
        before = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM structflow_entries").fetchone()[0]
        # SQLite's JSON functions parse a value again for each column taken
        # from it: unpacking here with orjson costs less. Each entry is
        # unpacked as it is bound and dropped right after (a whole batch of
        # lists alive at once would wake the garbage collector many times).
        stored = 0
        limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        for present, rows in itertools.groupby(map(_loads, entries), _present):
            plan = _sqlite_insert(present, limit)
            values = map(plan.values, rows)
            while len(chunk := list(itertools.islice(values, plan.rows))) == plan.rows:
                stored += conn.execute(plan.many, list(_chain(chunk))).rowcount
            if chunk:
                stored += conn.executemany(plan.one, chunk).rowcount
        if stored:
            conn.execute(
                "INSERT INTO structflow_entries_fts (rowid, words) "
                "SELECT seq, words FROM structflow_entries WHERE seq > ?",
                (before,),
            )
        return stored

    def delete_before(self, cutoff: int, limit: int) -> int:
        conn = self._connection()
        seqs = [
            seq
            for (seq,) in conn.execute(
                "SELECT seq FROM structflow_entries WHERE ts < ? ORDER BY ts LIMIT ?",
                (cutoff, limit),
            )
        ]
        if not seqs:
            return 0
        chosen = orjson.dumps(seqs).decode("ascii")
        conn.execute(
            "INSERT INTO structflow_entries_fts (structflow_entries_fts, rowid, words) "
            "SELECT 'delete', seq, words FROM structflow_entries "
            "WHERE seq IN (SELECT value FROM json_each(?))",
            (chosen,),
        )
        return conn.execute(
            "DELETE FROM structflow_entries WHERE seq IN (SELECT value FROM json_each(?))",
            (chosen,),
        ).rowcount

    def _set_words(self, pairs: list[tuple[str, int]]) -> None:
        self._connection().executemany(
            "UPDATE structflow_entries SET words = ? WHERE seq = ?", pairs
        )

    def _index_words(self) -> None:
        self.query("INSERT INTO structflow_entries_fts (structflow_entries_fts) VALUES ('rebuild')")

    def index_words(self, progress: Progress | None) -> None:
        conn = self._connection()

        def index(chunk: list[tuple[Any, ...]]) -> None:
            conn.executemany(
                "INSERT INTO structflow_entries_fts (rowid, words) VALUES (?, ?)", chunk
            )

        self._in_chunks("seq, words", index, progress)

    def words_condition(self, words: Sequence[str]) -> tuple[str, list[Any]]:
        # Each word quoted: FTS5 reads it as a term, never as query syntax.
        match = " ".join(f'"{w}"' for w in words)
        return (
            "seq IN (SELECT rowid FROM structflow_entries_fts "
            "WHERE structflow_entries_fts MATCH ?)",
            [match],
        )

    def field_condition(self, term: WhereTerm) -> tuple[str, list[Any]]:
        path = "$" + "".join(f'."{name}"' for name in term.path)
        value = term.value
        if value is None:
            return "json_type(fields, ?) = 'null'", [path]
        if isinstance(value, bool):
            return "json_type(fields, ?) = ?", [path, "true" if value else "false"]
        if isinstance(value, str):
            return "(json_type(fields, ?) = 'text' AND json_extract(fields, ?) = ?)", [
                path,
                path,
                value,
            ]
        return "(json_type(fields, ?) IN ('integer', 'real') AND json_extract(fields, ?) = ?)", [
            path,
            path,
            value,
        ]

    def waited_for_lock(self, error: Exception) -> bool:
        text = _first_line(error)
        return "locked" in text or "busy" in text

    def refused_data(self, error: Exception) -> bool:
        # A value too big or out of range, or a constraint an entry breaks
        # (a repeated id is left out by the insert itself).
        return isinstance(error, sqlite3.DataError | sqlite3.IntegrityError)


# --- PostgreSQL ---------------------------------------------------------------------------


#: PostgreSQL's SQLSTATE for a lock still held after ``lock_timeout``.
_LOCK_NOT_AVAILABLE = "55P03"
#: SQLSTATE classes of a value refused: data exceptions, integrity constraint
#: violations (a repeated id is left out by the insert itself) and program
#: limits exceeded (a value too large for an index).
_REFUSED_DATA_CLASSES = ("22", "23", "54")


class PostgresDialect(Dialect):
    """PostgreSQL through psycopg 3 (the ``structflow[postgres]`` extra)."""

    name = "postgresql"
    fields_column = "fields::text"
    encode_entry = staticmethod(copy_line)

    def __init__(self, url: str, timeout: float) -> None:
        super().__init__(url, timeout)
        self._conn: psycopg.Connection[Any] | None = None

    def open(self, create: bool = True) -> None:
        self.create = create
        try:
            import psycopg
        except ImportError as exc:
            raise ImportError(
                f"store {self.shown} needs psycopg 3 ({exc}); {_INSTALL_HINT}"
            ) from exc
        url = self.url
        if url.startswith("postgres:"):
            url = "postgresql" + url[len("postgres") :]
        conn = None
        try:
            conn = psycopg.connect(
                url, autocommit=True, connect_timeout=max(1, round(self.timeout))
            )
            # A lock held by another session (a writer whose transaction
            # stays open, a migration, an ALTER TABLE) is waited for as long
            # as a SQLite lock is: `timeout`, then the call fails and a
            # StoreHandler tries again later, rather than waiting for ever.
            conn.execute(
                "SELECT set_config('lock_timeout', %s, false)",
                (f"{max(1, round(self.timeout * 1000))}ms",),
            )
        except psycopg.Error as exc:
            if conn is not None:
                conn.close()
            raise StoreError(
                f"cannot connect to the PostgreSQL store {self.shown}: {_first_line(exc)}"
            ) from None
        self._conn = conn
        if not create:
            self._refuse_without_store("no structflow tables in the connection's schema")

    def _connection(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            self._conn = None
            self.open(self.create)
            conn = self._conn
        assert conn is not None
        return conn

    @property
    def is_open(self) -> bool:
        conn = self._conn
        return conn is not None and not conn.closed and not conn.broken

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._connection().cursor() as cursor:
            cursor.execute(sql.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description is not None else []

    @contextlib.contextmanager
    def transaction(self, lock: str = "") -> Iterator[None]:
        conn = self._connection()
        if lock == "migration":
            # Taken before the transaction begins, so that what it then reads
            # of the catalog includes what the previous holder created.
            conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
            try:
                with conn.transaction():
                    yield
            finally:
                with contextlib.suppress(Exception):
                    conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
            return
        with conn.transaction():
            yield

    def waited_for_lock(self, error: Exception) -> bool:
        return getattr(error, "sqlstate", None) == _LOCK_NOT_AVAILABLE

    def refused_data(self, error: Exception) -> bool:
        sqlstate = getattr(error, "sqlstate", None)
        return isinstance(sqlstate, str) and sqlstate[:2] in _REFUSED_DATA_CLASSES

    def tables(self, names: Sequence[str]) -> set[str]:
        found = self.query(
            "SELECT " + ", ".join("to_regclass(?) IS NOT NULL" for _ in names), names
        )[0]
        return {name for name, exists in zip(names, found, strict=True) if exists}

    def insert(self, entries: Sequence[bytes]) -> int:
        from psycopg.errors import UniqueViolation

        conn = self._connection()
        data = memoryview(b"".join(entries))
        # The connection is in autocommit mode: the COPY is a transaction of
        # its own, and the schema's insert trigger serialises it.
        try:
            # A batch holding an id stored already is undone, and goes in
            # again without that entry.
            with conn.cursor() as cursor:
                with cursor.copy(_POSTGRES_COPY, writer=_batch_writer(cursor)) as copy:
                    copy.write(data)
                return cursor.rowcount
        except UniqueViolation:
            pass
        with conn.transaction(), conn.cursor() as cursor:
            cursor.execute(_POSTGRES_INCOMING)
            with cursor.copy(_POSTGRES_COPY_INCOMING) as copy:
                copy.write(data)
            cursor.execute(_POSTGRES_INSERT_INCOMING)
            return cursor.rowcount

    def delete_before(self, cutoff: int, limit: int) -> int:
        with self._connection().cursor() as cursor:
            cursor.execute(
                "DELETE FROM structflow_entries WHERE seq IN (SELECT seq FROM structflow_entries "
                "WHERE ts < %s ORDER BY ts LIMIT %s)",
                (cutoff, limit),
            )
            return cursor.rowcount

    def _set_words(self, pairs: list[tuple[str, int]]) -> None:
        with self._connection().cursor() as cursor:
            cursor.executemany(
                "UPDATE structflow_entries "
                "SET words = array_to_tsvector(string_to_array(%s, ' ')) WHERE seq = %s",
                pairs,
            )

    def words_condition(self, words: Sequence[str]) -> tuple[str, list[Any]]:
        # Words are letters and digits only, so quoting each makes a tsquery
        # of exactly these lexemes (no parsing, no normalisation).
        # OFFSET 0 keeps the planner from folding the subquery into a walk of
        # the time index: the words are looked up in their GIN index first,
        # as SQLite looks them up in FTS5 first.
        return (
            "seq IN (SELECT seq FROM structflow_entries WHERE words @@ ?::tsquery OFFSET 0)",
            [" & ".join(f"'{w}'" for w in words)],
        )

    def field_condition(self, term: WhereTerm) -> tuple[str, list[Any]]:
        document: Any = term.value
        for name in reversed(term.path):
            document = {name: document}
        return "fields @> ?::jsonb", [orjson.dumps(document).decode("utf-8")]


def _batch_writer(cursor: psycopg.Cursor[Any]) -> psycopg.copy.LibpqWriter | None:
    """
    psycopg's writer of a batch's ``COPY``, told to send the batch in one go (psycopg 3.3.9+).

    psycopg otherwise waits for the socket every megabyte it hands to libpq
    (every 128 KiB before 3.3.9), and each wait makes the sending thread
    wait for the interpreter again while the threads that log and render
    hold it. None (the default writer) where psycopg cannot be told.
    """
    from psycopg.copy import LibpqWriter

    if not _writer_takes_flush_threshold():
        return None
    return LibpqWriter(cursor, flush_threshold=_COPY_FLUSH_BYTES)


@functools.cache
def _writer_takes_flush_threshold() -> bool:
    """Whether this psycopg's ``LibpqWriter`` takes ``flush_threshold`` (asked once)."""
    from psycopg.copy import LibpqWriter

    return "flush_threshold" in inspect.signature(LibpqWriter).parameters


def _present(row: list[Any]) -> tuple[bool, ...]:
    """Which of the nullable columns (:data:`_NULLABLE`) of an unpacked entry hold a value."""
    # Written out, as it runs for every entry: four times faster than a loop.
    return (
        row[6] is not None,
        row[7] is not None,
        row[8] is not None,
        row[9] is not None,
        row[10] is not None,
        row[11] is not None,
        row[12] is not None,
        row[13] is not None,
        row[14] is not None,
    )


class _SQLiteInsert(NamedTuple):
    """How entries with the same empty columns are inserted."""

    #: The INSERT of one entry, and of ``rows`` entries at once.
    one: str
    many: str
    rows: int
    #: Takes an unpacked entry's values for the statements' columns.
    values: Callable[[list[Any]], tuple[Any, ...]]


@functools.cache  # one per combination of empty columns and limit: a few in practice
def _sqlite_insert(present: tuple[bool, ...], max_values: int) -> _SQLiteInsert:
    """
    The INSERTs of entries whose nullable columns hold a value where *present* says.

    The empty columns are left out, and so stored as NULL: Python's sqlite3
    binds None through its adaptation protocol (a registry lookup and two
    failed attribute lookups per value), which costs more than binding all
    the other columns of the entry. A statement takes at most *max_values*
    values (the connection's limit).
    """
    kept = [True] * len(COLUMNS)
    kept[_NULLABLE] = present
    indexes = [i for i, keep in enumerate(kept) if keep]
    names = ", ".join(COLUMNS[i] for i in indexes)
    row = f"({', '.join('?' for _ in indexes)})"
    rows = max(1, min(_ROWS_PER_INSERT, max_values // len(indexes)))
    insert = f"INSERT OR IGNORE INTO structflow_entries ({names}) VALUES "
    return _SQLiteInsert(
        insert + row, insert + ", ".join([row] * rows), rows, operator.itemgetter(*indexes)
    )


# Connections inherited across fork, kept referenced so the child never
# finalises (closes) them.
_inherited: list[Any] = []


def dialect_for(url: object, timeout: float = 30.0) -> Dialect:
    """
    Return the dialect for a store *url* (not connected yet).

    Raises:
        ValueError: *url* is not a string, has an unknown scheme or no path.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"store url={url!r} is invalid; {_URL_HELP}")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SCHEMES:
        raise ValueError(
            f"store url={mask_url(url)!r} has an unknown scheme {scheme!r}; {_URL_HELP}"
        )
    if scheme == "sqlite":
        host, slash, path = rest.partition("/")
        if host or not slash or not path:
            raise ValueError(
                f"store url={url!r} is invalid; a SQLite url is 'sqlite:///' followed by the "
                "file's path (relative, '~/...', or '/absolute' as 'sqlite:////absolute')"
            )
        return SQLiteDialect(url, path, timeout)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ValueError(f"store url={mask_url(url)!r} has an invalid port; {_URL_HELP}") from None
    return PostgresDialect(url, timeout)
