"""ConsoleFormatter: aligned, coloured when the stream is a terminal."""

from __future__ import annotations

import logging
import os

import pytest

from formatting import golden_record, raised
from structflow.formatters import ConsoleFormatter


def test_console_layout_without_colors() -> None:
    record = golden_record()
    record.levelno, record.levelname = logging.INFO, "INFO"
    text = ConsoleFormatter(colors=False, datefmt="%Y").format(record)
    expected = (
        "2024 [info    ] loaded 3 rows                  [structflow.golden] "
        "flow_name=etl flow_run_id=fr-1 task_name=load task_run_id=tr-1 map_index=None "
        "task_run_count=1 rows=3"
    )
    assert expected == text


def test_console_colors_wrap_level_and_fields() -> None:
    record = golden_record()
    text = ConsoleFormatter(colors=True).format(record)
    assert "\x1b[31merror   \x1b[0m" in text
    assert "\x1b[36mrows\x1b[0m=\x1b[35m3\x1b[0m" in text


def test_console_colors_follow_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    primary, secondary = os.openpty()
    with open(secondary, "w") as tty, open(os.devnull, "w") as devnull:
        assert ConsoleFormatter(stream=tty).colors is True
        assert ConsoleFormatter(stream=devnull).colors is False
        monkeypatch.setenv("NO_COLOR", "1")
        assert ConsoleFormatter(stream=tty).colors is False
        monkeypatch.delenv("NO_COLOR")
        monkeypatch.setenv("FORCE_COLOR", "1")
        assert ConsoleFormatter(stream=devnull).colors is True
    os.close(primary)


def test_console_traceback_below_the_line() -> None:
    record = golden_record(exc_info=raised())
    lines = ConsoleFormatter(colors=False).format(record).split("\n")
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: bad value"
