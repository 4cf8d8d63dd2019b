"""Flows: building the graph, wiring inputs, parameters, cycles and reference tasks."""

from __future__ import annotations

import pytest

from sample_flows import add, boom, task_a
from structflow import Flow, Parameter, Task, task
from structflow.engine import Edge, FlowError, current_flow, unmapped


def recorder() -> tuple[Task, list[str]]:
    """Return a task that records the label of each of its runs, and the list of labels."""
    order: list[str] = []

    @task
    def mark(label: str) -> str:
        order.append(label)
        return label

    return mark, order


def test_current_flow_is_the_innermost_active_flow() -> None:
    outer, inner = Flow("outer"), Flow("inner")
    seen = [current_flow()]
    with outer:
        seen.append(current_flow())
        with inner:
            seen.append(current_flow())
        seen.append(current_flow())
    seen.append(current_flow())
    assert seen == [None, outer, inner, outer, None]


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


def test_set_dependencies_wires_a_flow_without_a_with_block() -> None:
    mark, order = recorder()

    flow = Flow("f")
    first = mark.copy(name="first")
    second = mark.copy(name="second")
    flow.set_dependencies(second, upstream_tasks=[first], keyword_tasks={"label": "two"})
    flow.set_dependencies(first, keyword_tasks={"label": "one"})

    state = flow.run()
    assert state.is_successful()
    assert order == ["one", "two"]


def test_upstream_tasks_orders_without_passing_data() -> None:
    mark, order = recorder()

    with Flow("f") as flow:
        later = mark("later", upstream_tasks=[mark("sooner")])

    state = flow.run()
    assert state.result[later].is_successful()
    assert order == ["sooner", "later"]


def test_bind_set_upstream_and_set_downstream_wire_the_task_itself() -> None:
    mark, order = recorder()

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


def test_map_needs_something_to_map_over() -> None:
    with Flow("f"), pytest.raises(FlowError, match="needs at least one argument to map over"):
        add.map(unmapped(1), unmapped(2))


def test_reference_tasks_decide_the_flow_state() -> None:
    with Flow("f") as flow:
        boom()
        fine = add(1, 1)
    flow.set_reference_tasks([fine])
    assert flow.run().is_successful()
    with pytest.raises(FlowError, match="not in it: 'add'"):
        flow.set_reference_tasks([add])


# --- Flow(name, tasks=[...]) and add_edge, as Prefect 1 built flows --------------------


@task
def double(x: int) -> int:
    return 2 * x


@task
def total(values: list[int], offset: int = 0) -> int:
    return sum(values) + offset


@task
def shift(x: int, offset: int) -> int:
    return x + offset


def test_tasks_argument_adds_the_tasks_themselves_and_add_edge_passes_results() -> None:
    flow = Flow("no-with-block", tasks=[task_a, double])
    edge = flow.add_edge(task_a, double, key="x")

    state = flow.run()

    assert flow.tasks == {task_a, double}
    assert edge == Edge(task_a, double, "x", False)
    assert flow.edges == {edge}
    assert state.result[double].result == 6


def test_add_edge_without_a_key_only_orders_the_tasks() -> None:
    mark, order = recorder()
    first, second = mark.copy(name="first"), mark.copy(name="second")
    flow = Flow("f", tasks=[second, first])
    flow.set_dependencies(first, keyword_tasks={"label": "first"})
    flow.set_dependencies(second, keyword_tasks={"label": "second"})

    flow.add_edge(first, second)

    assert flow.run().is_successful()
    assert order == ["first", "second"]


def test_edges_and_reference_tasks_arguments_build_the_whole_flow() -> None:
    flow = Flow(
        "f",
        tasks=[task_a, double, boom],
        edges=[Edge(task_a, double, key="x")],
        reference_tasks=[double],
    )

    state = flow.run()

    assert state.is_successful()
    assert state.result[double].result == 6
    assert state.result[boom].is_failed()


def test_add_edge_with_mapped_maps_the_downstream_task() -> None:
    numbers = task(name="numbers")(lambda: [1, 2, 3])
    flow = Flow("f", tasks=[numbers, double, total])
    flow.add_edge(numbers, double, key="x", mapped=True)
    flow.add_edge(double, total, key="values")

    state = flow.run()

    assert state.result[double].result == [2, 4, 6]
    assert state.result[total].result == 12


def test_an_edge_into_a_mapped_task_without_mapped_gives_every_child_the_whole_value() -> None:
    numbers = task(name="numbers")(lambda: [1, 2])
    offset = task(name="offset")(lambda: 10)
    flow = Flow("f")
    flow.add_edge(numbers, shift, key="x", mapped=True)
    unmapped_edge = flow.add_edge(offset, shift, key="offset")

    state = flow.run()

    assert unmapped_edge.mapped is False
    assert state.result[shift].result == [11, 12]


def test_a_mapped_edge_after_plain_inputs_keeps_those_inputs_whole() -> None:
    offset = task(name="offset")(lambda: 10)
    numbers = task(name="numbers")(lambda: [[1], [2, 3]])
    flow = Flow("f")
    flow.add_edge(offset, total, key="offset")
    flow.add_edge(numbers, total, key="values", mapped=True)

    assert flow.run().result[total].result == [11, 15]


def test_add_edge_errors_name_the_problem_and_change_nothing() -> None:
    flow = Flow("f", tasks=[task_a, double])
    flow.add_edge(task_a, double, key="x")
    before = (flow.tasks, flow.edges)

    with pytest.raises(
        TypeError, match=r"Task 'double': the arguments do not fit run\(x.*keyword argument 'y'"
    ):
        flow.add_edge(task_a, double, key="y")
    with pytest.raises(FlowError, match="task 'double' already has inputs for 'x'"):
        flow.add_edge(add, double, key="x")
    with pytest.raises(FlowError, match="would make a cycle 'Task A' -> 'double' -> 'Task A'"):
        flow.add_edge(double, task_a)
    with pytest.raises(TypeError, match="must be the name of an argument of its run"):
        flow.add_edge(task_a, double, key=3)  # type: ignore[arg-type]
    assert (flow.tasks, flow.edges) == before


def test_bad_tasks_edges_and_reference_tasks_arguments_are_clear_errors() -> None:
    with pytest.raises(TypeError, match="Flow 'f': tasks= takes a list of Task objects"):
        Flow("f", tasks=task_a)
    with pytest.raises(TypeError, match="Flow 'f': tasks= takes Task objects, got 'add'"):
        Flow("f", tasks=["add"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="Flow 'f': edges= takes Edge objects"):
        Flow("f", edges=[(task_a, double)])  # type: ignore[list-item]
    with pytest.raises(FlowError, match="reference tasks must be in the flow; not in it: 'add'"):
        Flow("f", tasks=[task_a], reference_tasks=[add])
