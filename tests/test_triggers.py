"""Prefect 1's triggers, tags and checkpoint option on tasks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

import structflow
from sample_flows import Collect, add, boom
from structflow import Flow, task
from structflow.engine import Edge, Failed, Skipped, State, TriggerFailed
from structflow.engine.signals import SKIP
from structflow.triggers import (
    all_failed,
    all_finished,
    always_run,
    any_failed,
    any_successful,
    not_all_skipped,
    some_successful,
)


def test_a_clean_up_task_runs_whatever_happened_upstream(collect: Collect) -> None:
    cleaned: list[Any] = []

    @task(trigger=all_finished)
    def clean_up(x: Any) -> None:
        cleaned.append(x)

    with Flow("f") as flow:
        failing = boom()
        clean_up(failing)

    state = flow.run()
    assert state.is_successful()  # the clean-up task is the reference task
    (seen,) = cleaned
    assert isinstance(seen, RuntimeError)  # a failed task's result is its exception
    assert always_run is all_finished


@pytest.mark.parametrize(
    ("trigger", "upstream", "runs", "message"),
    [
        (any_failed, ["ok", "fail"], True, None),
        (any_failed, ["ok", "ok"], False, '"any_failed" but none of the upstream tasks failed.'),
        (all_failed, ["fail", "fail"], True, None),
        (all_failed, ["ok", "fail"], False, '"all_failed" but some of the upstream tasks'),
        (any_successful, ["fail", "ok"], True, None),
        (any_successful, ["fail"], False, '"any_successful" but none of the upstream tasks'),
        (some_successful(at_least=2), ["ok", "ok", "fail"], True, None),
        (some_successful(at_least=0.9), ["ok", "fail"], False, "1 of 2 upstream tasks"),
    ],
)
def test_triggers_decide_from_the_upstream_states(
    trigger: Any, upstream: list[str], runs: bool, message: str | None
) -> None:
    ran: list[int] = []

    @task(trigger=trigger)
    def after(*values: Any) -> None:
        ran.append(1)

    @task
    def ok() -> int:
        return 1

    with Flow("f") as flow:
        made = [
            (ok if kind == "ok" else boom).copy(name=f"{kind}-{i}")()
            for i, kind in enumerate(upstream)
        ]
        last = after(*made)

    state = flow.run()
    assert bool(ran) is runs
    if not runs:
        assert type(state.result[last]) is TriggerFailed
        assert message is not None and message in str(state.result[last].message)


def test_a_trigger_of_your_own_gets_the_edges_and_states() -> None:
    seen: dict[str, str] = {}

    def named(upstream_states: Mapping[Edge, State]) -> bool:
        for edge, state in upstream_states.items():
            seen[f"{edge.upstream_task.name}->{edge.key}"] = type(state).__name__
        return False  # False: TriggerFailed, as in Prefect 1

    @task(trigger=named)
    def last(x: Any, y: Any) -> None: ...

    with Flow("f") as flow:
        ended = last(add(1, 2), y=boom())

    state = flow.run()
    assert seen == {"add->x": "Success", "boom->y": "Failed"}
    assert (type(state.result[ended]), state.result[ended].message) == (
        TriggerFailed,
        "Trigger failed",
    )


def test_a_trigger_that_skips_or_breaks(collect: Collect) -> None:
    def broken(upstream_states: Mapping[Edge, State]) -> bool:
        raise KeyError("oops")

    @task
    def skipped() -> None:
        raise SKIP("nothing")

    @task(trigger=not_all_skipped, skip_on_upstream_skip=False)
    def needs_one(x: Any) -> None: ...

    @task(trigger=broken)
    def fragile(x: Any) -> None: ...

    with Flow("f") as flow:
        a = needs_one(skipped())
        b = fragile(add(1, 1))

    state = flow.run()
    assert type(state.result[a]) is Skipped
    assert type(state.result[b]) is Failed
    (error,) = [r for r in collect.records if "checking the trigger" in r.getMessage()]
    assert error.getMessage() == (
        "Task 'fragile': Unexpected error while checking the trigger: KeyError('oops')"
    )
    assert error.__dict__["task_name"] == "fragile" and error.exc_info


def test_tags_are_in_the_run_context_and_checkpoint_changes_nothing() -> None:
    seen: list[Any] = []

    @task(tags=["etl", "nightly"], checkpoint=False)
    def tagged() -> None:
        seen.append(structflow.context.get("task_tags"))

    with Flow("f") as flow:
        tagged()

    assert flow.run().is_successful()
    assert seen == [{"etl", "nightly"}]
    assert tagged.tags == {"etl", "nightly"} and tagged.checkpoint is False
    with pytest.raises(TypeError, match="tags must be a list of str"):
        task(tags="etl")
    with pytest.raises(TypeError, match="trigger must be a callable"):
        task(trigger="all_finished")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="checkpoint must be True or False"):
        task(checkpoint="no")  # type: ignore[call-overload]


def test_manual_only_says_it_is_not_there() -> None:
    with pytest.raises(ImportError, match="structflow has no manual_only trigger"):
        from structflow.triggers import manual_only  # noqa: F401


def test_tags_blocks_tag_the_tasks_made_or_called_inside() -> None:
    with structflow.tags("dev"):

        @task(tags=["own"])
        def made() -> None: ...

    @task
    def plain() -> Any:
        return structflow.context.get("task_tags")

    with Flow("f") as flow, structflow.tags("etl"), structflow.tags("nightly"):
        called = plain()

    assert made.tags == {"own", "dev"}
    assert plain.tags == set() and called.tags == {"etl", "nightly"}
    assert flow.run().result[called].result == {"etl", "nightly"}
    with (
        pytest.raises(TypeError, match="tags\\(\\) takes str names"),
        structflow.tags(3),  # type: ignore[arg-type]
    ):
        pass
