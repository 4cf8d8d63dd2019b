"""LogfmtFormatter: key=value pairs that a logfmt reader parses back."""

from __future__ import annotations

import re

from hypothesis import assume, given, settings

import strategies
from formatting import golden_record, raised
from structflow.formatters import LogfmtFormatter

_LOGFMT_PAIR = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)')


_UNESCAPE = re.compile(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|.)")


def parse_logfmt(line: str) -> dict[str, str]:
    """A strict-enough logfmt reader: the pairs must cover the whole line."""
    pairs = _LOGFMT_PAIR.findall(line)
    assert " ".join(f"{k}={v}" for k, v in pairs) == line
    out = {}
    for key, raw in pairs:
        quoted = raw.startswith('"')
        out[key] = _UNESCAPE.sub(_unescape_one, raw[1:-1]) if quoted else raw
    return out


def _unescape_one(match: re.Match[str]) -> str:
    code = match.group(1)
    simple = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"'}
    if code in simple:
        return simple[code]
    return chr(int(code[1:], 16))


def test_logfmt_layout() -> None:
    record = golden_record(note="two words", empty="", quote='say "hi"', items=[1, 2])
    assert parse_logfmt(LogfmtFormatter().format(record)) == {
        "timestamp": "2024-05-01T12:00:00.125000Z",
        "level": "error",
        "logger": "structflow.golden",
        "message": "loaded 3 rows",
        "flow_name": "etl",
        "flow_run_id": "fr-1",
        "task_name": "load",
        "task_run_id": "tr-1",
        "map_index": "null",
        "task_run_count": "1",
        "rows": "3",
        "note": "two words",
        "empty": "",
        "quote": 'say "hi"',
        "items": "[1,2]",
    }


def test_logfmt_exception_fields() -> None:
    record = golden_record(exc_info=raised())
    parsed = parse_logfmt(LogfmtFormatter().format(record))
    assert (parsed["exception.type"], parsed["exception.message"]) == ("ValueError", "bad value")
    assert parsed["exception.traceback"].endswith("ValueError: bad value")


@settings(max_examples=150, deadline=None)
@given(value=strategies.nasty_text, key=strategies.nasty_text)
def test_logfmt_values_round_trip(value: str, key: str) -> None:
    assume(key != "v")  # the other field must not replace the value under test
    record = golden_record(**{"v": value, key or "_": "k"})
    line = LogfmtFormatter(redact_keys=[]).format(record)
    assert len(line.splitlines()) == 1
    parsed = parse_logfmt(line)
    assert value == parsed["v"]
