"""The workflow runtime: tasks, flows, states, retries, mapping and the run context."""

from __future__ import annotations

import logging
import pickle
import threading
from datetime import timedelta
from typing import Any

import pytest

import structflow
from structflow import Flow, Parameter, Task, get_logger, task
from structflow.engine import (
    Failed,
    FlowError,
    Mapped,
    RemoteTaskError,
    Retrying,
    Success,
    TaskCall,
    TriggerFailed,
    run_task,
    unmapped,
)

RUN_KEYS = ("flow_name", "flow_run_id", "task_name", "task_run_id", "map_index", "task_run_count")


class Collect(logging.Handler):
    """A plain stdlib handler, as a user would write one."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self._lock2 = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock2:
            self.records.append(record)

    def named(self, name: str) -> list[logging.LogRecord]:
        return [r for r in self.records if r.name == name]

    def messages(self, name: str) -> list[str]:
        return [r.getMessage() for r in self.named(name)]


@pytest.fixture
def collect() -> Collect:
    structflow.configure(stream="none", level="DEBUG")
    handler = Collect()
    get_logger().addHandler(handler)
    return handler


def run_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: getattr(record, k, "<missing>") for k in RUN_KEYS}


@task(name="Task A")
def task_a() -> int:
    return 3


@task(name="Task B")
def task_b(x: int) -> int:
    logger = structflow.context.get("logger")
    logger.debug(f"Beginning to run Task B with input {x}")
    y = 3 * x + 1
    logger.debug(f"Returning the value {y}")
    return y


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def boom(x: Any = None) -> None:
    raise RuntimeError("boom happened")


# --- building and running flows ------------------------------------------------


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


def test_calling_a_task_in_a_flow_adds_a_copy_with_edges() -> None:
    with Flow("f") as flow:
        first = add(1, 2)
        second = add(first, y=task_a)

    assert first is not add and second is not first
    assert flow.tasks == {first, second, task_a}
    assert {(e.upstream_task, e.downstream_task, e.key) for e in flow.edges} == {
        (first, second, "x"),
        (task_a, second, "y"),
    }
    assert flow.upstream_tasks(second) == {first, task_a}
    assert flow.root_tasks() == {first, task_a}
    assert flow.terminal_tasks() == {second}
    state = flow.run()
    assert (state.result[first].result, state.result[second].result) == (3, 6)


def test_constants_keywords_and_collections_of_tasks_are_resolved() -> None:
    @task
    def gather(items: list[Any], mapping: dict[str, Any], pair: tuple[Any, ...]) -> Any:
        return items, mapping, pair

    with Flow("f") as flow:
        three = add(1, 2)
        out = gather([three, 4], mapping={"a": three, "b": "text"}, pair=(task_a, None))

    state = flow.run()
    assert state.result[out].result == ([3, 4], {"a": 3, "b": "text"}, (3, None))


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


def test_task_run_can_be_called_directly_outside_a_flow() -> None:
    assert add.run(1, y=2) == 3
    assert task_a.run() == 3


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


def test_task_args_renames_the_copy(collect: Collect) -> None:
    with Flow("f") as flow:
        renamed = add(1, 2, task_args={"name": "first add"})

    flow.run()
    assert renamed.name == "first add" and add.name == "add"
    assert "Task 'first add': Starting task run..." in collect.messages("structflow.TaskRunner")


def test_set_dependencies_wires_a_flow_without_a_with_block() -> None:
    order: list[str] = []

    @task
    def mark(label: str) -> str:
        order.append(label)
        return label

    flow = Flow("f")
    first = mark.copy(name="first")
    second = mark.copy(name="second")
    flow.set_dependencies(second, upstream_tasks=[first], keyword_tasks={"label": "two"})
    flow.set_dependencies(first, keyword_tasks={"label": "one"})

    state = flow.run()
    assert state.is_successful()
    assert order == ["one", "two"]


def test_upstream_tasks_orders_without_passing_data() -> None:
    order: list[str] = []

    @task
    def mark(label: str) -> None:
        order.append(label)

    with Flow("f") as flow:
        later = mark("later", upstream_tasks=[mark("sooner")])

    state = flow.run()
    assert state.result[later].is_successful()
    assert order == ["sooner", "later"]


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


def test_parameters_must_be_unique_and_cannot_be_copied() -> None:
    with Flow("f") as flow:
        add(Parameter("x"), 1)
        with pytest.raises(FlowError, match="already has a Parameter named 'x'"):
            add(Parameter("x"), 2)
        with pytest.raises(FlowError, match="already has a Parameter named 'z'"):
            add(Parameter("z"), Parameter("z"))
        with pytest.raises(TypeError, match="Parameter 'y' cannot be copied or called"):
            Parameter("y")()
    assert [p.name for p in flow.parameters()] == ["x"]
    assert len(flow.tasks) == 2  # the failed calls left nothing behind


def test_flow_executor_and_parameters_arguments_are_checked() -> None:
    from structflow.executors import ThreadExecutor

    with Flow("f") as flow:
        add(1, 2)

    with pytest.raises(TypeError, match=r"use executor=ThreadExecutor\(\)"):
        flow.run(executor=ThreadExecutor)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"must be a structflow\.executors\.Executor"):
        flow.run(executor=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes a mapping"):
        flow.run(parameters=[("x", 1)])  # type: ignore[arg-type]


def test_an_empty_flow_succeeds() -> None:
    state = Flow("empty").run()
    assert state.is_successful() and state.result == {}


# --- wiring errors ---------------------------------------------------------------


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


def test_a_cycle_is_a_clear_error_naming_the_tasks() -> None:
    with Flow("cyclic") as flow:
        a = add.copy(name="a")
        b = add.copy(name="b")
        c = add.copy(name="c")
        flow.add_edge(a, b)
        flow.add_edge(b, c)
        edges_before = flow.edges
        with pytest.raises(FlowError) as info:
            flow.set_dependencies(a, upstream_tasks=[c])
    assert "cycle 'a' -> 'b' -> 'c' -> 'a'" in str(info.value)
    assert "Flow 'cyclic'" in str(info.value)
    assert flow.edges == edges_before
    with pytest.raises(FlowError, match="'a' cannot depend on itself"):
        flow.add_edge(a, a)


def test_a_cycle_through_new_downstream_tasks_is_found() -> None:
    flow = Flow("f")
    a, b = add.copy(name="a"), add.copy(name="b")
    flow.add_edge(a, b)
    with pytest.raises(FlowError, match="cycle 'b' -> 'a' -> 'b'"):
        flow.set_dependencies(b, downstream_tasks=[a])
    assert flow.downstream_tasks(b) == set()


def test_bind_set_upstream_and_set_downstream_wire_the_task_itself() -> None:
    order: list[str] = []

    @task
    def mark(label: str) -> str:
        order.append(label)
        return label

    first, middle, last = mark.copy(), mark.copy(), mark.copy()
    with Flow("f") as flow:
        assert first.bind("first") is first
        middle.bind(label="middle")
        last.bind("last")
        middle.set_upstream(first)
        middle.set_downstream(last)

    assert flow.run().is_successful()
    assert order == ["first", "middle", "last"]
    assert flow.sorted_tasks() == [first, middle, last]


def test_keyword_inputs_merge_but_are_bound_once() -> None:
    flow = Flow("f")
    total = add.copy()
    flow.set_dependencies(total, keyword_tasks={"x": task_a})
    flow.set_dependencies(total, keyword_tasks={"y": 1})
    assert flow.run().result[total].result == 4
    with pytest.raises(FlowError, match="already has inputs for 'y'"):
        flow.set_dependencies(total, keyword_tasks={"y": 2})
    with pytest.raises(TypeError, match="got an unexpected keyword argument 'z'"):
        flow.set_dependencies(add.copy(), keyword_tasks={"z": 1})
    mapped = add.copy()
    flow.set_dependencies(mapped, keyword_tasks={"x": [1, 2]}, mapped=True)
    with pytest.raises(FlowError, match="cannot mix mapped and unmapped wiring"):
        flow.set_dependencies(mapped, keyword_tasks={"y": 1})
    flow.set_dependencies(mapped, keyword_tasks={"y": unmapped(1)}, mapped=True)
    assert flow.run().result[mapped].result == [2, 3]
    with Flow("g"):
        bound_task = add.copy()
        bound_task.bind(1, 2)
        with pytest.raises(FlowError, match="already has positional inputs"):
            bound_task.bind(3, 4)


def test_copy_accepts_only_task_options() -> None:
    assert add.copy(max_retries=2, retry_delay=3).retry_delay == timedelta(seconds=3)
    with pytest.raises(TypeError, match="cannot override 'color' in a copy"):
        add.copy(color="red")


def test_a_reserved_argument_name_in_run_is_rejected() -> None:
    with pytest.raises(TypeError, match="cannot have a parameter named 'upstream_tasks'"):

        @task
        def bad(upstream_tasks: Any) -> None: ...


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


def test_reference_tasks_decide_the_flow_state() -> None:
    with Flow("f") as flow:
        boom()
        fine = add(1, 1)
    flow.set_reference_tasks([fine])
    assert flow.run().is_successful()
    with pytest.raises(FlowError, match="not in it: 'add'"):
        flow.set_reference_tasks([add])


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
    from structflow.executors import LocalExecutor, ThreadExecutor

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


def test_failed_state_with_an_unpicklable_exception_still_pickles() -> None:
    class Holder(Exception):
        def __init__(self) -> None:
            super().__init__("holds a lock")
            self.lock = threading.Lock()

    exc = Holder()
    state = Failed("it broke", exception=exc, traceback="Traceback ...")
    copy = pickle.loads(pickle.dumps(state))
    assert isinstance(copy.exception, RemoteTaskError)
    assert str(copy.exception).endswith("Holder: holds a lock")
    assert copy.result is copy.exception
    assert (copy.message, copy.traceback) == ("it broke", "Traceback ...")


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


def test_map_needs_something_to_map_over() -> None:
    with Flow("f"), pytest.raises(FlowError, match="needs at least one argument to map over"):
        add.map(unmapped(1), unmapped(2))


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
    from structflow.executors import LocalExecutor

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


def test_task_logger_outside_a_run_is_named_after_the_task() -> None:
    assert task_b.logger is get_logger("Task B")
    assert task_b.logger.name == "structflow.Task B"
