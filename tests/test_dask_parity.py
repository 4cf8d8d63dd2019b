"""Prefect 1 task options on Dask workers: log_stdout, timeout and task_slug."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from typing import Any

import pytest

import structflow
from receivers import HTTPReceiver
from structflow.engine import Flow, TimedOut, task
from structflow.executors import DaskExecutor
from test_dask import by_logger, cluster, executor, flush_here, receiver, ship_to

__all__ = ["cluster", "executor", "receiver"]  # the fixtures of test_dask.py, shared

pytestmark = [pytest.mark.dask, pytest.mark.timeout(90)]

LINES = 300
#: One worker process with four threads: tasks print concurrently in it.
FOUR_THREADS_ONE_PROCESS = {
    "n_workers": 1,
    "threads_per_worker": 4,
    "processes": True,
    "dashboard_address": ":0",
}


@task(name="printer", log_stdout=True)
def printer(label: str) -> str:
    for i in range(LINES):
        print(f"{label} line {i}")
        if i % 50 == 0:
            time.sleep(0.001)  # let the other threads of the worker print in between
    return label


@task(name="dozy", timeout=0.5)
def dozy() -> None:
    structflow.context.get("logger").info("about to doze", pid=os.getpid())
    time.sleep(3)


def test_printed_lines_on_worker_threads_stay_with_their_task_run(receiver: HTTPReceiver) -> None:
    ship_to(receiver)
    labels = ["a", "b", "c", "d"]
    with Flow("dask-prints") as flow:
        printer.map(labels)
    executor = DaskExecutor(cluster_kwargs=FOUR_THREADS_ONE_PROCESS)

    state = flow.run(executor=executor)
    flush_here()

    assert state.is_successful()
    lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in receiver.lines():
        if record["logger"].startswith("structflow.printer["):
            lines[record["logger"]].append(record)
    for i, label in enumerate(labels):
        records = lines[f"structflow.printer[{i}]"]
        assert [r["message"] for r in records] == [f"{label} line {n}" for n in range(LINES)]
        assert {(r["map_index"], r["task_slug"], r["level"]) for r in records} == {
            (i, "printer-1", "info")
        }
        assert len({r["task_run_id"] for r in records}) == 1


def test_a_task_past_its_timeout_on_a_worker_ends_timed_out(
    executor: DaskExecutor, receiver: HTTPReceiver
) -> None:
    ship_to(receiver)
    with Flow("dask-timeout") as flow:
        slow = dozy()

    state = flow.run(executor=executor)
    flush_here()
    records = receiver.lines()

    task_state = state.result[slow]
    assert isinstance(task_state, TimedOut)
    assert task_state.message == "Task timed out during execution after 0.5 s."
    (before,) = by_logger(records, "structflow.dozy")
    (timed_out,) = [
        r
        for r in by_logger(records, "structflow.TaskRunner")
        if r["level"] == "error" and "timed out" in r["message"]
    ]
    assert before["message"] == "about to doze"
    assert before["pid"] != os.getpid()
    assert before["task_run_id"] == timed_out["task_run_id"]
    assert before["task_slug"] == timed_out["task_slug"] == "dozy-1"
