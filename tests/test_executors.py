"""The executor contract: what the flow runner does with any Executor, in or out of process."""

from __future__ import annotations

import concurrent.futures
import importlib
import logging
import multiprocessing
import os
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest

import structflow
from sample_flows import RUN_KEYS, Collect, add
from structflow import Flow, Parameter, task
from structflow.engine import Failed, Success, TaskCall
from structflow.executors import Executor, LocalExecutor, TaskFuture

T = TypeVar("T")
F = TypeVar("F", bound=TaskFuture[Any])


class FlakyExecutor(Executor):
    """An executor that fails to run one named task, as a broken cluster would."""

    def __init__(self, fail_on_submit: str | None = None, fail_result: str | None = None) -> None:
        self.fail_on_submit = fail_on_submit
        self.fail_result = fail_result
        self.inner = LocalExecutor()

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> TaskFuture[T]:
        call = args[0]
        assert isinstance(call, TaskCall)
        if call.task.name == self.fail_on_submit:
            raise OSError("cannot serialize the arguments")
        if call.task.name == self.fail_result:
            future: concurrent.futures.Future[T] = concurrent.futures.Future()
            future.set_exception(ConnectionError("worker died"))
            return future
        return self.inner.submit(fn, *args, **kwargs)

    def wait_first(self, futures: Collection[F], timeout: float | None = None) -> set[F]:
        return self.inner.wait_first(futures, timeout)


@pytest.mark.parametrize(
    ("executor", "message"),
    [
        (FlakyExecutor(fail_on_submit="add"), "OSError('cannot serialize the arguments')"),
        (FlakyExecutor(fail_result="add"), "ConnectionError('worker died')"),
    ],
)
def test_an_executor_failure_fails_only_that_task(
    collect: Collect, executor: Executor, message: str
) -> None:
    @task(name="other")
    def other() -> int:
        return 1

    with Flow("f") as flow:
        failing = add(1, 2)
        fine = other()

    state = flow.run(executor=executor)

    assert state.is_failed()
    assert state.result[fine].is_successful()
    failed = state.result[failing]
    assert isinstance(failed, Failed)
    assert failed.message == f"Executor error: {message}"
    (error,) = [r for r in collect.records if r.levelno == logging.ERROR and "executor" in r.msg]
    assert error.name == "structflow.TaskRunner"
    assert error.task_name == "add"  # type: ignore[attr-defined]


def test_an_executor_that_cannot_start_fails_the_flow_run(collect: Collect) -> None:
    class NoCluster(LocalExecutor):
        @contextmanager
        def start(self) -> Iterator[None]:
            raise ConnectionRefusedError("no scheduler at tcp://127.0.0.1:1")
            yield

    with Flow("f") as flow:
        add(1, 2)

    state = flow.run(executor=NoCluster())
    assert state.is_failed()
    assert isinstance(state.exception, ConnectionRefusedError)  # type: ignore[attr-defined]
    assert state.result == {}
    (error,) = [r for r in collect.records if r.levelno == logging.ERROR]
    assert error.name == "structflow.FlowRunner"
    assert error.getMessage().startswith("Unexpected error while running flow: ")


# --- the process boundary, as a Dask worker sees it ---------------------------------


def _cloudpickle() -> Any:
    return importlib.import_module("cloudpickle")


def _run_pickled(payload: bytes) -> Any:
    fn, args, kwargs = _cloudpickle().loads(payload)
    return fn(*args, **kwargs)


class SpawnExecutor(Executor):
    """Runs each submission in a fresh interpreter, shipping it with cloudpickle."""

    @contextmanager
    def start(self) -> Iterator[None]:
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
            self.pool = pool
            yield

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> TaskFuture[T]:
        return self.pool.submit(_run_pickled, _cloudpickle().dumps((fn, args, kwargs)))

    def wait_first(self, futures: Collection[F], timeout: float | None = None) -> set[F]:
        done, _ = concurrent.futures.wait(
            futures,  # type: ignore[arg-type]
            timeout=timeout,
            return_when=concurrent.futures.FIRST_COMPLETED,
        )
        return done  # type: ignore[return-value]


def test_task_runs_re_enter_the_run_context_in_another_process() -> None:
    pytest.importorskip("cloudpickle")

    @task(name="remote")
    def remote(x: int) -> dict[str, Any]:
        ctx = structflow.context
        return {
            "pid": os.getpid(),
            "x": x,
            "logger": ctx.logger.name,
            "parameters": ctx.parameters,
            **{k: ctx.get(k) for k in RUN_KEYS},
        }

    with Flow("spawned") as flow:
        local = remote(Parameter("x"))
        children = remote.map([5, 6])

    with structflow.context(flow_name="outer-value-overridden"):
        state = flow.run(parameters={"x": 4}, executor=SpawnExecutor())

    assert state.is_successful(), {t.name: s for t, s in state.result.items()}
    single = state.result[local].result
    mapped = state.result[children].result
    assert isinstance(state.result[local], Success)
    assert single["pid"] != os.getpid()
    assert {k: single[k] for k in ("x", "logger", "parameters", "task_name", "map_index")} == {
        "x": 4,
        "logger": "structflow.remote",
        "parameters": {"x": 4},
        "task_name": "remote",
        "map_index": None,
    }
    assert single["flow_name"] == "spawned"
    assert [(m["x"], m["logger"], m["map_index"], m["task_run_count"]) for m in mapped] == [
        (5, "structflow.remote[0]", 0, 1),
        (6, "structflow.remote[1]", 1, 1),
    ]
    assert single["flow_run_id"] == mapped[0]["flow_run_id"] == mapped[1]["flow_run_id"]
    assert len({single["task_run_id"], mapped[0]["task_run_id"], mapped[1]["task_run_id"]}) == 3
