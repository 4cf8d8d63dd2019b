"""Running flows: results, parameters, failures, retries, mapping and the run context."""

from __future__ import annotations

import logging
import traceback
from datetime import timedelta
from typing import Any

import pytest

import structflow
from sample_flows import RUN_KEYS, Collect, add, boom, run_fields, task_a, task_b
from structflow import Flow, Parameter, get_logger, task
from structflow.engine import (
    Failed,
    FlowError,
    Mapped,
    Retrying,
    Success,
    TaskCall,
    TriggerFailed,
    run_task,
    unmapped,
)
from structflow.executors import LocalExecutor, ThreadExecutor
from structflow.utilities.debug import raise_on_exception


def test_seed_flow_succeeds_and_exposes_task_results(collect: Collect) -> None:
    with Flow("logging-example") as flow:
        result = task_b(task_a)

    state = flow.run()

    assert state.is_successful()
    assert not state.is_failed()
    assert isinstance(state, Success)
    assert state.result[result].result == 10
    assert state.result[task_a].result == 3
    assert isinstance(state.result[result], Success)
    assert set(state.result) == {task_a, result}


def test_constants_keywords_and_collections_of_tasks_are_resolved() -> None:
    @task
    def gather(items: list[Any], mapping: dict[str, Any], pair: tuple[Any, ...]) -> Any:
        return items, mapping, pair

    with Flow("f") as flow:
        three = add(1, 2)
        out = gather([three, 4], mapping={"a": three, "b": "text"}, pair=(task_a, None))

    state = flow.run()
    assert state.result[out].result == ([3, 4], {"a": 3, "b": "text"}, (3, None))


def test_an_empty_flow_succeeds() -> None:
    state = Flow("empty").run()
    assert state.is_successful() and state.result == {}


def test_parameters_take_run_values_and_defaults() -> None:
    seen: dict[str, Any] = {}

    @task
    def show(a: Any, b: Any) -> None:
        seen.update(a=a, b=b, parameters=dict(structflow.context["parameters"]))

    with Flow("f") as flow:
        show(Parameter("a"), Parameter("b", default=2))

    assert flow.run(parameters={"a": 1}).is_successful()
    assert seen == {"a": 1, "b": 2, "parameters": {"a": 1, "b": 2}}
    assert {p.name for p in flow.parameters()} == {"a", "b"}


def test_missing_required_parameter_is_a_clear_error() -> None:
    with Flow("needs-params") as flow:
        add(Parameter("x"), Parameter("y", default=1, required=True))

    with pytest.raises(FlowError) as info:
        flow.run(parameters={"x": 1})
    assert "'needs-params' is missing required parameter 'y'" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unknown_parameter_is_a_clear_error() -> None:
    with Flow("f") as flow:
        add(Parameter("x"), 1)

    with pytest.raises(FlowError, match=r"has no parameter 'z'; its parameters are: 'x'"):
        flow.run(parameters={"x": 1, "z": 2})


