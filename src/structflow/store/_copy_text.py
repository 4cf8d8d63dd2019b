"""
An entry as one line of PostgreSQL's ``COPY ... FROM STDIN`` text format.

The PostgreSQL dialect keeps its entries (in the handler's queue and spool)
as the very bytes ``COPY`` reads: a batch is sent as it is, with no parsing
or formatting on the way out. The columns are those of
:data:`structflow.store._ingest.COLUMNS`, in order, separated by tabs;
``\\N`` is NULL. In a value, a backslash, tab, newline or carriage return
is written as its backslash escape. NUL, which PostgreSQL text cannot
hold, becomes U+FFFD (in ``fields``, the JSON escape ``\\u0000`` becomes
``\\ufffd``), and a lone surrogate its ``\\udXXX`` escape, as in every
backend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from structflow.store._filters import clean_text

__all__ = ["copy_line"]

_NULL = "\\N"
#: Tabs between the columns of one line.
_SEPARATORS = 16
#: Where ``duration_s`` and ``fields`` are among the columns.
_DURATION = 13
_FIELDS = 16


def copy_line(columns: Sequence[Any]) -> bytes:
    """The ``COPY`` text line (with its newline) of an entry's *columns*."""
    duration = columns[_DURATION]
    if duration is not None and not math.isfinite(duration):
        # As in JSON, which has no infinities.
        columns = (*columns[:_DURATION], None, *columns[_DURATION + 1 :])
    # Each column by name rather than a loop over them (as _escaped does):
    # this runs for every record, and the loop costs it a third more.
    (
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
        exception,
        words,
        fields,
    ) = columns
    line = "\t".join(
        (
            uid,
            str(ts),
            level,
            str(levelno),
            logger,
            message,
            _NULL if flow_name is None else flow_name,
            _NULL if flow_run_id is None else flow_run_id,
            _NULL if task_name is None else task_name,
            _NULL if task_run_id is None else task_run_id,
            _NULL if map_index is None else str(map_index),
            _NULL if lifecycle is None else lifecycle,
            _NULL if state is None else state,
            _NULL if duration is None else str(duration),
            _NULL if exception is None else exception,
            words,
            fields,
        )
    )
    # Most lines hold no character to escape: their only backslashes are
    # those of the NULLs, and their only tabs the separators.
    if (
        line.count("\\") != columns.count(None)
        or line.count("\t") != _SEPARATORS
        or "\n" in line
        or "\r" in line
        or "\x00" in line
    ):
        line = _escaped(columns)
    try:
        return line.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # a lone surrogate: its escape, as the renderer writes it
        return (
            _escaped([clean_text(v) if type(v) is str else v for v in columns]).encode("utf-8")
            + b"\n"
        )


def _escaped(columns: Sequence[Any]) -> str:
    """The line of *columns*, each value escaped (the rare path)."""
    values: list[str] = []
    for index, value in enumerate(columns):
        if value is None:
            values.append(_NULL)
            continue
        text = value if type(value) is str else str(value)
        if index == _FIELDS:
            text = text.replace("\\u0000", "\\ufffd")
        values.append(
            text.replace("\x00", "\ufffd")
            .replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return "\t".join(values)
