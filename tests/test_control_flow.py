"""Prefect 1's ``case`` and ``merge``: branches that run on a task's result."""

from __future__ import annotations

from typing import Any

import pytest

from sample_flows import Collect
from structflow import Flow, Parameter, case, merge, task
from structflow.engine import FlowError, Skipped, Success
from structflow.tasks.control_flow import ifelse, switch


@task
def is_weekend(day: str) -> bool:
    return day in ("sat", "sun")


@task
def rest() -> str:
    return "rest"


@task
def work() -> str:
    return "work"


@task
def shout(x: str) -> str:
    return x.upper()


def week() -> tuple[Flow, Any, dict[str, Any]]:
    with Flow("week") as flow:
        weekend = is_weekend(Parameter("day"))
        with case(weekend, True):
            resting = shout(rest())
        with case(weekend, False):
            working = work()
        out = merge(resting, working)
    return flow, out, {"rest": resting, "work": working}


@pytest.mark.parametrize(
    ("day", "ran", "skipped"), [("sat", "REST", "work"), ("mon", "work", "SHOUT")]
)
def test_only_the_branch_whose_value_matches_runs(
    collect: Collect, day: str, ran: str, skipped: str
) -> None:
    flow, out, _ = week()

    state = flow.run(day=day)

    assert state.is_successful()
    assert state.result[out].result == ran
    states = {t.name: type(s) for t, s in state.result.items()}
    assert states["case(True)"] is (Success if day == "sat" else Skipped)
    assert states["case(False)"] is (Skipped if day == "sat" else Success)
    assert states["shout" if day == "mon" else "work"] is Skipped
    other = "True" if day == "mon" else "False"
    value = "False" if day == "mon" else "True"
    assert f'SKIP signal raised: SKIP(\'Provided value "{value}" did not match "{other}"\')' in [
        r.getMessage() for r in collect.named("structflow.TaskRunner")
    ]


def test_only_the_first_tasks_of_a_branch_wait_for_its_condition() -> None:
    flow, _, _ = week()
    by_name = {t.name: t for t in flow.tasks}
    assert flow.upstream_tasks(by_name["case(True)"]) == {by_name["is_weekend"]}
    assert flow.upstream_tasks(by_name["rest"]) == {by_name["case(True)"]}
    assert flow.upstream_tasks(by_name["shout"]) == {by_name["rest"]}  # follows rest only


def test_nested_cases_skip_the_inner_branch_with_the_outer() -> None:
    @task
    def level(n: int) -> int:
        return n

    with Flow("nested") as flow:
        go = Parameter("go")
        with case(go, True):
            n = level(2)
            with case(n, 2):
                inner = work()

    assert type(flow.run(go=True).result[inner]) is Success
    assert type(flow.run(go=False).result[inner]) is Skipped


def test_case_is_checked() -> None:
    with pytest.raises(TypeError, match="case\\(\\) needs a task whose result decides"):
        case("weekend", True)  # type: ignore[arg-type]
    with (
        pytest.raises(FlowError, match="case\\(\\) is used inside a `with Flow"),
        case(is_weekend, True),
    ):
        pass


def test_switch_and_ifelse_run_one_branch_and_skip_the_rest() -> None:
    @task
    def kind(name: str) -> str:
        return name.rsplit(".", 1)[-1]

    @task
    def read_csv() -> str:
        return "csv rows"

    @task
    def read_json() -> str:
        return "json rows"

    @task
    def count(n: int) -> int:
        return n

    @task
    def many() -> str:
        return "many"

    @task
    def few() -> str:
        return "few"

    with Flow("switching") as flow:
        file_kind = kind(Parameter("name"))
        switch(file_kind, {"csv": read_csv, "json": read_json})
        ifelse(count(Parameter("n")), many, few)
        rows = merge(read_csv, read_json)
        size = merge(many, few)

    state = flow.run(name="orders.json", n=0)
    assert (state.result[rows].result, state.result[size].result) == ("json rows", "few")
    assert type(state.result[read_csv]) is Skipped and type(state.result[many]) is Skipped
    state = flow.run(name="orders.csv", n=5)
    assert (state.result[rows].result, state.result[size].result) == ("csv rows", "many")
    with pytest.raises(FlowError, match="switch\\(\\) is used inside a `with Flow"):
        switch(file_kind, {})
