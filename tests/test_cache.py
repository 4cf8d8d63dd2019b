"""Prefect 1's result caching: cache_for, cache validators and cache_key, in one process."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sample_flows import Collect
from structflow import Flow, Parameter, task
from structflow.engine import Cached, State
from structflow.engine.cache_validators import (
    all_inputs,
    all_parameters,
    duration_only,
    never_use,
    partial_inputs_only,
    partial_parameters_only,
)


def test_a_kept_result_stands_in_for_later_runs(collect: Collect) -> None:
    ran: list[int] = []

    @task(name="cache-expensive", cache_for=timedelta(minutes=5))
    def expensive() -> int:
        ran.append(1)
        return 42

    with Flow("f") as flow:
        result = expensive()

    first, second = flow.run(), flow.run()

    assert ran == [1]
    assert type(first.result[result]) is Cached and type(second.result[result]) is Cached
    assert second.result[result].result == 42
    ends = [r for r in collect.records if getattr(r, "lifecycle", None) == "task_run_finished"]
    assert [r.__dict__["state"] for r in ends] == ["Cached", "Cached"]
    assert not [r for r in collect.records if r.levelno >= logging.WARNING]


def test_a_validator_decides_and_a_refused_cache_is_said(collect: Collect) -> None:
    ran: list[int] = []

    @task(name="cache-per-input", cache_for=60, cache_validator=all_inputs)
    def double(x: int) -> int:
        ran.append(x)
        return 2 * x

    with Flow("f") as flow:
        out = double(Parameter("x"))

    results = [flow.run(x=x).result[out].result for x in (1, 1, 2)]

    assert results == [2, 2, 4] and ran == [1, 2]
    warnings = [r.getMessage() for r in collect.records if r.levelno == logging.WARNING]
    assert warnings == ["Task 'cache-per-input': Can't use cache because it is now invalid"]


def test_tasks_with_one_cache_key_share_results_and_handlers_see_the_cache() -> None:
    ran: list[str] = []
    changes: list[str] = []

    def watch(t: Any, old: State, new: State) -> State:
        changes.append(f"{t.name}: {type(old).__name__}->{type(new).__name__}")
        return new

    @task(name="cache-first", cache_for=60, cache_key="cache-shared")
    def first() -> str:
        ran.append("first")
        return "rows"

    @task(name="cache-second", cache_for=60, cache_key="cache-shared", state_handlers=[watch])
    def second() -> str:
        ran.append("second")
        return "other rows"

    with Flow("a") as fa:
        first()
    with Flow("b") as fb:
        out = second()

    fa.run()
    assert fb.run().result[out].result == "rows"
    assert ran == ["first"]
    assert changes == ["cache-second: Pending->Cached"]


def test_a_validator_that_raises_is_logged_and_the_task_runs(collect: Collect) -> None:
    ran: list[int] = []

    def broken(state: Cached, inputs: Any, parameters: Any) -> bool:
        raise RuntimeError("validator bug")

    @task(name="cache-broken", cache_for=60, cache_validator=broken)
    def work() -> int:
        ran.append(1)
        return 1

    with Flow("f") as flow:
        work()

    flow.run()
    flow.run()
    assert ran == [1, 1]
    (error,) = [r for r in collect.records if r.levelno == logging.ERROR]
    assert error.getMessage() == (
        "Task 'cache-broken': the cache validator raised RuntimeError('validator bug')"
    )


def kept(expires_in: float | None, inputs: dict[str, Any], parameters: dict[str, Any]) -> Cached:
    expiration = None if expires_in is None else datetime.now(UTC) + timedelta(seconds=expires_in)
    return Cached(
        result=1,
        cached_inputs=inputs,
        cached_parameters=parameters,
        cached_result_expiration=expiration,
    )


def test_the_validators_compare_what_prefect_1s_compared() -> None:
    fresh = kept(60, {"a": 1, "b": 2}, {"day": "mon", "limit": 5})
    stale = kept(-1, {"a": 1, "b": 2}, {"day": "mon", "limit": 5})
    same, other = {"a": 1, "b": 2}, {"a": 1, "b": 3}
    params, other_params = {"day": "mon", "limit": 5}, {"day": "mon", "limit": 6}

    assert duration_only(fresh, other, other_params) and not duration_only(stale, same, params)
    assert duration_only(kept(None, {}, {}), {}, None)
    assert all_inputs(fresh, same, None) and not all_inputs(fresh, other, None)
    assert all_parameters(fresh, {}, params) and not all_parameters(fresh, {}, other_params)
    assert partial_inputs_only(["a"])(fresh, other, None)
    assert not partial_inputs_only(["b"])(fresh, other, None)
    assert partial_parameters_only(["day"])(fresh, {}, other_params)
    assert not partial_parameters_only()(fresh, {}, other_params)
    assert not never_use(fresh, same, params)


def test_cache_options_are_checked() -> None:
    with pytest.raises(ValueError, match="cache_for must be more than 0"):
        task(cache_for=0)
    with pytest.raises(TypeError, match="cache_validator must be a callable"):
        task(cache_for=1, cache_validator="all_inputs")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="cache_key must be a non-empty str"):
        task(cache_for=1, cache_key="")
    with pytest.warns(UserWarning, match="without cache_for; the task's results are not kept"):
        task(cache_key="shared")
