"""
Query parameters of the JSON API: read, bounded, and checked by the store's own rules.

The filters are the keyword arguments of :meth:`structflow.store.Store.logs`
and :meth:`~structflow.store.Store.runs`, spelled the same; ``where`` is
repeatable as ``where=key:value``. Values are checked by the store's filter
module (:mod:`structflow.store._filters`), so a bad value gets the same
words here as in Python and on the command line. Nothing here builds SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from structflow.store._filters import LOG_FILTERS, build_query, parse_where_pairs

__all__ = [
    "LOG_FILTERS",
    "MAX_QUERY_BYTES",
    "BadParameter",
    "read_params",
]

#: Longest query string accepted.
MAX_QUERY_BYTES = 8192
_NAME = re.compile(r"[A-Za-z_]+")


class BadParameter(ValueError):
    """
    A query parameter is unknown, repeated or invalid.

    Attributes:
        parameter: the parameter's name, when one is to blame.
    """

    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        if parameter is None:
            found = _NAME.match(message)
            parameter = found.group(0) if found else None
        self.parameter = parameter


def _int(name: str, text: str, low: int, high: int) -> int:
    if text.strip().isdigit() and len(text.strip()) <= 9 and low <= int(text) <= high:
        return int(text)
    raise BadParameter(
        f"{name}={text!r} is invalid; expected an integer from {low} to {high}", name
    )


def read_params(
    items: Sequence[tuple[str, str]],
    query_bytes: int,
    allowed: Sequence[str],
    *,
    limit: tuple[int, int, int] | None = None,
    check_logs: bool = False,
) -> dict[str, Any]:
    """
    Return the keyword arguments a query string stands for.

    Args:
        items: the (name, value) pairs in order, repeats included.
        query_bytes: the raw query string's length.
        allowed: the parameters this route takes; ``where`` may repeat.
        limit: (default, lowest, highest) of ``limit``, when the route takes one.
        check_logs: check the log filters now with the store's rules, so an
            error is answered before any work starts.

    Raises:
        BadParameter: the message names the parameter, the value and what is allowed.
    """
    if query_bytes > MAX_QUERY_BYTES:
        raise BadParameter(
            f"the query string is {query_bytes} bytes long; at most {MAX_QUERY_BYTES} are allowed",
            "query",
        )
    grouped: dict[str, list[str]] = {}
    for name, value in items:
        if name not in allowed:
            raise BadParameter(
                f"{name!r} is not a parameter of this route; expected one of {', '.join(allowed)}",
                name,
            )
        grouped.setdefault(name, []).append(value)
    out: dict[str, Any] = {}
    for name, values in grouped.items():
        if name == "where":
            try:
                out["where"] = parse_where_pairs(values, separator=":")
            except ValueError as exc:
                raise BadParameter(str(exc), "where") from None
            continue
        if len(values) > 1:
            raise BadParameter(f"{name} is given {len(values)} times; give it once", name)
        out[name] = values[0]
    if limit is not None:
        default, low, high = limit
        text = out.get("limit")
        out["limit"] = default if text is None else _int("limit", text, low, high)
    if check_logs:
        check_log_filters(out)
    return out


def check_log_filters(kwargs: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> None:
    """
    Check the log filters in *kwargs* by the store's rules.

    Raises:
        BadParameter: a filter is invalid.
    """
    known = {k: v for k, v in kwargs.items() if k in (*LOG_FILTERS, "order", "after")}
    try:
        build_query(**known, limit=None, labels=labels)
    except ValueError as exc:
        raise BadParameter(str(exc)) from None
