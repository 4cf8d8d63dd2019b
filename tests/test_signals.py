"""Prefect 1's signals: a task choosing its own final state, and what is logged of it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import structflow
from sample_flows import Collect, add
from structflow import Flow, task
from structflow.engine import Failed, Skipped, State, Success, TriggerFailed, signals
from structflow.engine.signals import FAIL, LOOP, RETRY, SKIP, SUCCESS, TRIGGERFAIL
from structflow.utilities.debug import raise_on_exception


def finished_states(collect: Collect) -> dict[str, list[str]]:
    """Each task's ``state`` in its ``task_run_finished``/``retrying`` records, in order."""
    out: dict[str, list[str]] = {}
    for r in collect.named("structflow.TaskRunner"):
        if getattr(r, "lifecycle", "") in ("task_run_finished", "task_run_retrying"):
            out.setdefault(r.__dict__["task_name"], []).append(r.__dict__["state"])
    return out


def test_fail_is_a_failure_logged_as_a_note_and_retried(collect: Collect) -> None:
    tries: list[int] = []

    @task(max_retries=1)
    def check() -> None:
        tries.append(1)
        raise FAIL("no rows today")

    with Flow("f") as flow:
        checked = check()
        after = add(checked, 1)

    state = flow.run()

    assert state.is_failed()
    failed = state.result[checked]
    assert type(failed) is Failed and failed.message == "no rows today"
    assert isinstance(failed.exception, FAIL) and failed.result is failed.exception
    assert type(state.result[after]) is TriggerFailed
    assert len(tries) == 2
    notes = [r for r in collect.named("structflow.TaskRunner") if "signal" in r.getMessage()]
    assert [(r.levelno, r.getMessage(), r.exc_info) for r in notes] == [
        (logging.INFO, "FAIL signal raised: FAIL('no rows today')", None)
    ] * 2
    assert not [r for r in collect.records if r.levelno >= logging.ERROR and "check" in r.msg]
    assert finished_states(collect)["check"] == ["Retrying", "Failed"]


def test_success_ends_the_run_with_its_result() -> None:
    @task
    def early() -> int:
        raise SUCCESS("nothing new", result=41)

    with Flow("f") as flow:
        total = add(early(), 1)

    state = flow.run()
    assert state.is_successful()
    assert state.result[total].result == 42
    assert (type(state.result[total]), state.result[total].message) == (
        Success,
        "Task run succeeded.",
    )


def test_skip_skips_the_tasks_downstream_unless_they_ask_to_run(collect: Collect) -> None:
    ran: list[Any] = []

    @task
    def fetch() -> None:
        raise SKIP("holiday", result="no data")

    @task
    def load(x: Any) -> None:
        ran.append(("load", x))

    @task(skip_on_upstream_skip=False)
    def report(x: Any) -> str:
        ran.append(("report", x))
        return "reported"

    with Flow("f") as flow:
        fetched = fetch()
        loaded = load(fetched)
        after_load = add(loaded, 1)
        reported = report(fetched)

    state = flow.run()

    # Skipped is a success: the flow run succeeds, as in Prefect 1.
    assert state.is_successful()
    assert [type(state.result[t]) for t in (fetched, loaded, after_load)] == [Skipped] * 3
    assert state.result[fetched].is_skipped() and state.result[fetched].message == "holiday"
    assert state.result[loaded].message.startswith("Upstream task was skipped;")
    assert state.result[reported].result == "reported"
    assert ran == [("report", "no data")]
    assert finished_states(collect) == {
        "fetch": ["Skipped"],
        "load": ["Skipped"],
        "add": ["Skipped"],
        "report": ["Success"],
    }


def test_a_skipped_mapped_child_is_a_success_with_no_result() -> None:
    @task
    def keep_even(x: int) -> int:
        if x % 2:
            raise SKIP("odd")
        return x

    with Flow("f") as flow:
        kept = keep_even.map([1, 2, 3])

    state = flow.run()
    assert state.result[kept].result == [None, 2, None]
    assert [type(s) for s in state.result[kept].map_states] == [Skipped, Success, Skipped]


