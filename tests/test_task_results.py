"""Prefect 1's ways into a task's result in a flow: ``a, b = task()`` (nout) and ``task()[key]``."""

from __future__ import annotations

import pytest

from sample_flows import boom
from structflow import Flow, flatten, task
from structflow.engine import FlowError, TriggerFailed
from structflow.utilities import edges


@task(nout=2)
def split() -> object:
    return 1, "one"


@task
def annotated() -> tuple[int, str]:
    return 2, "two"


@task
def load() -> dict[str, int]:
    return {"rows": 7}


@task
def gather(*values: object) -> tuple[object, ...]:
    return values


def test_tuple_results_unpack_and_results_index() -> None:
    with Flow("f") as flow:
        number, word = split()
        n2, w2 = annotated()  # nout from the return annotation
        rows = load()["rows"]
        out = gather(number, word, n2, w2, rows)

    state = flow.run()

    assert state.result[out].result == (1, "one", 2, "two", 7)
    names = {t.name for t in flow.tasks}
    assert {"split[0]", "split[1]", "annotated[0]", "load['rows']"} <= names
    assert flow.upstream_tasks(rows) == {t for t in flow.tasks if t.name == "load"}


def test_an_item_of_a_failed_task_is_trigger_failed() -> None:
    with Flow("f") as flow:
        item = boom()["x"]

    assert type(flow.run().result[item]) is TriggerFailed


def test_what_cannot_be_unpacked_or_indexed_says_why() -> None:
    with Flow("f"), pytest.raises(TypeError, match=r"Task .load. is not iterable: .* nout=2"):
        _a, _b = load()
    with pytest.raises(FlowError):
        load["rows"]
    with pytest.raises(TypeError, match="nout must be an int >= 1 or None"):
        task(nout=0)


def test_flatten_maps_over_a_list_of_lists_as_one_list() -> None:
    @task
    def pages() -> list[list[int]]:
        return [[1, 2], [3]]

    @task
    def chunk(n: int) -> list[int]:
        return list(range(n))

    @task
    def double(x: int) -> int:
        return 2 * x

    with Flow("f") as flow:
        rows = double.map(flatten(pages()))
        chunks = double.map(flatten(chunk.map([1, 2])))  # a mapped task's results
        bad = double.map(flatten([1, 2]))

    state = flow.run()
    assert state.result[rows].result == [2, 4, 6]
    assert state.result[chunks].result == [0, 0, 2]
    assert state.result[bad].message == "cannot flatten [1, 2]: flatten takes a list of lists"
    assert flatten is edges.flatten
