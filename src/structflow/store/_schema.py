"""
The store's schema and its migrations, for both dialects side by side.

``structflow_schema`` records every migration applied (one row each); the
store's version is the highest. Opening a store applies the migrations it
lacks, in order, each in its own transaction while holding the dialect's
migration lock, so several processes opening a new store at once create it
once. A store whose version is newer than :data:`VERSION` is refused: this
structflow would not know how to keep it consistent.

Tables (names prefixed ``structflow_`` so a shared database stays tidy):

* ``structflow_entries``: one row per record. ``seq`` grows with every
  insert and orders entries as they landed (``follow`` tails by it); ``uid``
  is unique (idempotent ingest); ``ts`` is microseconds since the epoch, UTC.
* the full-text index, over the words of each message as
  :func:`structflow.store._filters.words_of` finds them (so both backends
  split text the same way): a ``words`` column indexed by the FTS5 table
  ``structflow_entries_fts`` (SQLite), or a ``tsvector`` column with a GIN
  index (PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from structflow.store._dialects import INGEST_LOCK, Dialect, Progress, StoreError

__all__ = ["MIGRATIONS", "VERSION", "Migration", "current_version", "migrate"]

#: The entries table, column by column: name, SQLite type, PostgreSQL type
#: (when it differs).
_ENTRY_COLUMNS = (
    ("seq", "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
    ("uid", "TEXT NOT NULL UNIQUE", ""),
    ("ts", "INTEGER NOT NULL", "BIGINT NOT NULL"),
    ("level", "TEXT NOT NULL", ""),
    ("levelno", "INTEGER NOT NULL", ""),
    ("logger", "TEXT NOT NULL", ""),
    ("message", "TEXT NOT NULL", ""),
    ("flow_name", "TEXT", ""),
    ("flow_run_id", "TEXT", ""),
    ("task_name", "TEXT", ""),
    ("task_run_id", "TEXT", ""),
    ("map_index", "INTEGER", "BIGINT"),
    ("lifecycle", "TEXT", ""),
    ("state", "TEXT", ""),
    ("duration_s", "REAL", "DOUBLE PRECISION"),
    ("fields", "TEXT NOT NULL", "JSONB NOT NULL"),
    ("exception", "TEXT", ""),
)


def _create_entries(postgresql: bool) -> str:
    """The CREATE TABLE of the entries table, for PostgreSQL or for SQLite."""
    columns = ",\n    ".join(
        f"{name} {postgres_type if postgresql and postgres_type else sqlite_type}"
        for name, sqlite_type, postgres_type in _ENTRY_COLUMNS
    )
    return f"CREATE TABLE structflow_entries (\n    {columns}\n)"


_SQLITE_V1 = (
    _create_entries(postgresql=False),
    # The rowid (seq) is the last column of every SQLite index, so (ts) orders
    # by (ts, seq) and the cursor's position is one index range.
    "CREATE INDEX structflow_entries_ts ON structflow_entries (ts)",
    """CREATE INDEX structflow_entries_flow_run ON structflow_entries (flow_run_id, ts, level)
       WHERE flow_run_id IS NOT NULL""",
    """CREATE INDEX structflow_entries_task_run ON structflow_entries (task_run_id, ts)
       WHERE task_run_id IS NOT NULL""",
    """CREATE INDEX structflow_entries_flow_name ON structflow_entries (flow_name, ts)
       WHERE flow_name IS NOT NULL""",
    # Lifecycle records are few: these stay small and make runs() cheap.
    """CREATE INDEX structflow_entries_lifecycle ON structflow_entries (lifecycle, ts)
       WHERE lifecycle IS NOT NULL""",
    """CREATE INDEX structflow_entries_run_lifecycle ON structflow_entries (flow_run_id)
       WHERE lifecycle IS NOT NULL""",
)

_SQLITE_V2 = (
    "ALTER TABLE structflow_entries ADD COLUMN words TEXT NOT NULL DEFAULT ''",
    # An external-content index over the words column: the words are stored
    # once, and deleting an entry can hand FTS5 the exact words it indexed.
    # detail=none: only which entries hold a word, which is all search asks.
    # The dialect fills and empties it a batch at a time (a trigger per row
    # costs three times the insert itself).
    """CREATE VIRTUAL TABLE structflow_entries_fts USING fts5(
        words, content='structflow_entries', content_rowid='seq', detail=none,
        tokenize='unicode61 remove_diacritics 0')""",
)

# The same index without the number of words of each entry (``columnsize``),
# which only ranking by relevance reads and search never does: one table
# write less per stored entry.
_SQLITE_V3 = (
    "DROP TABLE structflow_entries_fts",
    """CREATE VIRTUAL TABLE structflow_entries_fts USING fts5(
        words, content='structflow_entries', content_rowid='seq', detail=none, columnsize=0,
        tokenize='unicode61 remove_diacritics 0')""",
)

_POSTGRES_V1 = (
    _create_entries(postgresql=True),
    "CREATE INDEX structflow_entries_ts ON structflow_entries (ts, seq)",
    """CREATE INDEX structflow_entries_flow_run ON structflow_entries (flow_run_id, ts, seq)
       INCLUDE (level) WHERE flow_run_id IS NOT NULL""",
    """CREATE INDEX structflow_entries_task_run ON structflow_entries (task_run_id, ts, seq)
       WHERE task_run_id IS NOT NULL""",
    """CREATE INDEX structflow_entries_flow_name ON structflow_entries (flow_name, ts, seq)
       WHERE flow_name IS NOT NULL""",
    """CREATE INDEX structflow_entries_lifecycle ON structflow_entries (lifecycle, ts)
       WHERE lifecycle IS NOT NULL""",
    """CREATE INDEX structflow_entries_run_lifecycle ON structflow_entries (flow_run_id)
       WHERE lifecycle IS NOT NULL""",
    """CREATE INDEX structflow_entries_fields ON structflow_entries
       USING GIN (fields jsonb_path_ops)""",
)

_POSTGRES_V2 = (
    "ALTER TABLE structflow_entries ADD COLUMN words tsvector",
    "CREATE INDEX structflow_entries_words ON structflow_entries USING GIN (words)",
)

# Each batch is one COPY in a transaction of its own; before it inserts a
# row (before any ``seq`` is drawn), this trigger takes the ingest lock, held
# to the commit, so writers commit in ``seq`` order. Any other INSERT into the
# table is serialised the same way. The run indexes lose their ``seq``: the
# few entries of one run with the same ``ts`` are put in ``seq`` order after
# the index scan (an incremental sort), and each insert into them compares a
# column less (about 5% of the server's work per entry).
_POSTGRES_V4 = (
    f"""CREATE FUNCTION structflow_entries_serialise() RETURNS trigger
       LANGUAGE plpgsql AS $$
       BEGIN
           PERFORM pg_advisory_xact_lock({INGEST_LOCK});
           RETURN NULL;
       END $$""",
    """CREATE TRIGGER structflow_entries_serialise BEFORE INSERT ON structflow_entries
       FOR EACH STATEMENT EXECUTE FUNCTION structflow_entries_serialise()""",
    "DROP INDEX structflow_entries_flow_run",
    """CREATE INDEX structflow_entries_flow_run ON structflow_entries (flow_run_id, ts)
       INCLUDE (level) WHERE flow_run_id IS NOT NULL""",
    "DROP INDEX structflow_entries_task_run",
    """CREATE INDEX structflow_entries_task_run ON structflow_entries (task_run_id, ts)
       WHERE task_run_id IS NOT NULL""",
    "DROP INDEX structflow_entries_flow_name",
    """CREATE INDEX structflow_entries_flow_name ON structflow_entries (flow_name, ts)
       WHERE flow_name IS NOT NULL""",
)


@dataclass(frozen=True)
class Migration:
    """
    One step of the schema: its statements per dialect.

    ``backfill`` names a dialect method that brings existing rows up to the
    new schema after the statements ran (with progress), or is empty.
    """

    version: int
    description: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]
    backfill: str = ""

    def statements(self, dialect: str) -> tuple[str, ...]:
        """The statements for *dialect* (``sqlite`` or ``postgresql``)."""
        return self.sqlite if dialect == "sqlite" else self.postgresql


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "entries and their indexes", _SQLITE_V1, _POSTGRES_V1),
    Migration(2, "full-text index of messages", _SQLITE_V2, _POSTGRES_V2, "backfill_words"),
    Migration(3, "full-text index without word counts", _SQLITE_V3, (), "index_words"),
    Migration(
        4, "writers take turns through an insert trigger; run indexes by time", (), _POSTGRES_V4
    ),
)
#: The schema version this structflow writes and reads.
VERSION = MIGRATIONS[-1].version

SCHEMA_TABLE = "structflow_schema"
CREATE_SCHEMA_TABLE = {
    "sqlite": f"""CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (
        version INTEGER NOT NULL PRIMARY KEY, description TEXT NOT NULL,
        applied_at TEXT NOT NULL)""",
    "postgresql": f"""CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (
        version INTEGER NOT NULL PRIMARY KEY, description TEXT NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL)""",
}


def migrate(dialect: Dialect, progress: Progress | None = None, target: int = VERSION) -> None:
    """
    Bring the store behind *dialect* to schema version *target*.

    Raises:
        StoreError: the store's schema is newer than this structflow knows, or
            the database refused a change.
    """
    version = current_version(dialect)
    if version >= target:
        return
    for migration in MIGRATIONS[version:target]:
        with dialect.transaction("migration"):
            # Another process may have migrated while this one waited for the lock.
            if current_version(dialect) >= migration.version:
                continue
            dialect.query(CREATE_SCHEMA_TABLE[dialect.name])
            for statement in migration.statements(dialect.name):
                dialect.query(statement)
            if migration.backfill:
                getattr(dialect, migration.backfill)(progress)
            dialect.query(
                f"INSERT INTO {SCHEMA_TABLE} (version, description, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.description, _now()),
            )


def current_version(dialect: Dialect) -> int:
    """
    The store's schema version (0 for an empty database).

    Raises:
        StoreError: the version is newer than :data:`VERSION`, or the database
            holds structflow's tables without a version.
    """
    existing = dialect.tables([SCHEMA_TABLE, "structflow_entries"])
    if SCHEMA_TABLE not in existing:
        if existing:
            raise StoreError(
                f"store {dialect.shown}: has a structflow_entries table but no "
                f"{SCHEMA_TABLE} table; it was not made by structflow"
            )
        return 0
    rows = dialect.query(f"SELECT MAX(version) FROM {SCHEMA_TABLE}")
    version = int(rows[0][0] or 0)
    if version > VERSION:
        raise StoreError(
            f"store {dialect.shown}: its schema version is {version}, newer than this "
            f"structflow understands ({VERSION}); upgrade structflow to use this store"
        )
    return version


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()