def test_flow_executor_and_parameters_arguments_are_checked() -> None:

    with Flow("f") as flow:
        add(1, 2)

    with pytest.raises(TypeError, match=r"use executor=ThreadExecutor\(\)"):
        flow.run(executor=ThreadExecutor)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"must be a structflow\.executors\.Executor"):
        flow.run(executor=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes a mapping"):
        flow.run(parameters=[("x", 1)])  # type: ignore[arg-type]


def test_parameters_may_be_given_by_name_as_in_prefect_1() -> None:
    with Flow("f") as flow:
        total = add(Parameter("x"), Parameter("y", default=1))

    assert flow.run(x=4).result[total].result == 5
    # By name wins over the same name in parameters=, as Prefect 1 had it.
    assert flow.run(parameters={"x": 1, "y": 1}, y=10).result[total].result == 11


def test_a_keyword_that_is_no_parameter_is_refused_before_the_run(collect: Collect) -> None:
    with Flow("f") as flow:
        add(Parameter("x"), 1)

    with pytest.raises(TypeError) as info:
        flow.run(xx=1)
    assert str(info.value) == (
        "Flow 'f': run() got 'xx', neither a parameter of the flow (its parameters: 'x') "
        "nor an option of run() (parameters, executor, context)"
    )
    with pytest.raises(TypeError, match=r"run\(\) got 'run_on_schedule': Prefect 1 option"):
        flow.run(x=1, run_on_schedule=False)
    assert collect.records == []


# --- failures and retries ------------------------------------------------------


def test_failing_task_never_crashes_the_run_and_fails_downstream(collect: Collect) -> None:
    with Flow("f") as flow:
        failing = boom()
        after = add(failing, 1)
        independent = add(1, 1)

    state = flow.run()

    assert state.is_failed() and isinstance(state, Failed)
    assert state.message == "Some reference tasks failed."
    failed = state.result[failing]
    assert isinstance(failed, Failed) and not isinstance(failed, TriggerFailed)
    assert isinstance(failed.exception, RuntimeError)
    assert failed.result is failed.exception
    assert failed.message == "Error during execution of task: RuntimeError('boom happened')"
    assert failed.traceback is not None
    assert failed.traceback.rstrip().endswith("RuntimeError: boom happened")
    assert 'raise RuntimeError("boom happened")' in failed.traceback
    downstream = state.result[after]
    assert isinstance(downstream, TriggerFailed) and downstream.is_failed()
    assert "'boom'" in (downstream.message or "")
    assert state.result[independent].result == 2

    (error,) = [r for r in collect.named("structflow.TaskRunner") if r.levelno == logging.ERROR]
    assert error.getMessage() == "Task 'boom': Exception encountered during task execution!"
    assert error.exc_info is not None and error.exc_info[1] is failed.exception
    assert error.task_name == "boom"  # type: ignore[attr-defined]
    assert collect.messages("structflow.FlowRunner")[-1] == (
        "Flow run FAILED: some reference tasks failed."
    )


def test_retries_count_runs_and_pass_through_retrying(collect: Collect) -> None:
    attempts: list[int] = []

    @task(name="flaky", max_retries=2, retry_delay=timedelta(0))
    def flaky() -> str:
        attempts.append(structflow.context["task_run_count"])
        structflow.context.get("logger").info("try")
        if len(attempts) < 3:
            raise ValueError(f"try {len(attempts)} failed")
        return "ok"

    with Flow("f") as flow:
        result = flaky()

    state = flow.run()

    assert state.result[result].result == "ok"
    assert attempts == [1, 2, 3]
    tries = collect.named("structflow.flaky")
    assert [r.task_run_count for r in tries] == [1, 2, 3]  # type: ignore[attr-defined]
    assert len({r.task_run_id for r in tries}) == 1  # type: ignore[attr-defined]
    finished = [
        (r.getMessage().rsplit(": ", 1)[1], r.task_run_count)  # type: ignore[attr-defined]
        for r in collect.named("structflow.TaskRunner")
        if "Finished task run" in r.getMessage()
    ]
    assert finished == [("'Retrying'", 1), ("'Retrying'", 2), ("'Success'", 3)]


def test_retries_exhausted_end_failed() -> None:
    runs: list[int] = []

    @task(max_retries=1)
    def always_fails() -> None:
        runs.append(structflow.context["task_run_count"])
        raise KeyError("nope")

    with Flow("f") as flow:
        failing = always_fails()

    state = flow.run()
    assert runs == [1, 2]
    assert isinstance(state.result[failing], Failed)
    assert isinstance(state.result[failing].exception, KeyError)


@pytest.mark.parametrize("executor_name", ["local", "thread"])
def test_a_retry_after_a_delay_runs_again(executor_name: str) -> None:

    runs: list[int] = []

    @task(max_retries=1, retry_delay=timedelta(milliseconds=20))
    def second_time_lucky() -> int:
        runs.append(structflow.context["task_run_count"])
        if len(runs) == 1:
            raise ConnectionError("try again")
        return len(runs)

    executor = LocalExecutor() if executor_name == "local" else ThreadExecutor(max_workers=2)
    with Flow("f", executor=executor) as flow:
        out = second_time_lucky()
        other = add(1, 2)

    state = flow.run()
    assert (state.result[out].result, state.result[other].result) == (2, 3)
    assert runs == [1, 2]


def test_run_task_returns_retrying_while_retries_are_left() -> None:
    @task(max_retries=1, retry_delay=30)
    def failing() -> None:
        raise OSError("disk")

    call = TaskCall(failing, (), {}, {"values": {}, "bound": {}}, "run-1")
    first = run_task(call)
    assert isinstance(first, Retrying) and first.is_pending() and not first.is_finished()
    assert first.run_count == 1
    assert isinstance(first.exception, OSError)
    assert first.start_time is not None
    last = run_task(TaskCall(failing, (), {}, {"values": {}, "bound": {}}, "run-1", run_count=2))
    assert isinstance(last, Failed)


# --- mapping ---------------------------------------------------------------------


def test_map_runs_one_child_per_item_with_its_own_logger(collect: Collect) -> None:
    seen: list[tuple[Any, ...]] = []

    @task(name="double")
    def double(x: int) -> int:
        logger = structflow.context.get("logger")
        seen.append((structflow.context["map_index"], logger.name))
        logger.info("doubling %s", x)
        return 2 * x

    with Flow("f") as flow:
        doubled = double.map([1, 2, 3])
        total = add(doubled, [100])

    state = flow.run()

    mapped = state.result[doubled]
    assert isinstance(mapped, Mapped) and mapped.is_mapped() and mapped.is_successful()
    assert mapped.result == [2, 4, 6]
    assert [s.result for s in mapped.map_states] == [2, 4, 6]
    assert state.result[total].result == [2, 4, 6, 100]
    assert seen == [
        (0, "structflow.double[0]"),
        (1, "structflow.double[1]"),
        (2, "structflow.double[2]"),
    ]
    records = [r for r in collect.records if r.name.startswith("structflow.double[")]
    assert [(r.name, r.getMessage(), r.map_index) for r in records] == [  # type: ignore[attr-defined]
        ("structflow.double[0]", "doubling 1", 0),
        ("structflow.double[1]", "doubling 2", 1),
        ("structflow.double[2]", "doubling 3", 2),
    ]
    assert {r.task_name for r in records} == {"double"}  # type: ignore[attr-defined]
    assert len({r.task_run_id for r in records}) == 3  # type: ignore[attr-defined]
    assert "Task 'double[1]': Starting task run..." in collect.messages("structflow.TaskRunner")


def test_map_over_an_upstream_result_happens_at_run_time() -> None:
    @task
    def numbers(n: int) -> list[int]:
        return list(range(n))

    with Flow("f") as flow:
        n = Parameter("n")
        squares = add.map(numbers(n), numbers(n))

    assert flow.run(parameters={"n": 4}).result[squares].result == [0, 2, 4, 6]
    assert flow.run(parameters={"n": 0}).result[squares].result == []


def test_map_with_unmapped_arguments_and_over_a_mapped_task() -> None:
    with Flow("f") as flow:
        plus_ten = add.map([1, 2, 3], unmapped(10))
        plus_task = add.map(plus_ten, y=unmapped(task_a))

    state = flow.run()
    assert state.result[plus_ten].result == [11, 12, 13]
    assert state.result[plus_task].result == [14, 15, 16]
    assert {e.mapped for e in flow.edges if e.downstream_task is plus_task} == {True, False}


def test_map_over_a_one_shot_iterator_keeps_its_items_for_every_run() -> None:
    with Flow("f") as flow:
        out = add.map(iter([1, 2]), unmapped(1))

    assert flow.run().result[out].result == [2, 3]
    assert flow.run().result[out].result == [2, 3]


def test_map_with_different_lengths_fails_the_task_clearly(collect: Collect) -> None:
    with Flow("f") as flow:
        out = add.map([1, 2, 3], [1, 2])
        after = add(out, 1)

    state = flow.run()
    failed = state.result[out]
    assert isinstance(failed, Failed)
    assert failed.message == (
        "mapped arguments must have the same length: argument 'x' has 3, argument 'y' has 2"
    )
    assert isinstance(state.result[after], TriggerFailed)


class Exploding:
    def __iter__(self) -> Any:
        raise ValueError("source went away")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", "cannot map over argument 'x': it is a str"),
        ({"a": 1}, "it is a dict"),
        (5, "int is not iterable"),
        (Exploding(), "iterating over it raised ValueError('source went away')"),
    ],
)
def test_map_over_a_non_list_fails_the_task_clearly(value: Any, expected: str) -> None:
    with Flow("f") as flow:
        out = add.map(value, unmapped(1))

    state = flow.run()
    assert isinstance(state.result[out], Failed)
    assert expected in (state.result[out].message or "")


