"""
Turning JSON lines (and the JSON renderer's event dicts) into the store's entries.

The lines are what :class:`structflow.formatters.JsonFormatter` writes with
the default schema (what HTTPHandler sends as NDJSON). Each valid line
becomes the *columns* of one entry (:data:`COLUMNS`), which the dialect
encodes as it stores them: a JSON array for SQLite (:func:`json_entry`),
a line of ``COPY`` text for PostgreSQL; the dialects store a batch per
transaction (SQLite a hundred entries per INSERT, PostgreSQL the batch with
one COPY). StoreHandler makes the same columns straight from the event dict
the renderer builds, without the line in between, and keeps the encoded
entries in its queue and spool. An invalid line is set aside with the
reason, and never stops the others.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from structflow.store._filters import (
    EPOCH,
    SHORT_NAME_CHARS,
    STANDARD_LEVELS,
    UNKNOWN_LEVELNO,
    clean_text,
    level_number,
    stored_name,
    words_text,
)

__all__ = [
    "COLUMNS",
    "ID_KEY",
    "LEVELNO_KEY",
    "Columns",
    "InvalidLine",
    "event_columns",
    "json_entry",
    "parse_line",
]

#: The key of the sender's unique id of a line; a line seen before with the
#: same id is not stored again. Without it, a hash of the line stands in.
ID_KEY = "_record_id"
#: The key of the level's number, for level names the store does not know.
LEVELNO_KEY = "_levelno"
#: Longest sender id accepted.
MAX_ID_CHARS = 128
#: The columns an entry holds, in its order (``fields`` last, as JSON text).
COLUMNS = (
    "uid",
    "ts",
    "level",
    "levelno",
    "logger",
    "message",
    "flow_name",
    "flow_run_id",
    "task_name",
    "task_run_id",
    "map_index",
    "lifecycle",
    "state",
    "duration_s",
    "exception",
    "words",
    "fields",
)

#: One entry's values, in the order of :data:`COLUMNS`.
Columns = tuple[Any, ...]

_RUN_TEXT_KEYS = ("flow_name", "flow_run_id", "task_name", "task_run_id")
#: Keys that become columns; every other key goes to ``fields``.
_COLUMN_KEYS = frozenset(
    {"timestamp", "level", "logger", "message", "exception", "map_index", ID_KEY, LEVELNO_KEY}
    | set(_RUN_TEXT_KEYS)
)
_MICRO = dt.timedelta(microseconds=1)
_NUL_ESCAPE = b"\\u0000"
_loads = orjson.loads
_dumps = orjson.dumps


class InvalidLine(ValueError):
    """A line that cannot be stored; the message says why."""


def _clean(value: Any) -> Any:
    """*value* with every string (and key) cleaned as stored text is."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _decode(line: bytes | str | Mapping[str, Any]) -> tuple[dict[str, Any], bytes | None]:
    """Return the line's object, and its bytes when it came as text (for the hash)."""
    if type(line) is bytes:
        raw = line
    elif isinstance(line, str):
        raw = line.encode("utf-8", "surrogatepass")
    elif isinstance(line, Mapping):
        return _clean(dict(line)), None
    else:
        raw = bytes(line)
    try:
        obj = _loads(raw)
        needs_cleaning = b"\\u0000" in raw
    except orjson.JSONDecodeError as exc:
        # orjson refuses lone surrogates (\ud800), which the stdlib accepts.
        import json

        try:
            obj = json.loads(raw.decode("utf-8", "surrogatepass"))
        except (ValueError, UnicodeDecodeError):
            raise InvalidLine(f"not JSON ({exc})") from None
        needs_cleaning = True
    if not isinstance(obj, dict):
        raise InvalidLine(f"a JSON {type(obj).__name__}, not an object")
    return (_clean(obj) if needs_cleaning else obj), raw


def _timestamp(value: Any) -> int:
    if type(value) is str and len(value) == 27 and value[26] == "Z" and value[19] == ".":
        # The JSON renderer's own form: the seconds part repeats from record
        # to record, so it is parsed once.
        global _last_second
        prefix = value[:19]
        cached = _last_second
        if cached[0] != prefix:
            cached = _last_second = (prefix, _timestamp_slowly(prefix + "Z"))
        fraction = value[20:26]
        if fraction.isdigit() and fraction.isascii():
            return cached[1] + int(fraction)
    return _timestamp_slowly(value)


_last_second: tuple[str, int] = ("", 0)


