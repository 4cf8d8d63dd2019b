"""Executors: LocalExecutor, ThreadExecutor, and the contract other executors follow."""

from __future__ import annotations

import concurrent.futures
import importlib
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest

import structflow
from structflow import Flow, Parameter, get_logger, task
from structflow.engine import Failed, Success, TaskCall, TriggerFailed
from structflow.executors import Executor, LocalExecutor, TaskFuture, ThreadExecutor

T = TypeVar("T")
F = TypeVar("F", bound=TaskFuture[Any])

RUN_KEYS = ("flow_name", "flow_run_id", "task_name", "task_run_id", "map_index", "task_run_count")


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._guard:
            self.records.append(record)


@pytest.fixture
def collect() -> Collect:
    structflow.configure(stream="none", level="DEBUG")
    handler = Collect()
    get_logger().addHandler(handler)
    return handler


@task
def add(x: int, y: int) -> int:
    return x + y


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


def test_thread_executor_runs_independent_tasks_in_parallel() -> None:
    """Three tasks meet at a barrier; run one after another, the first would time out."""
    barrier = threading.Barrier(3, timeout=20)
    threads: set[int] = set()

    @task
    def meet(i: int) -> int:
        threads.add(threading.get_ident())
        barrier.wait()
        return i

    with Flow("parallel") as flow:
        outs = [meet(i) for i in range(3)]

    state = flow.run(executor=ThreadExecutor(max_workers=3))

    assert state.is_successful(), {t.name: s for t, s in state.result.items()}
    assert [state.result[o].result for o in outs] == [0, 1, 2]
    assert len(threads) == 3 and threading.get_ident() not in threads


def test_thread_executor_runs_mapped_children_in_parallel() -> None:
    barrier = threading.Barrier(4, timeout=20)

    @task
    def meet(i: int) -> int:
        barrier.wait()
        return i * i

    with Flow("parallel-map") as flow:
        squares = meet.map(range(4))

    state = flow.run(executor=ThreadExecutor(max_workers=4))
    assert state.result[squares].result == [0, 1, 4, 9]


def test_one_worker_runs_a_deep_graph_without_deadlock() -> None:
    """Tasks are submitted only once their upstreams finished, so no worker waits on another."""
    with Flow("chain") as flow:
        value = add(0, 1)
        for _ in range(20):
            value = add(value, add(1, 0))
        fan = add.map([value] * 5, [1] * 5)

    state = flow.run(executor=ThreadExecutor(max_workers=1))
    assert state.result[value].result == 21
    assert state.result[fan].result == [22] * 5


def test_failures_and_retries_on_threads() -> None:
    attempts: list[int] = []

    @task(max_retries=2)
    def flaky() -> str:
        attempts.append(structflow.context["task_run_count"])
        if len(attempts) < 3:
            raise ValueError("not yet")
        return "done"

    @task
    def broken() -> None:
        raise RuntimeError("broken")

    with Flow("f") as flow:
        ok = flaky()
        bad = broken()
        after = add(bad, 1)

    state = flow.run(executor=ThreadExecutor(max_workers=2))
    assert state.result[ok].result == "done"
    assert attempts == [1, 2, 3]
    assert isinstance(state.result[bad], Failed)
    assert isinstance(state.result[after], TriggerFailed)
    assert state.is_failed()


def test_context_follows_tasks_into_threads(collect: Collect) -> None:
    foreign = Collect()
    logging.getLogger("x").addHandler(foreign)
    threads: set[int] = set()
    try:

        @task(name="Task B")
        def work(i: int) -> int:
            threads.add(threading.get_ident())
            structflow.context.get("logger").info("task logger %s", i)
            logging.getLogger("x").warning("foreign logger %s", i)
            return i

        with Flow("threaded") as flow:
            work.map([0, 1])
            work(7)

        with structflow.bound(request_id="req-1"):
            state = flow.run(executor=ThreadExecutor(max_workers=2))
    finally:
        logging.getLogger("x").removeHandler(foreign)

    assert state.is_successful()
    assert threading.get_ident() not in threads
    mine = [r for r in collect.records if r.name.startswith("structflow.Task B")]
    records = sorted([*mine, *foreign.records], key=lambda r: r.getMessage())
    assert [
        (r.getMessage(), r.task_name, r.map_index, r.task_run_count, r.request_id)  # type: ignore[attr-defined]
        for r in records
    ] == [
        ("foreign logger 0", "Task B", 0, 1, "req-1"),
        ("foreign logger 1", "Task B", 1, 1, "req-1"),
        ("foreign logger 7", "Task B", None, 1, "req-1"),
        ("task logger 0", "Task B", 0, 1, "req-1"),
        ("task logger 1", "Task B", 1, 1, "req-1"),
        ("task logger 7", "Task B", None, 1, "req-1"),
    ]
    assert {r.flow_name for r in records} == {"threaded"}  # type: ignore[attr-defined]
    assert len({r.flow_run_id for r in records}) == 1  # type: ignore[attr-defined]
    assert all(r.thread != threading.get_ident() for r in records)
    assert all(set(RUN_KEYS) <= set(r.structflow_fields) for r in records)  # type: ignore[attr-defined]


def test_thread_executor_checks_max_workers() -> None:
    with pytest.raises(ValueError, match="must be None or an int >= 1, got 0"):
        ThreadExecutor(max_workers=0)
    assert repr(ThreadExecutor(4)) == "ThreadExecutor(max_workers=4)"


def test_thread_executor_submit_needs_start() -> None:
    executor = ThreadExecutor()
    with pytest.raises(RuntimeError, match="needs a started executor"):
        executor.submit(int)
    with executor.start():
        assert executor.submit(int, "5").result() == 5
    with pytest.raises(RuntimeError):
        executor.submit(int)


def test_nested_starts_share_one_pool_until_the_last_exits() -> None:
    executor = ThreadExecutor(max_workers=1)
    with executor.start():
        with executor.start():
            inner = executor.submit(threading.get_ident).result()
        outer = executor.submit(threading.get_ident).result()
    assert inner == outer


def test_wait_first_returns_nothing_on_timeout_then_the_finished_future() -> None:
    executor = ThreadExecutor(max_workers=1)
    release = threading.Event()
    with executor.start():
        future = executor.submit(release.wait, 20)
        assert executor.wait_first([future], timeout=0.01) == set()
        release.set()
        assert executor.wait_first([future], timeout=20) == {future}
        assert future.result() is True


def test_local_executor_future_holds_the_exception() -> None:
    future = LocalExecutor().submit(int, "not a number")
    assert future.done()
    with pytest.raises(ValueError, match="invalid literal"):
        future.result()


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
