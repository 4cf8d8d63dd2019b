"""LocalExecutor: the default, every task run in the calling thread."""

from __future__ import annotations

import threading

import pytest

from structflow import Flow, task
from structflow.executors import LocalExecutor


def test_local_executor_is_the_default_and_runs_in_the_calling_thread() -> None:
    threads: list[int] = []

    @task
    def where() -> None:
        threads.append(threading.get_ident())

    with Flow("f") as flow:
        where()
        where()

    assert flow.run().is_successful()
    assert flow.run(executor=LocalExecutor()).is_successful()
    assert threads == [threading.get_ident()] * 4


def test_local_executor_future_holds_the_exception() -> None:
    future = LocalExecutor().submit(int, "not a number")
    assert future.done()
    with pytest.raises(ValueError, match="invalid literal"):
        future.result()
