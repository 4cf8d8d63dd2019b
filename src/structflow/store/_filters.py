"""
Reading and checking the store's filters: levels, times, field equality, words, cursors.

One place for the rules, shared by the Python API, the CLI and the HTTP
server, so that every front end accepts the same values and refuses the
same ones with the same words. Nothing here builds SQL: the results are
plain values (numbers, tuples of validated names, words made only of
letters and digits) that the dialects bind as parameters.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import math
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from structflow._values import truncate

__all__ = [
    "COLUMN_KEYS",
    "LOG_FILTERS",
    "Query",
    "build_query",
    "clean_text",
    "decode_cursor",
    "encode_cursor",
    "level_number",
    "parse_level",
    "parse_limit",
    "parse_time",
    "parse_where",
    "parse_where_pairs",
    "search_words",
    "stored_name",
    "words_of",
    "words_text",
]

#: The standard level names and their numbers, lower case (``warn`` and ``fatal`` too).
STANDARD_LEVELS: dict[str, int] = {
    "notset": logging.NOTSET,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}
#: What an unknown level name ranks as: INFO, so that a minimum level of
#: WARNING or above never hides a custom level the store cannot place.
UNKNOWN_LEVELNO = logging.INFO
_LEVEL_N = re.compile(r"level (\d{1,9})")
_LEVELS_ALLOWED = "NOTSET, DEBUG, INFO, WARNING, ERROR, CRITICAL (any case) or a number >= 0"

#: The filters of ``Store.logs`` and ``Store.follow`` (and of the server's
#: ``/api/logs``), by the names of their parameters, in their order.
LOG_FILTERS = (
    "flow_run_id",
    "task_run_id",
    "flow_name",
    "task_name",
    "level",
    "since",
    "until",
    "search",
    "where",
)

#: ``where`` keys answered by a column rather than by the JSON fields.
COLUMN_KEYS: frozenset[str] = frozenset(
    {"logger", "level", "message", "flow_name", "flow_run_id", "task_name", "task_run_id"}
    | {"map_index"}
)
#: A ``where`` key: names made of ASCII letters, digits, ``_`` and ``-``,
#: joined by dots for nested fields.
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}(?:\.[A-Za-z_][A-Za-z0-9_-]{0,63}){0,7}")
_MAX_WHERE = 32
_INT64 = (-(2**63), 2**63 - 1)

#: Characters that make up words for full-text search: letters and digits
#: (as ``str.isalnum`` has them), less the few letters SQLite's unicode61
#: tokenizer (Unicode 6.1) reads as separators, so that a word is one token
#: on every backend.
_NOT_WORD = "\u19b0-\u19c0\u19c8\u19c9\u1cf2\u1cf3"
_WORD = re.compile(rf"[^\W_{_NOT_WORD}]+")
#: For ASCII text, the fast way to the same words: every byte that is not a
#: letter or digit becomes a space, and capitals become lower case.
_ASCII_WORD_BYTES = bytes.maketrans(
    bytes(range(128)), bytes(ord(chr(c).lower()) if chr(c).isalnum() else 32 for c in range(128))
)
#: Search looks at this many characters of each message...
SEARCH_CHARS = 65_536
#: ... and at most this many characters of each word (longer ones are cut
#: the same way when stored and when searched).
WORD_CHARS = 64
_MAX_SEARCH_WORDS = 32
#: The most a name that entries are found by exactly (a flow or task name, a
#: run id, a level, a lifecycle event or a state) holds, in UTF-8 bytes. A
#: longer one is cut, with a marker, the same way when stored and when
#: filtered by: an index entry of PostgreSQL holds at most 2704 bytes, and a
#: row that does not fit would fail its whole batch.
NAME_BYTES = 1000
#: Names this long or shorter are within NAME_BYTES however they are stored
#: (a lone surrogate is stored as its six-character escape).
SHORT_NAME_CHARS = NAME_BYTES // 6
#: The columns (and ``where`` keys) that hold such names.
NAME_COLUMNS = frozenset(
    {"flow_name", "flow_run_id", "task_name", "task_run_id", "level", "lifecycle", "state"}
)

_DURATION = re.compile(r"\s*(\d{1,12}(?:\.\d{1,9})?)\s*(s|m|h|d|w)\s*", re.IGNORECASE)
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_TIMES_ALLOWED = (
    "a datetime, a timedelta (that long ago), a duration such as '15m', '1h', '2d' "
    "(s, m, h, d, w) or an ISO 8601 time such as '2024-06-01T12:00:00Z'"
)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICRO = dt.timedelta(microseconds=1)


def _name(labels: Mapping[str, str] | None, key: str) -> str:
    return labels.get(key, key) if labels else key


# --- text ---------------------------------------------------------------------------


def clean_text(text: str) -> str:
    """
    Return *text* as every backend can store and compare it.

    NUL becomes U+FFFD (PostgreSQL text cannot hold NUL) and a lone surrogate
    its ``\\udXXX`` escape, as the JSON renderer writes it.
    """
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def stored_name(text: str) -> str:
    """*text* as a name column holds it: cleaned, and cut to :data:`NAME_BYTES` with a marker."""
    if len(text) <= SHORT_NAME_CHARS:
        return clean_text(text)
    return truncate(clean_text(text), NAME_BYTES)


def words_text(message: str) -> str:
    """The words of *message* that search finds it by, lower case, joined by spaces."""
    text = message if len(message) <= SEARCH_CHARS else message[:SEARCH_CHARS]
    if text.isascii():
        words = text.encode("ascii").translate(_ASCII_WORD_BYTES).split()
        if len(text) > WORD_CHARS:
            words = [w[:WORD_CHARS] for w in words]
        return b" ".join(words).decode("ascii")
    return " ".join(w[:WORD_CHARS] for w in _WORD.findall(text.lower()))


def words_of(message: str) -> list[str]:
    """The distinct words of *message* that search finds it by, lower case, in order."""
    return list(dict.fromkeys(words_text(message).split()))


def search_words(value: object, labels: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """
    Return the words of a ``search`` value (each must be in a message for it to match).

    Raises:
        ValueError: *value* is not a string, has no word (letters or digits)
            or more than 32 words.
    """
    name = _name(labels, "search")
    if not isinstance(value, str):
        raise ValueError(f"{name}={value!r} is invalid; expected a string of words")
    words = words_of(clean_text(value))
    if not words:
        raise ValueError(
            f"{name}={value!r} has no word to search for; words are letters and digits"
        )
    if len(words) > _MAX_SEARCH_WORDS:
        raise ValueError(f"{name}={value!r} has {len(words)} words; at most 32 are allowed")
    return tuple(words)


# --- levels -------------------------------------------------------------------------


def level_number(name: str) -> int | None:
    """The number of level *name* (any case; ``"Level 5"`` too), or None when unknown."""
    low = name.lower()
    number = STANDARD_LEVELS.get(low)
    if number is not None:
        return number
    match = _LEVEL_N.fullmatch(low)
    if match:
        return int(match.group(1))
    # Levels this process registered with logging.addLevelName.
    custom = logging.getLevelNamesMapping().get(name.upper())
    return custom if isinstance(custom, int) else None


def parse_level(value: object, labels: Mapping[str, str] | None = None) -> int:
    """
    Return the minimum level number *value* stands for.

    Raises:
        ValueError: *value* is neither a known level name nor a number >= 0.
    """
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2**31:
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 9:
            return int(text)
        number = level_number(text) if text else None
        if number is not None:
            return number
    raise ValueError(
        f"{_name(labels, 'level')}={value!r} is not a log level; expected {_LEVELS_ALLOWED}"
    )


# --- times --------------------------------------------------------------------------


def to_micros(moment: dt.datetime) -> int:
    """Microseconds since the epoch of *moment* (naive: local time)."""
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return (moment - EPOCH) // _MICRO


def from_micros(micros: int) -> dt.datetime:
    """The aware UTC datetime of *micros* microseconds since the epoch."""
    return EPOCH + dt.timedelta(microseconds=micros)


def parse_duration(text: str) -> dt.timedelta | None:
    """``"15m"`` -> 15 minutes; None when *text* is not a duration."""
    match = _DURATION.fullmatch(text)
    if match is None:
        return None
    return dt.timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2).lower()])


def parse_time(
    value: object,
    key: str,
    labels: Mapping[str, str] | None = None,
    now: Callable[[], dt.datetime] | None = None,
) -> int:
    """
    Return the moment *value* names, in microseconds since the epoch.

    A datetime is that moment (naive ones are local time); a timedelta or a
    duration string is that long before now; other strings are ISO 8601
    (without an offset: local time).

    Raises:
        ValueError: any other value, a negative duration, or a time out of range.
    """
    name = _name(labels, key)
    current = (now or (lambda: dt.datetime.now(dt.UTC)))()
    try:
        if isinstance(value, dt.datetime):
            return to_micros(value)
        if isinstance(value, dt.timedelta):
            if value < dt.timedelta(0):
                raise ValueError(f"{name}={value!r} is negative; a timedelta means that long ago")
            return to_micros(current - value)
        if isinstance(value, str) and len(value) <= 64:
            ago = parse_duration(value)
            if ago is not None:
                return to_micros(current - ago)
            text = value.strip()
            if text[:1].isdigit():
                return to_micros(dt.datetime.fromisoformat(text))
    except (ValueError, OverflowError, OSError) as exc:
        if str(exc).startswith(name + "="):
            raise
        raise ValueError(
            f"{name}={value!r} is not a time in range; expected {_TIMES_ALLOWED}"
        ) from None
    raise ValueError(f"{name}={value!r} is not a time; expected {_TIMES_ALLOWED}")


# --- where ----------------------------------------------------------------------------

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class WhereTerm:
    """One equality of ``where``: a column, or a path into the JSON fields."""

    path: tuple[str, ...]
    value: Scalar

    @property
    def column(self) -> str | None:
        """The column the key names, or None for a JSON field."""
        return _column(self.path)


def _column(path: tuple[str, ...]) -> str | None:
    """The column a ``where`` key's *path* names, or None for a JSON field."""
    key = path[0]
    return key if len(path) == 1 and key in COLUMN_KEYS else None


