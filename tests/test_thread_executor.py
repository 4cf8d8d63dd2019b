"""ThreadExecutor: independent task runs in parallel threads, with their context."""

from __future__ import annotations

import logging
import threading

import pytest

import structflow
from sample_flows import RUN_KEYS, Collect, add
from structflow import Flow, task
from structflow.engine import Failed, TriggerFailed
from structflow.executors import LocalDaskExecutor, ThreadExecutor


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


def test_prefect_1s_local_dask_executor_runs_tasks_in_threads() -> None:
    barrier = threading.Barrier(2, timeout=20)
    names: set[str] = set()

    @task
    def meet(i: int) -> int:
        names.add(threading.current_thread().name)
        barrier.wait()
        return i

    with Flow("parallel") as flow:
        outs = meet.map([0, 1])

    state = flow.run(executor=LocalDaskExecutor(num_workers=2))
    assert state.result[outs].result == [0, 1]
    assert len(names) == 2 and all(n.startswith("structflow-worker") for n in names)
    assert isinstance(LocalDaskExecutor(), ThreadExecutor)
    assert LocalDaskExecutor(scheduler="synchronous").max_workers == 1
    with pytest.raises(ValueError, match=r"use structflow\.executors\.DaskExecutor\(\)"):
        LocalDaskExecutor(scheduler="processes")
    with pytest.raises(ValueError, match="expected 'threads' or 'synchronous'"):
        LocalDaskExecutor(scheduler="thread")


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
