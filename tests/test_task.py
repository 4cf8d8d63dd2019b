"""Tasks: the decorator, subclasses, options, copies and their loggers."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

import pytest

from sample_flows import Collect, add, task_a, task_b
from structflow import Flow, Task, get_logger, task
from structflow.engine import FlowError


def test_decorator_forms_and_names() -> None:
    @task
    def plain() -> None: ...

    @task()
    def empty_parens() -> None: ...

    @task(name="Custom", max_retries=2, retry_delay=1.5)
    def named() -> None: ...

    assert (plain.name, empty_parens.name, named.name) == ("plain", "empty_parens", "Custom")
    assert (named.max_retries, named.retry_delay) == (2, timedelta(seconds=1.5))
    assert task(max_retries=1, retry_delay=timedelta(minutes=1))(named.fn).retry_delay == (
        timedelta(minutes=1)
    )
    assert plain.retry_delay == timedelta(0)


def test_bad_task_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="max_retries must be an int >= 0, got -1"):
        task(max_retries=-1)
    with pytest.raises(TypeError, match=r"retry_delay must be a datetime\.timedelta"):
        task(retry_delay="soon")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="retry_delay must not be negative"):
        task(retry_delay=-1)
    with pytest.raises(TypeError, match="Task name must be a non-empty str"):
        Task(name="")

    async def coroutine() -> None: ...

    with pytest.raises(TypeError, match="is an `async def` function"):
        task(coroutine)


def test_prefect_1_options_structflow_lacks_are_named_as_such() -> None:
    remove = "Prefect 1 option(s) that structflow does not have; remove them"
    with pytest.raises(TypeError, match=re.escape(f"task() got 'task_run_name': {remove}")):
        task(task_run_name="{x}")  # type: ignore[call-overload]

    class Load(Task):
        def __init__(self) -> None:
            super().__init__(name="load", target="x", result="r")  # type: ignore[arg-type]

    with pytest.raises(TypeError, match=re.escape(f"got 'result', 'target': {remove}")):
        Load()
    with pytest.raises(TypeError, match=re.escape(f"Flow() got 'schedule': {remove}")):
        Flow("f", schedule=None)  # type: ignore[arg-type]
    # Anything else is Python's own complaint.
    with pytest.raises(TypeError, match="task\\(\\) got an unexpected keyword argument 'nmae'"):
        task(nmae="x")  # type: ignore[call-overload]


def test_a_reserved_argument_name_in_run_is_rejected() -> None:
    with pytest.raises(TypeError, match="cannot have a parameter named 'upstream_tasks'"):

        @task
        def bad(upstream_tasks: Any) -> None: ...


def test_copy_accepts_only_task_options() -> None:
    assert add.copy(max_retries=2, retry_delay=3).retry_delay == timedelta(seconds=3)
    with pytest.raises(TypeError, match="cannot override 'color' in a copy"):
        add.copy(color="red")


def test_task_args_renames_the_copy(collect: Collect) -> None:
    with Flow("f") as flow:
        renamed = add(1, 2, task_args={"name": "first add"})

    flow.run()
    assert renamed.name == "first add" and add.name == "add"
    assert "Task 'first add': Starting task run..." in collect.messages("structflow.TaskRunner")


def test_task_run_can_be_called_directly_outside_a_flow() -> None:
    assert add.run(1, y=2) == 3
    assert task_a.run() == 3


def test_calling_a_task_outside_a_flow_is_a_clear_error() -> None:
    with pytest.raises(FlowError) as info:
        task_b(task_a)
    message = str(info.value)
    assert "Task 'Task B'" in message
    assert "outside a `with Flow(...)` block" in message
    assert ".run(...)" in message
    with pytest.raises(FlowError, match="Task 'add': map"):
        add.map([1], [2])


def test_wrong_arguments_are_reported_at_the_call_site() -> None:
    with Flow("f"), pytest.raises(TypeError, match=r"Task 'add': the arguments do not fit"):
        add(1, 2, 3)


def test_subclass_task_logs_on_self_logger(collect: Collect) -> None:
    class Add(Task):
        def run(self, x: int, y: int) -> int:
            self.logger.info("adding")
            return x + y

    with Flow("f") as flow:
        total = Add()(1, 2)

    state = flow.run()
    assert state.result[total].result == 3
    assert Add().name == "Add"
    assert Add().logger is get_logger("Add")
    (record,) = collect.named("structflow.Add")
    assert record.getMessage() == "adding"
    assert record.task_name == "Add"  # type: ignore[attr-defined]


def test_a_logger_assigned_to_self_logger_is_the_tasks(collect: Collect) -> None:
    # As Prefect 1 allowed: its Task.__init__ set self.logger as a plain attribute.
    app = logging.getLogger("structflow.app.custom")

    class Load(Task):
        def __init__(self) -> None:
            super().__init__()
            self.logger = app

        def run(self) -> None:
            self.logger.info("loading")

    with Flow("f") as flow:
        Load()()

    assert flow.run().is_successful()
    (record,) = collect.named("structflow.app.custom")
    assert record.getMessage() == "loading"
    assert record.task_name == "Load"  # type: ignore[attr-defined]


def test_prefect_1s_top_level_names_are_there_after_import_structflow() -> None:
    import structflow
    from structflow import unmapped
    from structflow.engine import unmapped as engine_unmapped

    assert unmapped is engine_unmapped
    assert structflow.utilities.logging.get_logger("x") is get_logger("x")


def test_prefect_1s_flow_and_mapped_keywords_wire_tasks_outside_a_with_block() -> None:
    @task
    def two() -> int:
        return 2

    @task
    def tenfold(x: int) -> int:
        return x * 10

    @task
    def plus_one(x: int) -> int:
        return x + 1

    flow = Flow("outside")
    got_two = two(flow=flow)
    got_twenty = tenfold(got_two, flow=flow)
    mapped = plus_one(x=[1, 2], mapped=True, flow=flow)
    after = plus_one.copy()
    after.set_upstream(got_twenty, flow=flow, key="x")
    bound = tenfold.copy().bind(x=[3, 4], mapped=True, flow=flow)

    state = flow.run()
    assert [state.result[t].result for t in (got_twenty, mapped, after, bound)] == [
        20,
        [2, 3],
        21,
        [30, 40],
    ]
    with pytest.raises(TypeError, match=r"call\(flow=3\) is not a Flow"):
        two(flow=3)  # type: ignore[arg-type]


def test_prefect_1s_call_keywords_are_reserved() -> None:
    with pytest.raises(TypeError, match="cannot have a parameter named 'flow'"):

        @task
        def takes_a_flow(flow: Any) -> None: ...

    with pytest.raises(TypeError, match="cannot have a parameter named 'mapped'"):

        @task
        def takes_mapped(mapped: Any) -> None: ...


def test_task_logger_outside_a_run_is_named_after_the_task() -> None:
    assert task_b.logger is get_logger("Task B")
    assert task_b.logger.name == "structflow.Task B"
