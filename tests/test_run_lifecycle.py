"""Lifecycle fields on the engine's records: lifecycle, state, duration_s; messages unchanged."""

from __future__ import annotations

import importlib
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import structflow
from needs import require
from structflow.engine import Flow, task
from structflow.formatters import LogfmtFormatter
from structflow.testing import capture_logs

ENGINE = ("structflow.FlowRunner", "structflow.TaskRunner")


def lifecycle_events(logs: list[dict[str, Any]]) -> list[tuple[str, str, str | None, str]]:
    """(message, lifecycle, state, type of duration_s) of the engine's lifecycle records."""
    return [
        (e["message"], e["lifecycle"], e.get("state"), type(e.get("duration_s")).__name__)
        for e in logs
        if e["logger"] in ENGINE and "lifecycle" in e
    ]


def test_a_flow_run_and_its_task_runs_carry_their_lifecycle() -> None:
    @task(name="A")
    def a() -> int:
        return 1

    @task(name="B")
    def b(x: int) -> int:
        return x + 1

    with Flow("lifecycle") as flow:
        b(a())

    with capture_logs() as logs:
        flow.run()
    assert lifecycle_events(logs) == [
        ("Beginning Flow run for 'lifecycle'", "flow_run_started", None, "NoneType"),
        ("Task 'A': Starting task run...", "task_run_started", None, "NoneType"),
        (
            "Task 'A': Finished task run for task with final state: 'Success'",
            "task_run_finished",
            "Success",
            "float",
        ),
        ("Task 'B': Starting task run...", "task_run_started", None, "NoneType"),
        (
            "Task 'B': Finished task run for task with final state: 'Success'",
            "task_run_finished",
            "Success",
            "float",
        ),
        (
            "Flow run SUCCESS: all reference tasks succeeded",
            "flow_run_finished",
            "Success",
            "float",
        ),
    ]
    assert all(e["duration_s"] >= 0 for e in logs if "duration_s" in e)


def test_retries_failures_and_skipped_tasks_say_so() -> None:
    tries: list[int] = []

    @task(name="flaky", max_retries=1, retry_delay=timedelta(0))
    def flaky() -> None:
        tries.append(1)
        if len(tries) == 1:
            raise ValueError("first try fails")

    @task(name="broken")
    def broken() -> None:
        raise KeyError("always")

    @task(name="after")
    def after(_x: None) -> None:
        pass

    with Flow("mixed") as flow:
        flaky()
        after(broken())

    with capture_logs() as logs:
        flow.run()
    finished = [(lc, state) for _m, lc, state, _d in lifecycle_events(logs) if state is not None]
    assert finished == [
        ("task_run_retrying", "Retrying"),
        ("task_run_finished", "Failed"),
        ("task_run_finished", "TriggerFailed"),
        ("task_run_finished", "Success"),
        ("flow_run_finished", "Failed"),
    ]


def test_a_mapped_task_has_its_own_lifecycle_and_its_childrens() -> None:
    @task(name="double")
    def double(x: int) -> int:
        return 2 * x

    with Flow("mapped") as flow:
        double.map([1, 2])

    with capture_logs() as logs:
        flow.run()
    tasks = [
        (e.get("map_index"), e["lifecycle"], e.get("state"))
        for e in logs
        if e["logger"] == "structflow.TaskRunner" and "lifecycle" in e
    ]
    assert tasks == [
        (None, "task_run_started", None),
        (0, "task_run_started", None),
        (0, "task_run_finished", "Success"),
        (1, "task_run_started", None),
        (1, "task_run_finished", "Success"),
        (None, "task_run_finished", "Mapped"),
    ]


def test_the_fields_show_in_other_renderers_too() -> None:
    @task(name="A")
    def a() -> None:
        pass

    with Flow("logfmt") as flow:
        a()

    with capture_logs() as logs:
        flow.run()
    finished = logs.records[-1]
    line = LogfmtFormatter().format(finished)
    assert "lifecycle=flow_run_finished state=Success duration_s=" in line
    assert finished.getMessage() == "Flow run SUCCESS: all reference tasks succeeded"


@pytest.mark.dask
@pytest.mark.timeout(120)
def test_task_runs_on_dask_workers_reach_the_store_with_their_lifecycle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers apply the flow's [logging.store] and log the lifecycle where the runs happen."""
    try:
        distributed: Any = importlib.import_module("distributed")
    except ImportError:
        distributed = None
    require(distributed is not None, "dask.distributed (pip install 'structflow[dask]')")
    from structflow import store
    from structflow.executors import DaskExecutor

    url = f"sqlite:///{tmp_path / 'logs.db'}"
    structflow.configure(stream="none", store={"url": url, "flush_interval": 60.0})

    @task(name="square")
    def square(x: int) -> int:
        structflow.context.get("logger").info("worker pid %s", os.getpid())
        return x * x

    with Flow("on-dask") as flow:
        square.map([1, 2, 3])

    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    try:
        state = flow.run(executor=DaskExecutor(address=cluster.scheduler_address))
    finally:
        cluster.close()
    assert state.is_successful()
    structflow.configure(stream="none")  # closes the store handler: delivers what is queued
    with store.connect(url) as s:
        (run,) = s.runs()
        assert (run.flow_name, run.state) == ("on-dask", "Success")
        children = sorted(
            (t.map_index, t.state, t.tries) for t in run.task_runs if t.map_index is not None
        )
        assert children == [(0, "Success", 1), (1, "Success", 1), (2, "Success", 1)]
        worker_pids = {e.message for e in s.logs(search="worker pid")}
    assert len(worker_pids) >= 1
    assert f"worker pid {os.getpid()}" not in worker_pids
