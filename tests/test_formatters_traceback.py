"""Escaping that keeps one record on one line (structflow.formatters._traceback)."""

from __future__ import annotations

from structflow.formatters._traceback import escape


def test_escape_keeps_printable_text() -> None:
    assert escape("héllo wörld 😀") == "héllo wörld 😀"
    assert (
        escape("a\nb\r\t\x1b\u2028\x85\ud800\u200b") == "a\\nb\\r\\t\\x1b\\u2028\\x85\\ud800\\u200b"
    )