def _where_value(value: object, shown: str, column: str | None) -> Scalar:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise ValueError(f"{shown} is out of range; integers must fit in 64 bits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{shown} is not a finite number")
        return value
    if isinstance(value, str):
        return stored_name(value) if column in NAME_COLUMNS else clean_text(value)
    raise ValueError(
        f"{shown} is invalid; a field is compared with a string, number, true, false or null"
    )


def parse_where(where: object, labels: Mapping[str, str] | None = None) -> tuple[WhereTerm, ...]:
    """
    Check ``where`` (field path -> value) and return its terms.

    Keys are plain field paths: names of ASCII letters, digits, ``_`` and
    ``-``, dots for nested fields (``"user.id"``). Values are strings,
    numbers, booleans or None.

    Raises:
        ValueError: *where* is not a mapping, or a key or value is invalid.
    """
    name = _name(labels, "where")
    if where is None:
        return ()
    if not isinstance(where, Mapping):
        raise ValueError(f"{name}={where!r} is invalid; expected a dict of field -> value")
    if len(where) > _MAX_WHERE:
        raise ValueError(f"{name} has {len(where)} keys; at most {_MAX_WHERE} are allowed")
    terms = []
    for key, value in where.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(
                f"{name} key {key!r} is not a field path; expected names of letters, digits, "
                "'_' and '-' joined by dots, such as 'rows' or 'user.id'"
            )
        path = tuple(key.split("."))
        terms.append(WhereTerm(path, _where_value(value, f"{name}[{key!r}]", _column(path))))
    return tuple(terms)