def _timestamp_slowly(value: Any) -> int:
    if not isinstance(value, str):
        raise InvalidLine(f"timestamp={value!r} is not an RFC 3339 time")
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidLine(f"timestamp={value!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        return (moment - EPOCH) // _MICRO
    except OverflowError:
        raise InvalidLine(f"timestamp={value!r} is out of range") from None


def _name(obj: dict[str, Any], key: str) -> str | None:
    """The value of a name column (a number becomes its text), as the column holds it."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    elif not isinstance(value, str):
        raise InvalidLine(f"{key}={value!r} is not a string")
    return stored_name(value)


def _exception(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        traceback = value.get("traceback")
        if isinstance(traceback, str) and traceback:
            return traceback
        kind, message = value.get("type"), value.get("message")
        if kind is not None or message is not None:
            return f"{kind}: {message}" if message not in (None, "") else str(kind)
    return _dumps(value).decode("utf-8")


def _levelno(level: str) -> int:
    number = STANDARD_LEVELS.get(level)
    if number is None:
        number = level_number(level)
    return UNKNOWN_LEVELNO if number is None else number


def event_columns(
    obj: dict[str, Any], uid: str, levelno: Any, dump: Callable[[Any], bytes]
) -> Columns:
    """
    An entry's columns, of an event dict as the JSON renderer builds it or of a line.

    *levelno* is the record's level number (anything but an int from 0 to
    2**31: the number of the level name). *dump* serialises the fields
    (values may be objects JSON cannot hold:
    :func:`structflow.formatters.to_json_bytes` renders those as their repr).

    Raises:
        InvalidLine: the event lacks what an entry needs (a processor removed it).
    """
    get = obj.get
    if "timestamp" not in obj:
        raise InvalidLine("no 'timestamp'")
    ts = _timestamp(obj["timestamp"])
    message = get("message")
    if type(message) is not str:
        if message is None:
            raise InvalidLine("no 'message'")
        message = dump(message).decode("utf-8")
    level = get("level")
    if type(level) is not str or not level:
        level = "info"
    elif not level.islower() or len(level) > SHORT_NAME_CHARS:
        level = stored_name(level.lower())
    if type(levelno) is not int or not 0 <= levelno <= 2**31:
        levelno = _levelno(level)
    logger = get("logger")
    if type(logger) is not str:
        logger = "" if logger is None else str(logger)
    flow_name = get("flow_name")
    flow_run_id = get("flow_run_id")
    task_name = get("task_name")
    task_run_id = get("task_run_id")
    if not (
        type(flow_name) is str
        and type(flow_run_id) is str
        and type(task_name) is str
        and type(task_run_id) is str
        and len(flow_name) <= SHORT_NAME_CHARS
        and len(flow_run_id) <= SHORT_NAME_CHARS
        and len(task_name) <= SHORT_NAME_CHARS
        and len(task_run_id) <= SHORT_NAME_CHARS
    ):
        flow_name = _name(obj, "flow_name")
        flow_run_id = _name(obj, "flow_run_id")
        task_name = _name(obj, "task_name")
        task_run_id = _name(obj, "task_run_id")
    map_index = get("map_index")
    if map_index is not None and (type(map_index) is not int or not -(2**63) <= map_index < 2**63):
        raise InvalidLine(f"map_index={map_index!r} is not a 64-bit integer")
    if obj.keys() <= _COLUMN_KEYS:  # most records: nothing but columns
        fields_json = "{}"
        lifecycle = state = duration = None
    else:
        fields = {k: v for k, v in obj.items() if k not in _COLUMN_KEYS}
        lifecycle = fields.get("lifecycle")
        state = fields.get("state")
        duration = fields.get("duration_s")
        lifecycle = stored_name(lifecycle) if type(lifecycle) is str else None
        state = stored_name(state) if type(state) is str else None
        duration = float(duration) if type(duration) in (int, float) else None  # type: ignore[arg-type]
        try:
            fields_json = dump(fields).decode("utf-8")
        except TypeError as exc:
            raise InvalidLine(f"a field is not JSON ({exc})") from None
    exception = get("exception")
    return (
        uid,
        ts,
        level,
        levelno,
        logger,
        message,
        flow_name,
        flow_run_id,
        task_name,
        task_run_id,
        map_index,
        lifecycle,
        state,
        duration,
        exception if exception is None else _exception(exception),
        words_text(message),
        fields_json,
    )


def json_entry(columns: Columns) -> bytes:
    """The entry of *columns* as a JSON array (how SQLite's dialect keeps them)."""
    try:
        entry = _dumps(columns)
    except TypeError:  # a lone surrogate: stored as its escape, as the renderer writes it
        entry = _dumps([clean_text(c) if type(c) is str else c for c in columns])
    if _NUL_ESCAPE in entry:
        # PostgreSQL text cannot hold NUL: every backend stores U+FFFD instead.
        entry = entry.replace(_NUL_ESCAPE, b"\\ufffd")
    return entry


def parse_line(line: bytes | str | Mapping[str, Any]) -> tuple[str, Columns]:
    """
    Return the unique id and the entry's columns of one JSON line (or of an already parsed dict).

    Raises:
        InvalidLine: the line cannot be stored; the message says why.
    """
    obj, raw = _decode(line)
    uid = obj.get(ID_KEY)
    if uid is None:
        if raw is None:
            raw = _dumps(obj, option=orjson.OPT_SORT_KEYS)
        uid = "h:" + hashlib.blake2b(raw, digest_size=16).hexdigest()
    elif type(uid) is not str or not 0 < len(uid) <= MAX_ID_CHARS:
        raise InvalidLine(f"{ID_KEY}={uid!r} is not a string of 1 to {MAX_ID_CHARS} characters")
    return uid, event_columns(obj, uid, obj.get(LEVELNO_KEY), _dumps)