def test_a_failed_child_fails_the_mapped_task() -> None:
    @task
    def invert(x: int) -> float:
        return 1 / x

    with Flow("f") as flow:
        out = invert.map([1, 0, 2])
        after = add(out, 1)

    state = flow.run()
    failed = state.result[out]
    assert isinstance(failed, Failed)
    assert failed.message == "1 of 3 mapped task runs failed (map_index 1)"
    assert [type(s) for s in failed.map_states] == [Success, Failed, Success]
    child = failed.map_states[1]
    assert isinstance(child, Failed) and isinstance(child.exception, ZeroDivisionError)
    assert isinstance(state.result[after], TriggerFailed)


# --- run context and records ---------------------------------------------------------


def test_records_from_every_kind_of_logger_carry_the_run_context(collect: Collect) -> None:
    other = Collect()
    logging.getLogger("x").addHandler(other)
    try:

        @task(name="Task B")
        def busy(x: int) -> int:
            structflow.context.get("logger").info("from the task logger")
            get_logger("Task B").bind(run_id="r1").info("from a bound logger")
            logging.getLogger("x").warning("from a foreign logger")
            return x

        with Flow("ctx-flow") as flow:
            busy(1)

        state = flow.run()
    finally:
        logging.getLogger("x").removeHandler(other)

    assert state.is_successful()
    task_records = collect.named("structflow.Task B")
    assert [r.getMessage() for r in task_records] == ["from the task logger", "from a bound logger"]
    (foreign,) = other.records
    assert foreign.getMessage() == "from a foreign logger"
    records = [*task_records, foreign]
    fields = [run_fields(r) for r in records]
    assert fields[0] == fields[1] == fields[2]
    assert fields[0]["flow_name"] == "ctx-flow"
    assert fields[0]["task_name"] == "Task B"
    assert fields[0]["map_index"] is None
    assert fields[0]["task_run_count"] == 1
    assert isinstance(fields[0]["flow_run_id"], str) and len(fields[0]["flow_run_id"]) == 36
    assert isinstance(fields[0]["task_run_id"], str) and len(fields[0]["task_run_id"]) == 36
    assert task_records[1].run_id == "r1"  # type: ignore[attr-defined]
    assert "run_id" in task_records[1].structflow_fields  # type: ignore[attr-defined]
    assert set(RUN_KEYS) <= set(foreign.structflow_fields)  # type: ignore[attr-defined]