def parse_where_pairs(pairs: Iterable[str], separator: str = "=") -> dict[str, Scalar]:
    """
    Read ``key=value`` strings (the CLI's ``--where``) into a ``where`` dict.

    The value is read as JSON when it is a number, ``true``, ``false``,
    ``null`` or a quoted string, and is a string otherwise: ``rows=3`` is the
    number 3, ``table=users`` and ``code="3"`` are strings.

    Raises:
        ValueError: a pair has no *separator*.
    """
    import json

    out: dict[str, Scalar] = {}
    for pair in pairs:
        key, sep, text = pair.partition(separator)
        if not sep:
            raise ValueError(f"where {pair!r} is invalid; expected key{separator}value")
        value: Scalar = text
        stripped = text.strip()
        if stripped[:1] in '"-0123456789' or stripped in ("true", "false", "null"):
            try:
                parsed = json.loads(stripped)
            except ValueError:
                parsed = text
            if parsed is None or isinstance(parsed, str | int | float | bool):
                value = parsed
        out[key.strip()] = value
    return out


# --- cursors, limits, order -----------------------------------------------------------

_CURSOR = struct.Struct(">qq")


def encode_cursor(ts: int, seq: int) -> str:
    """The opaque cursor of an entry: where a page that ends with it stops."""
    return base64.urlsafe_b64encode(_CURSOR.pack(ts, seq)).rstrip(b"=").decode("ascii")