def test_retry_runs_again_whatever_max_retries_says(collect: Collect) -> None:
    tries: list[int] = []

    @task
    def poll() -> int:
        tries.append(1)
        if len(tries) < 3:
            # A due time in the past: at once.
            raise RETRY("not ready", start_time=datetime.now(UTC) - timedelta(seconds=5))
        return len(tries)

    with Flow("f") as flow:
        polled = poll()

    state = flow.run()
    assert state.result[polled].result == 3
    assert finished_states(collect)["poll"] == ["Retrying", "Retrying", "Success"]


def test_triggerfail_is_final_even_with_retries_left() -> None:
    tries: list[int] = []

    @task(max_retries=3)
    def gate() -> None:
        tries.append(1)
        raise TRIGGERFAIL("upstream data is stale")

    with Flow("f") as flow:
        gated = gate()

    state = flow.run()
    assert type(state.result[gated]) is TriggerFailed
    assert state.result[gated].message == "upstream data is stale"
    assert tries == [1]


def test_under_raise_on_exception_failures_raise_and_skips_do_not() -> None:
    @task(max_retries=2)
    def fails() -> None:
        raise FAIL("bad input")

    @task
    def skips() -> None:
        raise SKIP("not today")

    @task
    def retries() -> None:
        raise RETRY("later")

    with Flow("skipping") as skipping:
        skips()
    with Flow("failing") as failing:
        fails()
    with Flow("retrying") as retrying:
        retries()

    with raise_on_exception():
        assert skipping.run().is_successful()
        with pytest.raises(FAIL, match="bad input"):
            failing.run()
        with pytest.raises(RETRY, match="later"):
            retrying.run()


def test_prefect_1_signals_structflow_lacks_say_so_on_import() -> None:
    with pytest.raises(ImportError, match="structflow has no PAUSE signal: Prefect 1 used it for"):
        from structflow.engine.signals import PAUSE  # noqa: F401
    with pytest.raises(AttributeError):
        signals.NOT_A_SIGNAL  # noqa: B018


def test_skip_on_upstream_skip_is_checked_and_copied() -> None:
    with pytest.raises(TypeError, match="skip_on_upstream_skip must be True or False"):
        task(skip_on_upstream_skip="no")  # type: ignore[call-overload]
    assert add.copy(skip_on_upstream_skip=False).skip_on_upstream_skip is False
    assert add.skip_on_upstream_skip is True


def test_loop_runs_the_task_again_with_its_result_in_one_task_run(collect: Collect) -> None:
    @task
    def page(total: int) -> list[int]:
        # Prefect 1's pagination idiom: the loop count and result in the context.
        count = structflow.context.get("task_loop_count", 1)
        pages = structflow.context.get("task_loop_result", [])
        if count < total:
            raise LOOP(f"page {count}", result=[*pages, count])
        return [*pages, count]

    with Flow("f") as flow:
        pages = page(4)
        doubled = add(pages, pages)

    state = flow.run()

    assert state.result[pages].result == [1, 2, 3, 4]
    assert state.result[doubled].result == [1, 2, 3, 4, 1, 2, 3, 4]
    notes = [r.getMessage() for r in collect.named("structflow.TaskRunner")]
    assert [n for n in notes if "LOOP" in n] == [
        f"LOOP signal raised: LOOP('page {i}')" for i in (1, 2, 3)
    ]
    # One task run: one start, one end, whatever the iterations.
    assert finished_states(collect)["page"] == ["Success"]
    assert sum(n == "Task 'page': Starting task run..." for n in notes) == 1


def test_a_retry_resumes_a_loop_where_it_failed_and_handlers_see_each_iteration() -> None:
    changes: list[str] = []
    tries: list[int] = []

    def watch(t: object, old: State, new: State) -> State:
        changes.append(f"{type(old).__name__}->{type(new).__name__}")
        return new

    @task(max_retries=1, state_handlers=[watch])
    def steps() -> int:
        count = structflow.context.get("task_loop_count", 1)
        tries.append(count)
        if count == 2 and tries.count(2) == 1:
            raise ConnectionError("dropped")
        if count < 3:
            raise LOOP(result=count)
        return int(structflow.context.get("task_loop_result")) * 10

    with Flow("f") as flow:
        out = steps()

    assert flow.run().result[out].result == 20
    assert tries == [1, 2, 2, 3]  # the retry resumed at iteration 2
    assert changes == [
        "Pending->Running",
        "Running->Looped",
        "Looped->Running",
        "Running->Retrying",
        "Retrying->Running",
        "Running->Looped",
        "Looped->Running",
        "Running->Success",
    ]
