"""structlog's loggers in tasks on Dask workers: run context, delivered once."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest
import structlog

from receivers import HTTPReceiver
from structflow.engine import Flow, task
from structflow.executors import DaskExecutor
from test_dask import cluster, executor, flush_here, receiver, ship_to

__all__ = ["cluster", "executor", "receiver"]  # the fixtures of test_dask.py, shared

pytestmark = [pytest.mark.dask, pytest.mark.timeout(60)]


@task(name="sl-square")
def sl_square(x: int) -> int:
    # structlog is imported on the worker when this code arrives there, after
    # structflow has applied the flow's configuration.
    structlog.get_logger("worker.lib").bind(item=x).info("squaring %s", x, pid=os.getpid())
    return x * x


def test_worker_structlog_records_arrive_once_with_run_context(
    cluster: Any, executor: DaskExecutor, receiver: HTTPReceiver
) -> None:
    ship_to(receiver)
    with Flow("structlog-on-dask") as flow:
        result = sl_square.map([1, 2, 3])

    state = flow.run(executor=executor)
    flush_here()
    records = [r for r in receiver.lines() if r["logger"] == "worker.lib"]

    assert state.is_successful()
    assert state.result[result].result == [1, 4, 9]
    assert Counter(r["item"] for r in records) == {1: 1, 2: 1, 3: 1}
    assert sorted((r["message"], r["map_index"]) for r in records) == [
        ("squaring 1", 0),
        ("squaring 2", 1),
        ("squaring 3", 2),
    ]
    assert {(r["flow_name"], r["task_name"]) for r in records} == {
        ("structlog-on-dask", "sl-square")
    }
    assert len({r["flow_run_id"] for r in records}) == 1
    assert os.getpid() not in {r["pid"] for r in records}