def decode_cursor(value: object, labels: Mapping[str, str] | None = None) -> tuple[int, int]:
    """
    Return the (timestamp, sequence) position of a cursor.

    Raises:
        ValueError: *value* is not a cursor made by :func:`encode_cursor`.
    """
    name = _name(labels, "after")
    if isinstance(value, str) and len(value) == 22 and value.isascii():
        try:
            raw = base64.urlsafe_b64decode(value + "==")
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == _CURSOR.size and encode_cursor(*_CURSOR.unpack(raw)) == value:
            ts, seq = _CURSOR.unpack(raw)
            return ts, seq
    raise ValueError(
        f"{name}={value!r} is not a cursor; pass the cursor of the last entry of a page "
        "(LogEntry.cursor)"
    )


def parse_limit(value: object, labels: Mapping[str, str] | None = None) -> int | None:
    """Return *value* if it is None (no limit) or an integer >= 1."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise ValueError(
        f"{_name(labels, 'limit')}={value!r} is invalid; expected an integer >= 1 (or None)"
    )


def parse_order(value: object, labels: Mapping[str, str] | None = None) -> bool:
    """Return True for ``"desc"`` (newest first), False for ``"asc"``."""
    if isinstance(value, str) and value.lower() in ("asc", "desc"):
        return value.lower() == "desc"
    raise ValueError(f"{_name(labels, 'order')}={value!r} is invalid; expected 'asc' or 'desc'")


def parse_text(value: object, key: str, labels: Mapping[str, str] | None = None) -> str | None:
    """Return a run or name filter: None, or a string (as the name column stores it)."""
    if value is None:
        return None
    if isinstance(value, str):
        return stored_name(value)
    raise ValueError(f"{_name(labels, key)}={value!r} is invalid; expected a string")


# --- the whole query ------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """
    The checked filters of one ``logs`` or ``follow`` call.

    Times are microseconds since the epoch; ``after`` is a (timestamp,
    sequence) position.
    """

    flow_run_id: str | None = None
    task_run_id: str | None = None
    flow_name: str | None = None
    task_name: str | None = None
    min_levelno: int | None = None
    since: int | None = None
    until: int | None = None
    words: tuple[str, ...] = ()
    where: tuple[WhereTerm, ...] = ()
    limit: int | None = 1000
    descending: bool = False
    after: tuple[int, int] | None = None


def build_query(
    *,
    flow_run_id: object = None,
    task_run_id: object = None,
    flow_name: object = None,
    task_name: object = None,
    level: object = None,
    since: object = None,
    until: object = None,
    search: object = None,
    where: object = None,
    limit: object = 1000,
    order: object = "asc",
    after: object = None,
    labels: Mapping[str, str] | None = None,
    now: Callable[[], dt.datetime] | None = None,
) -> Query:
    """
    Check every filter and return the :class:`Query`.

    Args:
        labels: how the caller spells each parameter in messages (the CLI
            passes ``{"since": "--since", ...}``).
        now: the clock that durations count back from.

    Raises:
        ValueError: a filter is invalid; the message names it, the value and
            what is allowed.
    """
    return Query(
        flow_run_id=parse_text(flow_run_id, "flow_run_id", labels),
        task_run_id=parse_text(task_run_id, "task_run_id", labels),
        flow_name=parse_text(flow_name, "flow_name", labels),
        task_name=parse_text(task_name, "task_name", labels),
        min_levelno=None if level is None else parse_level(level, labels),
        since=None if since is None else parse_time(since, "since", labels, now),
        until=None if until is None else parse_time(until, "until", labels, now),
        words=() if search is None else search_words(search, labels),
        where=parse_where(where, labels),
        limit=parse_limit(limit, labels),
        descending=parse_order(order, labels),
        after=None if after is None else decode_cursor(after, labels),
    )