def test_context_during_a_task_run_holds_the_documented_keys() -> None:
    seen: dict[str, Any] = {}

    @task(name="Task B")
    def look() -> None:
        ctx = structflow.context
        seen.update({k: ctx.get(k) for k in (*RUN_KEYS, "parameters")})
        seen["logger"] = ctx.logger

    with Flow("f") as flow:
        look(upstream_tasks=[Parameter("p", default="v")])

    flow.run()
    assert seen["logger"] is get_logger("Task B")
    assert (seen["flow_name"], seen["task_name"], seen["map_index"], seen["task_run_count"]) == (
        "f",
        "Task B",
        None,
        1,
    )
    assert seen["parameters"] == {"p": "v"}
    assert structflow.context.get("flow_run_id") is None  # nothing leaks out of the run


def test_flow_run_context_outside_tasks_has_the_flow_logger() -> None:

    seen: list[dict[str, Any]] = []

    class Watching(LocalExecutor):
        def submit(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
            ctx = structflow.context
            seen.append({k: ctx.get(k) for k in ("flow_name", "task_name", "parameters")})
            seen[-1]["logger"] = ctx.logger.name
            return super().submit(fn, *args, **kwargs)

    with Flow("watched") as flow:
        add(Parameter("p"), 1)

    assert flow.run(parameters={"p": 1}, executor=Watching()).is_successful()
    assert seen[0] == {
        "flow_name": "watched",
        "task_name": None,
        "parameters": {"p": 1},
        "logger": "structflow.watched",
    }


def test_each_run_has_its_own_ids_and_tasks_share_the_flow_run_id(collect: Collect) -> None:
    with Flow("f") as flow:
        task_b(task_a)

    flow.run()
    flow.run()
    starts = [r for r in collect.named("structflow.TaskRunner") if "Starting" in r.getMessage()]
    flow_ids = [r.flow_run_id for r in starts]  # type: ignore[attr-defined]
    task_ids = [r.task_run_id for r in starts]  # type: ignore[attr-defined]
    assert flow_ids[0] == flow_ids[1] != flow_ids[2] == flow_ids[3]
    assert len(set(task_ids)) == 4


def test_flow_level_records_carry_flow_context_but_no_task(collect: Collect) -> None:
    with Flow("outer") as flow:
        add(1, 2)

    flow.run()
    (begin, end) = collect.named("structflow.FlowRunner")
    assert begin.getMessage() == "Beginning Flow run for 'outer'"
    assert end.getMessage() == "Flow run SUCCESS: all reference tasks succeeded"
    assert begin.flow_name == "outer"  # type: ignore[attr-defined]
    assert begin.flow_run_id == end.flow_run_id  # type: ignore[attr-defined]
    assert "task_name" not in begin.structflow_fields  # type: ignore[attr-defined]


def test_lifecycle_messages_go_only_to_the_runner_loggers(collect: Collect) -> None:
    with Flow("logging-example") as flow:
        task_b(task_a)

    flow.run()

    assert collect.messages("structflow.FlowRunner") == [
        "Beginning Flow run for 'logging-example'",
        "Flow run SUCCESS: all reference tasks succeeded",
    ]
    assert collect.messages("structflow.TaskRunner") == [
        "Task 'Task A': Starting task run...",
        "Task 'Task A': Finished task run for task with final state: 'Success'",
        "Task 'Task B': Starting task run...",
        "Task 'Task B': Finished task run for task with final state: 'Success'",
    ]
    assert collect.messages("structflow.Task B") == [
        "Beginning to run Task B with input 3",
        "Returning the value 10",
    ]
    assert collect.messages("structflow.Task A") == []
    assert {r.name for r in collect.records} == {
        "structflow.FlowRunner",
        "structflow.TaskRunner",
        "structflow.Task B",
    }


def test_a_plain_handler_on_a_task_logger_sees_plain_text() -> None:
    structflow.configure(stream="none", level="DEBUG")
    handler = Collect()
    get_logger("Task B").addHandler(handler)

    with Flow("logging-example") as flow:
        task_b(task_a)
    flow.run()

    assert [(r.msg, r.args, r.getMessage()) for r in handler.records] == [
        ("Beginning to run Task B with input 3", (), "Beginning to run Task B with input 3"),
        ("Returning the value 10", (), "Returning the value 10"),
    ]
    assert all(isinstance(r.msg, str) for r in handler.records)


# --- raise_on_exception ------------------------------------------------------------


@pytest.mark.parametrize("executor", [LocalExecutor(), ThreadExecutor(max_workers=2)])
def test_raise_on_exception_raises_the_first_failure_out_of_run(
    collect: Collect, executor: Any
) -> None:
    tries: list[int] = []

    @task(max_retries=3, retry_delay=timedelta(0))
    def fails(x: int) -> int:
        tries.append(x)
        raise KeyError(f"no row {x}")

    with Flow("debugging") as flow:
        after = add(fails(1), 1)

    with raise_on_exception(), pytest.raises(KeyError, match="no row 1") as info:
        flow.run(executor=executor)

    assert tries == [1]  # no retry: the first failure is final
    assert "raise KeyError" in "".join(traceback.format_tb(info.value.__traceback__))
    finished = [r for r in collect.records if getattr(r, "lifecycle", "").endswith("finished")]
    assert [(r.name, r.msg, getattr(r, "state", None)) for r in finished] == [
        (
            "structflow.TaskRunner",
            "Task 'fails': Finished task run for task with final state: 'Failed'",
            "Failed",
        ),
        (
            "structflow.FlowRunner",
            "Flow run FAILED: task 'fails' raised KeyError('no row 1') (raise_on_exception)",
            "Failed",
        ),
    ]
    assert not [r for r in collect.records if getattr(r, "task_name", None) == after.name]
    # Outside the block a failure is a Failed state again.
    assert flow.run(executor=executor).is_failed()
    assert len(tries) == 1 + 4


def test_raise_on_exception_raises_a_mapped_childs_failure() -> None:
    @task
    def invert(x: int) -> float:
        return 1 / x

    with Flow("mapped") as flow:
        invert.map([1, 0, 2])

    with raise_on_exception(), pytest.raises(ZeroDivisionError):
        flow.run()
    assert structflow.utilities.debug.raise_on_exception is raise_on_exception
