"""@task(log_stdout=True) and RedirectToLog: printed lines become records of the task's logger."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
import threading
from typing import TextIO

import pytest

import structflow
from sample_flows import Collect
from structflow import Flow, Task, task
from structflow.engine import State
from structflow.executors import ThreadExecutor
from structflow.utilities.logging import RedirectToLog, get_logger

LINES = 1000


def by_logger(collect: Collect, name: str) -> list[logging.LogRecord]:
    return collect.named(f"structflow.{name}")


# --- RedirectToLog ----------------------------------------------------------------


def test_redirect_logs_each_complete_line_once(collect: Collect) -> None:
    out = RedirectToLog(get_logger("printer"))

    out.write("first line\nsecond ")
    out.write("line\n")

    assert collect.messages("structflow.printer") == ["first line", "second line"]


def test_redirect_keeps_a_partial_line_until_flush(collect: Collect) -> None:
    out = RedirectToLog(get_logger("printer"))
    out.write("no newline yet")
    assert collect.messages("structflow.printer") == []

    out.flush()

    assert collect.messages("structflow.printer") == ["no newline yet"]


def test_redirect_skips_blank_lines_and_trailing_whitespace(collect: Collect) -> None:
    out = RedirectToLog(get_logger("printer"))

    print("padded   \n\n   \nend\r", file=out)

    assert collect.messages("structflow.printer") == ["padded", "end"]


def test_redirect_uses_the_level_given_by_number_or_name(collect: Collect) -> None:
    print("as a number", file=RedirectToLog(get_logger("printer"), level=30))
    print("as a name", file=RedirectToLog(get_logger("printer"), level="error"))

    assert [(r.getMessage(), r.levelname) for r in by_logger(collect, "printer")] == [
        ("as a number", "WARNING"),
        ("as a name", "ERROR"),
    ]


def test_redirect_defaults_to_the_stdout_logger_at_info(collect: Collect) -> None:
    print("hello", file=RedirectToLog())

    (record,) = by_logger(collect, "stdout")
    assert (record.getMessage(), record.levelno) == ("hello", logging.INFO)


def test_redirect_rejects_an_unknown_level_naming_it() -> None:
    with pytest.raises(ValueError, match=r"level='LOUD'\): not a level name; use a number or"):
        RedirectToLog(level="LOUD")
    with pytest.raises(TypeError, match=r"must be an int or a level name, got 2\.5"):
        RedirectToLog(level=2.5)  # type: ignore[arg-type]


def test_redirect_is_a_text_stream() -> None:
    out: TextIO = RedirectToLog(get_logger("printer"))

    assert isinstance(out, io.TextIOBase)
    assert out.writable() and not out.readable() and not out.isatty()
    assert out.encoding == "utf-8"
    with pytest.raises(io.UnsupportedOperation):
        out.fileno()
    with pytest.raises(TypeError, match="write\\(\\) argument must be str, not bytes"):
        out.write(b"raw")  # type: ignore[arg-type]


def test_redirect_close_logs_the_partial_line_then_refuses_writes(collect: Collect) -> None:
    out = RedirectToLog(get_logger("printer"))
    out.write("last words")

    out.close()

    assert collect.messages("structflow.printer") == ["last words"]
    with pytest.raises(ValueError, match="closed"):
        out.write("more")


def test_redirect_stdout_with_the_default_stream_handler_does_not_loop(
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Prefect 1's pattern. structflow's stream handler writes to whatever
    # sys.stdout is, here the RedirectToLog itself: that write goes to the
    # process's standard output instead of being logged again.
    structflow.configure(renderer="json")
    with contextlib.redirect_stdout(RedirectToLog(get_logger("printer"))):
        print("through the log")

    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    assert [(r["logger"], r["message"]) for r in lines] == [
        ("structflow.printer", "through the log")
    ]


# --- @task(log_stdout=True) ---------------------------------------------------------


@task(name="talker", log_stdout=True)
def talker() -> str:
    print("hello from the task")
    print("two", "words")
    return "done"


def test_log_stdout_task_prints_become_records_with_run_context(collect: Collect) -> None:
    with Flow("printing") as flow:
        result = talker()

    state = flow.run()

    assert state.result[result].result == "done"
    records = by_logger(collect, "talker")
    assert [(r.getMessage(), r.levelno) for r in records] == [
        ("hello from the task", logging.INFO),
        ("two words", logging.INFO),
    ]
    assert {(r.flow_name, r.task_name, r.task_slug) for r in records} == {  # type: ignore[attr-defined]
        ("printing", "talker", "talker-1")
    }


def test_prints_of_a_task_without_log_stdout_stay_on_stdout(
    collect: Collect, capsys: pytest.CaptureFixture[str]
) -> None:
    @task
    def plain() -> None:
        print("plain print")

    with Flow("f") as flow:
        plain()
    flow.run()

    assert capsys.readouterr().out == "plain print\n"
    assert collect.messages("structflow.plain") == []


def test_a_partial_last_line_is_logged_when_the_task_ends(collect: Collect) -> None:
    @task(log_stdout=True)
    def dots() -> None:
        for _ in range(3):
            print(".", end="")

    with Flow("f") as flow:
        dots()
    flow.run()

    assert collect.messages("structflow.dots") == ["..."]


def test_stdout_is_restored_after_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    structflow.configure(stream="none")
    before = sys.stdout
    with Flow("f") as flow:
        talker()

    flow.run()
    print("after the run")

    assert sys.stdout is before
    assert capsys.readouterr().out == "after the run\n"


def test_the_task_logs_its_own_lines_once_with_the_default_stream_handler(
    capsys: pytest.CaptureFixture[str],
) -> None:
    structflow.configure(renderer="json")

    @task(log_stdout=True)
    def both() -> None:
        structflow.context.get("logger").info("logged")
        print("printed")

    with Flow("f") as flow:
        both()
    flow.run()

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    mine = [r["message"] for r in lines if r["logger"] == "structflow.both"]
    assert mine == ["logged", "printed"]


def test_a_redirect_inside_the_task_wins(collect: Collect) -> None:
    captured = io.StringIO()

    @task(log_stdout=True)
    def redirecting() -> None:
        with contextlib.redirect_stdout(captured):
            print("kept by the task")
        print("logged")

    with Flow("f") as flow:
        redirecting()
    flow.run()

    assert captured.getvalue() == "kept by the task\n"
    assert collect.messages("structflow.redirecting") == ["logged"]


def test_stdout_does_not_claim_a_terminal_inside_a_log_stdout_task(collect: Collect) -> None:
    seen: list[bool] = []

    @task(log_stdout=True)
    def probe() -> None:
        seen.append(sys.stdout.isatty())

    with Flow("f") as flow:
        probe()
    flow.run()

    assert seen == [False]


def describe_stdout() -> tuple[object, ...]:
    """What code can ask sys.stdout besides writing to it."""
    try:
        fileno: object = sys.stdout.fileno()
    except io.UnsupportedOperation as exc:
        fileno = type(exc)
    return (isinstance(sys.stdout, io.TextIOBase), sys.stdout.encoding, fileno)


def test_stdout_inside_a_log_stdout_task_answers_as_the_stream_it_replaced(
    collect: Collect,
) -> None:
    seen: list[tuple[object, ...]] = []

    @task(log_stdout=True)
    def probe() -> None:
        seen.append(describe_stdout())

    outside = describe_stdout()
    with Flow("f") as flow:
        probe()
    flow.run()

    assert seen == [outside]


def test_mapped_children_log_their_prints_on_their_own_loggers(collect: Collect) -> None:
    @task(name="echo", log_stdout=True)
    def echo(word: str) -> None:
        print(word)

    with Flow("f") as flow:
        echo.map(["a", "b"])
    flow.run(executor=ThreadExecutor(max_workers=2))

    for i, word in enumerate(["a", "b"]):
        (record,) = collect.named(f"structflow.echo[{i}]")
        assert (record.getMessage(), record.map_index) == (word, i)  # type: ignore[attr-defined]


# --- concurrency --------------------------------------------------------------------

# Both tasks wait here, so their printing overlaps.
start_together = threading.Barrier(2, timeout=30)


def print_lines(label: str) -> None:
    start_together.wait()
    for i in range(LINES):
        print(f"{label} line {i}")


@task(name="left", log_stdout=True)
def left() -> None:
    print_lines("left")


@task(name="right", log_stdout=True)
def right() -> None:
    print_lines("right")


@task(name="bystander")
def bystander() -> None:
    start_together.wait()
    for i in range(LINES):
        print(f"bystander line {i}")


def run_together(*tasks: Task) -> State:
    """Run *tasks* side by side on two threads."""
    start_together.reset()
    flow = Flow("concurrent", tasks=tasks)
    return flow.run(executor=ThreadExecutor(max_workers=2))


def test_concurrent_tasks_each_get_exactly_their_own_lines_in_order(collect: Collect) -> None:
    state = run_together(left, right)

    assert state.is_successful()
    for label in ("left", "right"):
        records = by_logger(collect, label)
        assert [r.getMessage() for r in records] == [f"{label} line {i}" for i in range(LINES)]
        run_ids = {r.task_run_id for r in records}  # type: ignore[attr-defined]
        assert len(run_ids) == 1
        (started,) = [
            r
            for r in collect.named("structflow.TaskRunner")
            if r.getMessage() == f"Task '{label}': Starting task run..."
        ]
        assert run_ids == {started.task_run_id}  # type: ignore[attr-defined]


def test_a_concurrent_task_without_log_stdout_keeps_printing_to_stdout(
    collect: Collect, capsys: pytest.CaptureFixture[str]
) -> None:
    state = run_together(left, bystander)

    assert state.is_successful()
    assert capsys.readouterr().out.splitlines() == [f"bystander line {i}" for i in range(LINES)]
    assert len(by_logger(collect, "left")) == LINES
    assert by_logger(collect, "bystander") == []
