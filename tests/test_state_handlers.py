"""Prefect 1's state handlers and on_failure callbacks, on tasks and flows."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

import structflow
from sample_flows import Collect, add
from structflow import Flow, Task, task
from structflow.engine import Failed, State, Success
from structflow.engine.signals import SKIP
from structflow.utilities.debug import raise_on_exception

Changes = list[tuple[str, str, str]]


def recorder(changes: Changes) -> Any:
    """A handler that logs each change on the run's logger and keeps it."""

    def handler(obj: Any, old: State, new: State) -> State:
        structflow.context.get("logger").info("%s -> %s", type(old).__name__, type(new).__name__)
        changes.append((obj.name, type(old).__name__, type(new).__name__))
        return new

    return handler


def test_task_handlers_see_each_change_in_the_runs_context(collect: Collect) -> None:
    changes: Changes = []
    failures: list[tuple[str, str | None]] = []

    @task(
        max_retries=1,
        state_handlers=[recorder(changes)],
        on_failure=lambda t, s: failures.append((t.name, s.message)),
    )
    def flaky() -> None:
        raise ValueError("disk full")

    with Flow("f") as flow:
        after = add(flaky(), 1, task_args={"name": "after"})
        after.state_handlers = (recorder(changes),)

    flow.run()

    assert changes == [
        ("flaky", "Pending", "Running"),
        ("flaky", "Running", "Retrying"),
        ("flaky", "Retrying", "Running"),
        ("flaky", "Running", "Failed"),
        ("after", "Pending", "TriggerFailed"),
    ]
    # on_failure: once, for the run's end, not for the try that is retried.
    assert failures == [("flaky", "Error during execution of task: ValueError('disk full')")]
    notes = collect.named("structflow.flaky")
    assert [r.getMessage() for r in notes] == [
        "Pending -> Running",
        "Running -> Retrying",
        "Retrying -> Running",
        "Running -> Failed",
    ]
    assert {(r.__dict__["task_name"], r.__dict__["task_run_count"]) for r in notes} == {
        ("flaky", 1),
        ("flaky", 2),
    }


def test_a_state_a_handler_returns_is_the_new_state() -> None:
    def forgive(t: Task, old: State, new: State) -> State:
        return Success(message="forgiven", result=0) if new.is_failed() else new

    @task(state_handlers=[forgive])
    def strict() -> int:
        raise RuntimeError("no")

    with Flow("f") as flow:
        total = add(strict(), 1)

    state = flow.run()
    assert state.is_successful()
    assert state.result[total].result == 1


def test_a_handler_that_raises_fails_the_run_and_is_logged(collect: Collect) -> None:
    ran: list[str] = []

    def refuse_to_start(t: Task, old: State, new: State) -> State:
        if new.is_running():
            raise PermissionError("outside the batch window")
        return new

    def returns_text(t: Task, old: State, new: State) -> str:
        return "done"

    @task(state_handlers=[refuse_to_start])
    def guarded() -> None:
        ran.append("guarded")

    @task(state_handlers=[returns_text])  # type: ignore[list-item]
    def chatty() -> int:
        ran.append("chatty")
        return 1

    with Flow("f") as flow:
        g = guarded()
        c = chatty()

    state = flow.run()

    assert ran == []  # a handler failing at the start keeps the task's code from running
    assert type(state.result[g]) is Failed
    assert isinstance(state.result[g].exception, PermissionError)
    assert "returned 'done', not a state" in str(state.result[c].message)
    errors = [r for r in collect.named("structflow.TaskRunner") if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "Task 'guarded': Exception raised while calling state handlers: "
        "PermissionError('outside the batch window')",
        "Task 'chatty': Exception raised while calling state handlers: TypeError(\"state "
        f"handler {returns_text!r} returned 'done', not a state (return new_state to keep it)\")",
    ]
    assert all(r.exc_info for r in errors)


def test_skips_and_mapped_runs_go_through_the_handlers() -> None:
    changes: Changes = []

    @task(state_handlers=[recorder(changes)])
    def fetch() -> None:
        raise SKIP("holiday")

    @task(state_handlers=[recorder(changes)])
    def load(x: Any) -> None: ...

    @task(state_handlers=[recorder(changes)])
    def double(x: int) -> int:
        return 2 * x

    with Flow("f") as flow:
        load(fetch())
        double.map([1, 2])

    state = flow.run()
    assert state.is_successful()
    assert changes.count(("double", "Pending", "Running")) == 2
    assert changes.count(("double", "Running", "Success")) == 2
    assert ("double", "Pending", "Mapped") in changes
    assert ("fetch", "Running", "Skipped") in changes
    assert ("load", "Pending", "Skipped") in changes


def test_flow_handlers_see_the_run_start_and_end() -> None:
    changes: Changes = []
    failures: list[str] = []

    with Flow(
        "nightly",
        state_handlers=[recorder(changes)],
        on_failure=lambda f, s: failures.append(f"{f.name}: {s.message}"),
    ) as flow:
        add(1, 2)

    assert flow.run().is_successful()
    assert changes == [("nightly", "Pending", "Running"), ("nightly", "Running", "Success")]
    assert failures == []


def test_a_flow_handler_may_fail_the_run_or_stop_it_starting(collect: Collect) -> None:
    ran: list[int] = []

    @task
    def work() -> None:
        ran.append(1)

    def fail_at_end(f: Flow, old: State, new: State) -> State:
        return Failed(message="quota exceeded") if new.is_successful() else new

    def no_start(f: Flow, old: State, new: State) -> State:
        if new.is_running():
            raise RuntimeError("maintenance")
        return new

    with Flow("ends-failed", state_handlers=[fail_at_end]) as ends_failed:
        work()
    with Flow("never-starts", state_handlers=[no_start]) as never_starts:
        work()

    assert type(ends_failed.run()) is Failed
    assert ran == [1]
    state = never_starts.run()
    assert state.is_failed() and ran == [1]
    finished = [r for r in collect.named("structflow.FlowRunner") if "FAILED" in r.getMessage()]
    assert [r.getMessage() for r in finished] == [
        "Flow run FAILED: quota exceeded (set by a state handler)",
        "Flow run FAILED: Exception raised while calling state handlers: "
        "RuntimeError('maintenance')",
    ]
    with raise_on_exception(), pytest.raises(RuntimeError, match="maintenance"):
        never_starts.run()


def test_handlers_are_checked_where_the_task_or_flow_is_made() -> None:
    def handler(t: Task, old: State, new: State) -> State:
        return new

    with pytest.raises(TypeError, match="state_handlers must be a list of callables"):
        task(state_handlers=handler)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="state_handlers must be callables"):
        task(state_handlers=[handler, "log"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="on_failure must be a callable callback"):
        Flow("f", on_failure="page me")  # type: ignore[arg-type]

    def handlers() -> Iterator[Any]:
        yield handler

    made = task(state_handlers=handlers())

    @made
    def one() -> None: ...

    @made
    def two() -> None: ...

    assert one.state_handlers == two.state_handlers == (handler,)
