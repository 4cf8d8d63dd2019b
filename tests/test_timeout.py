"""@task(timeout=...): a try that runs too long ends TimedOut; what it logged stays logged."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

import structflow
from sample_flows import Collect
from structflow import Flow, Task, task
from structflow.engine import Failed, TaskTimeoutError, TimedOut
from structflow.executors import Executor, LocalExecutor, ThreadExecutor

# The tests bound their own duration; a timeout that did not work would
# otherwise leave a run waiting on a body that waits for the test.
pytestmark = pytest.mark.timeout(30)

# Set when a test ends, so no task body outlives its test.
release = threading.Event()


@pytest.fixture(autouse=True)
def released_bodies() -> Iterator[None]:
    release.clear()
    yield
    release.set()


@task(name="sleepy", timeout=0.5)
def sleepy() -> str:
    structflow.context.get("logger").info("going to sleep")
    release.wait(20)
    return "woke up"


@pytest.mark.parametrize("executor", [LocalExecutor(), ThreadExecutor(max_workers=2)], ids=repr)
def test_a_task_past_its_timeout_ends_timed_out_while_its_body_still_runs(
    executor: Executor, collect: Collect
) -> None:
    with Flow("timeouts") as flow:
        slow = sleepy()

    state = flow.run(executor=executor)
    body_still_waiting = not release.is_set()

    assert body_still_waiting
    assert state.is_failed()
    task_state = state.result[slow]
    assert isinstance(task_state, TimedOut) and isinstance(task_state, Failed)
    assert task_state.message == "Task timed out during execution after 0.5 s."
    assert isinstance(task_state.exception, TaskTimeoutError)
    assert "did not finish within its timeout of 0.5 s" in str(task_state.exception)
    # Where the body was when the time ran out.
    assert task_state.traceback is not None and "release.wait(20)" in task_state.traceback


def test_the_record_logged_before_the_timeout_is_in_the_output_with_its_run_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    structflow.configure(renderer="json")
    with Flow("timeouts") as flow:
        sleepy()

    flow.run()

    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (before,) = [r for r in records if r["message"] == "going to sleep"]
    (timed_out,) = [
        r for r in records if r["level"] == "error" and r["logger"] == "structflow.TaskRunner"
    ]
    assert before["logger"] == "structflow.sleepy"
    assert timed_out["message"] == (
        "Task 'sleepy': Task timed out during execution after 0.5 s "
        "(its code keeps running in the background)"
    )
    assert before["task_run_id"] == timed_out["task_run_id"]
    assert (before["task_name"], before["flow_name"]) == ("sleepy", "timeouts")
    finished = [r["message"] for r in records if r["logger"] == "structflow.TaskRunner"][-1]
    assert finished == "Task 'sleepy': Finished task run for task with final state: 'TimedOut'"


def test_a_task_within_its_timeout_returns_its_result() -> None:
    @task(timeout=timedelta(seconds=20))
    def quick() -> int:
        return 7

    with Flow("f") as flow:
        result = quick()

    assert flow.run().result[result].result == 7


def test_an_exception_within_the_timeout_fails_the_task_as_usual() -> None:
    @task(timeout=20)
    def broken() -> None:
        raise KeyError("missing")

    with Flow("f") as flow:
        result = broken()

    task_state = flow.run().result[result]
    assert type(task_state) is Failed
    assert isinstance(task_state.exception, KeyError)
    assert task_state.traceback is not None and "KeyError: 'missing'" in task_state.traceback


def test_a_timed_out_try_is_retried(collect: Collect) -> None:
    @task(name="second-time", timeout=0.5, max_retries=1, retry_delay=0)
    def second_time() -> str:
        if structflow.context.get("task_run_count") == 1:
            release.wait(20)
        return "in time"

    with Flow("f") as flow:
        result = second_time()

    state = flow.run()

    assert state.result[result].result == "in time"
    finals = [
        r.getMessage().rsplit(": ", 1)[-1]
        for r in collect.named("structflow.TaskRunner")
        if "Finished task run" in r.getMessage()
    ]
    assert finals == ["'Retrying'", "'Success'"]


def test_the_last_timed_out_try_ends_the_run_timed_out() -> None:
    @task(timeout=0.5, max_retries=1, retry_delay=0)
    def always_slow() -> None:
        release.wait(20)

    with Flow("f") as flow:
        result = always_slow()

    assert isinstance(flow.run().result[result], TimedOut)


def test_what_an_abandoned_body_logs_later_keeps_its_own_run_context(collect: Collect) -> None:
    late_line_logged = threading.Event()
    seen_by_next: dict[str, Any] = {}

    @task(name="abandoned", timeout=0.5)
    def abandoned() -> None:
        release.wait(1.0)  # past the timeout, then carries on
        structflow.context.get("logger").warning("late line")
        late_line_logged.set()

    @task(name="next")
    def next_task() -> None:
        late_line_logged.wait(20)
        seen_by_next["run_id"] = structflow.context.get("task_run_id")

    with Flow("f") as flow:
        first = abandoned()
        next_task()

    state = flow.run()

    assert isinstance(state.result[first], TimedOut)
    (late,) = [r for r in collect.records if r.getMessage() == "late line"]
    (started,) = [
        r
        for r in collect.named("structflow.TaskRunner")
        if r.getMessage() == "Task 'abandoned': Starting task run..."
    ]
    assert late.task_name == "abandoned"  # type: ignore[attr-defined]
    assert late.task_run_id == started.task_run_id  # type: ignore[attr-defined]
    assert late.task_run_id != seen_by_next["run_id"]  # type: ignore[attr-defined]


def test_log_stdout_and_timeout_together_keep_the_lines_printed_in_time(
    collect: Collect,
) -> None:
    @task(name="chatty", timeout=0.5, log_stdout=True)
    def chatty() -> None:
        print("before the timeout")
        release.wait(20)

    with Flow("f") as flow:
        result = chatty()

    state = flow.run()

    assert isinstance(state.result[result], TimedOut)
    (line,) = collect.named("structflow.chatty")
    assert line.getMessage() == "before the timeout"
    assert line.task_name == "chatty"  # type: ignore[attr-defined]


def test_subclass_tasks_take_a_timeout() -> None:
    class Slow(Task):
        def run(self) -> None:
            release.wait(20)

    with Flow("f") as flow:
        result = Slow(timeout=0.5)()

    assert isinstance(flow.run().result[result], TimedOut)


def test_bad_timeouts_are_rejected_naming_the_task() -> None:
    with pytest.raises(ValueError, match=r"Task 'x': timeout must be more than 0 seconds"):
        task(name="x", timeout=0)
    with pytest.raises(ValueError, match="timeout must be more than 0 seconds and finite"):
        task(timeout=float("inf"))
    with pytest.raises(TypeError, match="timeout must be None, a number of seconds or a"):
        task(timeout="5s")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="log_stdout must be True or False, got 1"):
        task(log_stdout=1)  # type: ignore[call-overload]


def test_copies_can_change_timeout_and_log_stdout() -> None:
    copy = sleepy.copy(timeout=timedelta(minutes=1), log_stdout=True)

    assert (copy.timeout, copy.log_stdout) == (60.0, True)
    assert (sleepy.timeout, sleepy.log_stdout) == (0.5, False)
