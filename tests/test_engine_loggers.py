"""flow.logger, FlowRunner.logger and TaskRunner.logger, as Prefect 1 had them."""

from __future__ import annotations

import logging
import uuid

import pytest

import structflow
from sample_flows import Collect, add, task_a
from structflow import Flow, get_logger, task
from structflow.engine import FlowRunner, Success, TaskCall, TaskRunner


def test_flow_logger_is_named_after_the_flow() -> None:
    flow = Flow("logging-example")

    assert flow.logger is get_logger("logging-example")
    assert flow.logger.name == "structflow.logging-example"


def test_flow_logger_is_the_context_logger_of_a_run_outside_tasks() -> None:
    seen: list[object] = []

    class Peek(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(structflow.context.get("logger"))

    FlowRunner.logger.addHandler(Peek())
    flow = Flow("f", tasks=[task_a])
    flow.run()

    assert seen and all(logger is flow.logger for logger in seen)


def test_runner_loggers_are_on_the_classes_and_their_instances() -> None:
    assert FlowRunner.logger is get_logger("FlowRunner")
    assert FlowRunner(Flow("f")).logger.name == "structflow.FlowRunner"
    assert TaskRunner.logger is get_logger("TaskRunner")
    assert TaskRunner(add).logger.name == "structflow.TaskRunner"


def test_engine_messages_go_to_the_runner_loggers() -> None:
    flow_messages, task_messages = Collect(), Collect()
    FlowRunner.logger.addHandler(flow_messages)
    TaskRunner.logger.addHandler(task_messages)
    with Flow("f") as flow:
        add(1, 2)

    flow.run()

    assert flow_messages.records[0].getMessage() == "Beginning Flow run for 'f'"
    assert task_messages.records[0].getMessage() == "Task 'add': Starting task run..."


def test_task_runner_runs_one_try_of_its_task() -> None:
    call = TaskCall(add, (1, 2), {}, structflow.context.snapshot(), str(uuid.uuid4()))

    state = TaskRunner(add).run(call)

    assert isinstance(state, Success) and state.result == 3


def test_task_runner_refuses_a_call_of_another_task() -> None:
    @task
    def other() -> None: ...

    call = TaskCall(other, (), {}, {}, str(uuid.uuid4()))
    with pytest.raises(ValueError, match="TaskRunner for 'add' cannot run a call of task 'other'"):
        TaskRunner(add).run(call)
    with pytest.raises(TypeError, match="TaskRunner needs a Task, got 'add'"):
        TaskRunner("add")  # type: ignore[arg-type]
