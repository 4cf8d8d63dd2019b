"""
DaskExecutor on a real LocalCluster: run context, configuration and delivery on workers.

One two-process LocalCluster serves the module; each test points structflow
at its own HTTP receiver on 127.0.0.1, which is also how it checks what the
workers logged.
"""

from __future__ import annotations

import gc
import importlib
import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import structflow
from needs import require
from receivers import HTTPReceiver, SyslogReceiver
from structflow._setup import ensure_configured
from structflow.engine import Flow, Skipped, State, Success, Task, signals, task
from structflow.executors import DaskExecutor, Executor, LocalExecutor, ThreadExecutor
from structflow.executors import dask as dask_executor
from structflow.handlers import HTTPHandler, SyslogHandler
from structflow.utilities.debug import raise_on_exception

distributed: Any
try:
    # Dask's API is untyped; reached through Any so the tests stay strict-clean.
    distributed = importlib.import_module("distributed")
except ImportError:  # pragma: no cover - the dask extra is part of the dev setup
    distributed = None

pytestmark = [pytest.mark.dask, pytest.mark.timeout(60)]

FLUSH_TIMEOUT = 20.0
RUN_CONTEXT = ("flow_name", "task_name", "map_index", "task_run_count")


@pytest.fixture
def receiver() -> Iterator[HTTPReceiver]:
    server = HTTPReceiver()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A two-process LocalCluster shared by the module's tests."""
    require(distributed is not None, "dask.distributed (pip install 'structflow[dask]')")
    with pytest.MonkeyPatch.context() as mp:
        # Workers inherit the environment: keep a developer's own settings out.
        for name in list(os.environ):
            if name.upper().startswith("STRUCTFLOW__"):
                mp.delenv(name)
        mp.setenv("STRUCTFLOW__USER_CONFIG_PATH", os.devnull)
        lc = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
    try:
        yield lc
    finally:
        lc.close()


@pytest.fixture
def executor(cluster: Any) -> DaskExecutor:
    return DaskExecutor(address=cluster.scheduler_address)


def ship_to(receiver: HTTPReceiver, **overrides: Any) -> None:
    """
    Configure structflow in this process to ship JSON records to *receiver* only.

    The handler's own timer would send a batch only after a minute, so within
    a test records reach the receiver only through explicit flushes: those of
    the executor on the workers, and :func:`flush_here` in this process.
    """
    structflow.configure(**http_to(receiver), **overrides)


def http_to(receiver: HTTPReceiver) -> dict[str, Any]:
    """configure() arguments that ship to *receiver* only, sending on explicit flushes."""
    http = {"url": receiver.url, "flush_interval": 60.0, "shutdown_timeout": 2.0}
    return {"stream": "none", "http": http}


def flush_here() -> None:
    """Deliver what the flow's own process logged (the workers flushed theirs already)."""
    for handler in logging.getLogger("structflow").handlers:
        if isinstance(handler, HTTPHandler | SyslogHandler):
            assert handler.flush(timeout=FLUSH_TIMEOUT) is True


def worker_pids(cluster: Any) -> set[int]:
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        return set(client.run(os.getpid).values())


def by_logger(records: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in records if r["logger"] == name]


def is_uuid(value: object) -> bool:
    try:
        return str(uuid.UUID(str(value))) == value
    except ValueError:
        return False


# --- tasks ---------------------------------------------------------------------------
# The code of @task functions travels with each call; the Task subclass Shout
# is imported by the workers from this module (the cluster's workers share the
# test run's sys.path).


@task(name="numbers")
def numbers() -> list[int]:
    return list(range(8))


@task(name="square")
def square(x: int) -> int:
    structflow.context.get("logger").info("squaring %s", x, pid=os.getpid())
    return x * x


@task(name="total")
def total(values: list[int]) -> int:
    structflow.context.get("logger").info("adding %s values", len(values), pid=os.getpid())
    return sum(values)


@task(name="explode")
def explode() -> None:
    raise ValueError("boom on the worker")


@task(name="flaky", max_retries=2, retry_delay=0)
def flaky() -> str:
    count = structflow.context.get("task_run_count")
    structflow.context.get("logger").info("try %s", count, pid=os.getpid())
    if count < 3:
        raise RuntimeError(f"try {count} failed")
    return "third time lucky"


class Shout(Task):
    def run(self, word: str) -> str:
        self.logger.warning("shouting %s", word, request=structflow.context.get("request"))
        logging.getLogger("dask_test_lib").info("library saw %s", word)
        return word.upper()


def map_reduce_flow() -> tuple[Flow, Task]:
    with Flow("dask-map-reduce") as flow:
        result = total(square.map(numbers))
    return flow, result


# --- the acceptance tests ---------------------------------------------------------------


def test_mapped_task_records_reach_http_with_run_context(
    cluster: Any, executor: DaskExecutor, receiver: HTTPReceiver
) -> None:
    """Every worker record of a map over 8 items and a reducer arrives with its context."""
    ship_to(receiver)
    flow, result = map_reduce_flow()

    state = flow.run(executor=executor)
    # Worker records were flushed before each result was reported: they are
    # at the receiver already, before this process flushes anything.
    from_workers = [r for r in receiver.lines() if "pid" in r]
    flush_here()
    records = receiver.lines()

    assert state.is_successful()
    assert state.result[result].result == 140
    assert len(from_workers) == 9
    flow_run_ids = {r["flow_run_id"] for r in records}
    assert len(flow_run_ids) == 1
    assert is_uuid(flow_run_ids.pop())
    assert {r["flow_name"] for r in records} == {"dask-map-reduce"}
    for r in by_logger(records, "structflow.TaskRunner"):
        if r["message"].startswith("Task 'square["):
            # Lifecycle records of each child carry that child's context.
            assert r["message"].startswith(f"Task 'square[{r['map_index']}]': ")
            assert r["task_run_count"] == 1
    squares = [r for r in records if r["logger"].startswith("structflow.square[")]
    assert sorted(r["message"] for r in squares) == [f"squaring {i}" for i in range(8)]
    for r in squares:
        i = int(r["message"].split()[-1])
        assert r["logger"] == f"structflow.square[{i}]"
        assert {k: r[k] for k in RUN_CONTEXT} == {
            "flow_name": "dask-map-reduce",
            "task_name": "square",
            "map_index": i,
            "task_run_count": 1,
        }
        assert is_uuid(r["task_run_id"])
    assert len({r["task_run_id"] for r in squares}) == 8
    (adding,) = by_logger(records, "structflow.total")
    assert adding["message"] == "adding 8 values"
    assert {k: adding[k] for k in RUN_CONTEXT} == {
        "flow_name": "dask-map-reduce",
        "task_name": "total",
        "map_index": None,
        "task_run_count": 1,
    }
    pids = {r["pid"] for r in [*squares, adding]}
    assert os.getpid() not in pids
    assert pids <= worker_pids(cluster)
    assert len({r["pid"] for r in squares}) == 2  # the children ran on both workers
    runner = by_logger(records, "structflow.TaskRunner")
    started = {r["message"] for r in runner if r["message"].endswith("Starting task run...")}
    assert {f"Task 'square[{i}]': Starting task run..." for i in range(8)} <= started


def test_failing_task_on_worker(executor: DaskExecutor, receiver: HTTPReceiver) -> None:
    """A task failing on a worker is Failed and its traceback is logged with run context."""
    ship_to(receiver)
    with Flow("dask-failure") as flow:
        boom = explode()

    state = flow.run(executor=executor)
    errors = [r for r in receiver.lines() if r["level"] == "error"]
    flush_here()

    assert state.is_failed()
    task_state = state.result[boom]
    assert task_state.is_failed()
    assert isinstance(task_state.exception, ValueError)
    assert str(task_state.exception) == "boom on the worker"
    assert "ValueError: boom on the worker" in task_state.traceback
    (error,) = [r for r in errors if r["logger"] == "structflow.TaskRunner"]
    assert error["message"] == "Task 'explode': Exception encountered during task execution!"
    assert {k: error[k] for k in RUN_CONTEXT} == {
        "flow_name": "dask-failure",
        "task_name": "explode",
        "map_index": None,
        "task_run_count": 1,
    }
    assert is_uuid(error["flow_run_id"])
    assert is_uuid(error["task_run_id"])
    exception = error["exception"]
    assert exception["type"] == "ValueError"
    assert exception["message"] == "boom on the worker"
    # The worker's traceback names the task's real file and shows its source line.
    assert f'File "{__file__}", line ' in exception["traceback"]
    assert 'raise ValueError("boom on the worker")' in exception["traceback"]


def test_raise_on_exception_raises_a_workers_failure_out_of_run(executor: DaskExecutor) -> None:
    """Prefect 1's debugging aid works when the task fails in another process."""
    with Flow("dask-debugging") as flow:
        explode()

    with raise_on_exception(), pytest.raises(ValueError, match="boom on the worker"):
        flow.run(executor=executor)


@task(name="skip-on-worker")
def skip_on_worker() -> None:
    raise signals.SKIP("nothing on this worker", result={"rows": 0})


def test_signals_from_a_worker_keep_their_state_and_result(executor: DaskExecutor) -> None:
    with Flow("dask-signals") as flow:
        skipped = skip_on_worker()
        after = total([1, 2])

    state = flow.run(executor=executor)
    assert state.is_successful()
    assert isinstance(state.result[skipped], Skipped)
    assert state.result[skipped].result == {"rows": 0}
    assert state.result[after].result == 3


def double_result(obj: Any, old: State, new: State) -> State:
    """A state handler: doubles a successful task run's result."""
    if type(new) is Success:
        structflow.context.get("logger").info("doubling on %s", os.getpid())
        return Success(message="doubled", result=2 * new.result)
    return new


def test_state_handlers_run_on_the_worker_in_the_runs_context(
    executor: DaskExecutor, receiver: HTTPReceiver
) -> None:
    ship_to(receiver)
    counted = total.copy(name="counted")
    counted.state_handlers = (double_result,)
    with Flow("dask-handlers") as flow:
        result = counted([1, 2])

    state = flow.run(executor=executor)
    lines = receiver.lines()
    flush_here()

    assert state.result[result].result == 6
    (note,) = [r for r in lines if r["message"].startswith("doubling on")]
    assert note["task_name"] == "counted" and note["flow_name"] == "dask-handlers"
    assert int(note["message"].split()[-1]) != os.getpid()


def test_retries_on_workers_count_runs(receiver: HTTPReceiver, cluster: Any) -> None:
    """Retries on workers run again and log task_run_count 1, 2, 3 on one task run id."""
    ship_to(receiver)
    with Flow("dask-retries") as flow:
        result = flaky()
    # This test starts (and closes) a cluster of the executor's own.
    executor = DaskExecutor(
        cluster_kwargs={
            "n_workers": 2,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": ":0",
        }
    )

    state = flow.run(executor=executor)
    flush_here()
    records = receiver.lines()

    assert state.is_successful()
    assert state.result[result].result == "third time lucky"
    tries = by_logger(records, "structflow.flaky")
    assert [(r["message"], r["task_run_count"]) for r in tries] == [
        ("try 1", 1),
        ("try 2", 2),
        ("try 3", 3),
    ]
    assert len({r["task_run_id"] for r in tries}) == 1
    assert os.getpid() not in {r["pid"] for r in tries}
    failures = [
        r["task_run_count"]
        for r in by_logger(records, "structflow.TaskRunner")
        if r["message"] == "Task 'flaky': Exception encountered during task execution!"
    ]
    assert failures == [1, 2]
    assert executor.client is None


def test_worker_records_reach_syslog(cluster: Any, executor: DaskExecutor) -> None:
    """With [logging.syslog], workers send RFC 5424 messages with their pid and run context."""
    receiver = SyslogReceiver("tcp")
    try:
        syslog = {"address": receiver.address, "flush_interval": 60.0, "shutdown_timeout": 2.0}
        structflow.configure(stream="none", syslog=syslog)
        with Flow("dask-syslog") as flow:
            square.map([5, 6])
        state = flow.run(executor=executor)
        with receiver.lock:
            messages = [m.decode("utf-8") for m in receiver.messages]
    finally:
        receiver.close()

    assert state.is_successful()
    squares = []
    for message in messages:
        header = message.split(" ", 7)
        payload = json.loads(header[7])
        if payload["logger"].startswith("structflow.square["):
            squares.append((int(header[4]), payload))
    workers = worker_pids(cluster)
    assert sorted((p["message"], p["map_index"], p["flow_name"]) for _, p in squares) == [
        ("squaring 5", 0, "dask-syslog"),
        ("squaring 6", 1, "dask-syslog"),
    ]
    for procid, payload in squares:
        assert procid == payload["pid"]
        assert procid in workers


def normalised(records: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    """
    The records as comparable tuples: per-run uuid4 ids replaced by a marker, and
    what differs on every run (times, pids, record ids, durations) left out.
    """
    out: Counter[tuple[Any, ...]] = Counter()
    for r in records:
        fields = {k: v for k, v in r.items() if k not in ("timestamp", "pid", "_record_id")}
        if "duration_s" in fields:  # lifecycle records: timing differs from run to run
            assert isinstance(fields["duration_s"], float), r
            fields["duration_s"] = "<seconds>"
        for key in ("flow_run_id", "task_run_id"):
            if key in fields:
                assert is_uuid(fields[key]), r
                fields[key] = "<uuid4>"
        out[tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in fields.items()))] += 1
    return out


def run_comparison_flow(executor: Executor, receiver: HTTPReceiver) -> Counter[tuple[Any, ...]]:
    """Run one flow mixing a map, a reducer, a failure and a third-party logger."""
    ship_to(receiver, extra_loggers=["dask_test_lib"])
    with Flow("same-everywhere") as flow:
        squares = square.map(numbers)
        total(squares)
        Shout(name="shout")(word="hello")
        explode()
    with structflow.context(request="req-7"), structflow.bound(tenant="acme"):
        state = flow.run(executor=executor)
    flush_here()
    assert state.is_failed()
    records = receiver.lines()
    assert len({r["flow_run_id"] for r in records}) == 1
    return normalised(records)


def test_same_records_on_every_executor(cluster: Any) -> None:
    """Local, thread and Dask executors produce the same records, ids and pids aside."""
    results = {}
    for executor in (
        LocalExecutor(),
        ThreadExecutor(max_workers=2),
        DaskExecutor(address=cluster.scheduler_address),
    ):
        receiver = HTTPReceiver()
        try:
            results[type(executor).__name__] = run_comparison_flow(executor, receiver)
        finally:
            receiver.close()
            structflow._setup.reset()

    local = results["LocalExecutor"]
    assert results["ThreadExecutor"] == local
    assert results["DaskExecutor"] == local
    messages = {dict(key)["message"] for key in local}
    assert '"shouting hello"' in messages
    assert '"library saw hello"' in messages
    shout = [dict(key) for key in local if dict(key)["message"] == '"shouting hello"']
    assert [(s["request"], s["tenant"], s["task_name"]) for s in shout] == [
        ('"req-7"', '"acme"', '"shout"')
    ]


# --- Dask's loggers and structflow's extra loggers ------------------------------------


def dask_logger_state() -> dict[str, tuple[Any, ...]]:
    """Level, propagation, disabled flag and handlers of every Dask logger in this process."""
    out = {}
    for name, lg in sorted(logging.Logger.manager.loggerDict.items()):
        if isinstance(lg, logging.Logger) and name.split(".")[0] in ("distributed", "dask"):
            handlers = tuple((id(h), type(h).__name__, h.level) for h in lg.handlers)
            out[name] = (lg.level, lg.propagate, lg.disabled, handlers)
    return out


def test_dask_loggers_untouched_unless_listed(
    cluster: Any, executor: DaskExecutor, receiver: HTTPReceiver
) -> None:
    """distributed.* loggers keep level, handlers and propagation, here and on workers."""
    # A Nanny's log handler goes when the Nanny is garbage-collected: collect the
    # ones of clusters closed before this test now, not in the middle of it.
    gc.collect()
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        before_here = dask_logger_state()
        before_workers = client.run(dask_logger_state)
        ship_to(receiver, extra_loggers=["dask_test_lib"], level="DEBUG")
        with Flow("dask-loggers") as flow:
            Shout(name="shout")(word="quiet")
        state = flow.run(executor=executor)
        after_workers = client.run(dask_logger_state)
    after_here = dask_logger_state()
    flush_here()

    assert state.is_successful()
    assert any(name.startswith("distributed.") for name in before_here)
    assert after_here == before_here
    assert after_workers == before_workers
    (library,) = by_logger(receiver.lines(), "dask_test_lib")
    assert library["message"] == "library saw quiet"
    assert library["task_name"] == "shout"
    assert library["flow_name"] == "dask-loggers"


def log_in_task(word: str) -> int:
    structflow.get_logger("direct").info("logged %s", word, pid=os.getpid())
    return os.getpid()


def test_task_records_are_delivered_before_its_result(
    executor: DaskExecutor, receiver: HTTPReceiver
) -> None:
    """A call's records are at the receiver when its result is, in the submitting context."""
    ship_to(receiver)
    with executor.start():
        with structflow.context(flow_name="by-hand"), structflow.bound(job="j-1"):
            future = executor.submit(log_in_task, "early")
        pid = future.result(timeout=30)
        arrived = receiver.lines()

    assert [(r["logger"], r["message"], r["flow_name"], r["job"], r["pid"]) for r in arrived] == [
        ("structflow.direct", "logged early", "by-hand", "j-1", pid)
    ]
    assert pid != os.getpid()


def log_late(settings: Any) -> int:
    """On a worker: log like a thread a task left behind, after the task's own flush."""
    dask_executor._apply_settings(settings)
    structflow.get_logger("late").info("after the last task", pid=os.getpid())
    return os.getpid()


def test_final_flush_delivers_what_workers_still_hold(
    executor: DaskExecutor, receiver: HTTPReceiver
) -> None:
    """Records still queued on the workers are delivered before the executor lets go."""
    ship_to(receiver)
    settings = dask_executor._settings_for(ensure_configured())
    with executor.start():
        assert executor.client is not None
        pids = executor.client.run(log_late, settings)
        waiting = receiver.lines()
    delivered = by_logger(receiver.lines(), "structflow.late")

    assert waiting == []
    assert sorted(r["pid"] for r in delivered) == sorted(pids.values())
    assert len(delivered) == 2


# --- behaviour at the edges --------------------------------------------------------------


def test_values_that_cannot_travel_fail_only_their_task(
    executor: DaskExecutor, receiver: HTTPReceiver
) -> None:
    """An argument that cannot reach a worker, or a result that cannot come back, fails one task."""

    @task(name="make_lock")
    def make_lock() -> Any:
        return threading.Lock()

    @task(name="take_lock")
    def take_lock(lock: Any) -> str:
        return "never runs"

    ship_to(receiver)
    with Flow("dask-unpicklable") as flow:
        back = make_lock()
        send = take_lock(threading.Lock())
        fine = square(3)

    state = flow.run(executor=executor)
    flush_here()

    assert state.result[fine].result == 9
    cannot_send = (
        "DaskExecutor cannot send task 'take_lock' to a worker: its function, arguments or "
        "context do not pickle (TypeError: cannot pickle '_thread.lock' object)"
    )
    cannot_return = (
        "the result of task 'make_lock' cannot be sent back from the worker "
        "(TypeError: cannot pickle '_thread.lock' object)"
    )
    assert state.result[send].is_failed()
    assert str(state.result[send].exception) == cannot_send
    assert state.result[back].is_failed()
    assert str(state.result[back].exception) == cannot_return
    errors = {
        r["task_name"]: r["message"]
        for r in by_logger(receiver.lines(), "structflow.TaskRunner")
        if r["level"] == "error"
    }
    assert sorted(errors) == ["make_lock", "take_lock"]
    assert cannot_send in errors["take_lock"]
    assert cannot_return in errors["make_lock"]


def test_task_code_missing_on_workers_fails_that_task(
    executor: DaskExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Task class from a module the workers cannot import fails with a message naming it."""
    (tmp_path / "only_on_the_client.py").write_text(
        "from structflow.engine import Task\n\n\n"
        "class Local(Task):\n"
        "    def run(self) -> int:\n"
        "        return 1\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("only_on_the_client")
    structflow.configure(stream="none")
    with Flow("dask-missing-code") as flow:
        local = module.Local()()
        fine = square(2)

    state = flow.run(executor=executor)

    assert state.result[fine].result == 4
    assert str(state.result[local].exception) == (
        "the worker cannot load task 'Local' (ModuleNotFoundError: No module named "
        "'only_on_the_client'); the task's code and its modules must be importable on "
        "every worker"
    )


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_receiver_down_does_not_hold_tasks(executor: DaskExecutor) -> None:
    """With nowhere to deliver, tasks still finish and the end of the run says so."""
    gone = HTTPReceiver()
    url = gone.url
    gone.close()
    structflow.configure(stream="none", http={"url": url, "shutdown_timeout": 0.5})
    with Flow("dask-no-receiver") as flow:
        result = total(square.map([1, 2, 3]))
    quick = DaskExecutor(address=executor.address, flush_timeout=0.5)
    diagnostics = Collect()
    shipping = logging.getLogger("structflow.shipping")
    shipping.addHandler(diagnostics)
    try:
        state = flow.run(executor=quick)
    finally:
        shipping.removeHandler(diagnostics)

    assert state.is_successful()
    assert state.result[result].result == 14
    ours = [m for m in diagnostics.messages if m.startswith("DaskExecutor:")]
    assert len(ours) == 1
    assert ours[0].startswith(
        "DaskExecutor: not every worker confirmed delivery of its log records within 0.5 s "
        "when the flow run ended (tcp://127.0.0.1:"
    )


def test_flush_after_a_timeout_waits_again_only_later(
    receiver: HTTPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a timed-out flush, task runs nudge without waiting; a new configuration resets."""
    monkeypatch.setattr(dask_executor, "_behind_at", None)
    monkeypatch.setattr(dask_executor, "_applied", None)
    gone = HTTPReceiver()
    dead_url = gone.url
    gone.close()
    diagnostics = Collect()
    shipping = logging.getLogger("structflow.shipping")
    shipping.addHandler(diagnostics)
    try:
        structflow.configure(stream="none", http={"url": dead_url, "shutdown_timeout": 0.2})
        structflow.get_logger("t").info("cannot be delivered")
        dask_executor._flush_after_task(0.2)
        behind_at = dask_executor._behind_at
        dask_executor._flush_after_task(0.2)
        dask_executor._flush_after_task(0.2)
        ours = [m for m in diagnostics.messages if m.startswith("DaskExecutor:")]

        dask_executor._apply_settings(
            dask_executor._settings_for(structflow.configure(**http_to(receiver)))
        )
        reset = dask_executor._behind_at
        structflow.get_logger("t").info("delivered")
        dask_executor._flush_after_task(5.0)
    finally:
        shipping.removeHandler(diagnostics)

    assert behind_at is not None
    assert len(ours) == 1
    assert ours[0].startswith("DaskExecutor: a task's log records were not all delivered")
    assert reset is None
    assert dask_executor._behind_at is None
    assert [r["message"] for r in receiver.lines()] == ["delivered"]


def test_submit_outside_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="needs a started executor"):
        DaskExecutor().submit(print, "x")


def test_address_and_cluster_options_conflict() -> None:
    with pytest.raises(ValueError, match="apply only to a cluster the executor starts"):
        DaskExecutor(address="tcp://127.0.0.1:8786", cluster_kwargs={"n_workers": 1})


@pytest.mark.parametrize("bad", [-1, "5", True, float("nan"), float("inf")])
def test_flush_timeout_must_be_seconds(bad: Any) -> None:
    with pytest.raises(ValueError, match="flush_timeout"):
        DaskExecutor(flush_timeout=bad)


def test_unknown_cluster_class_is_named() -> None:
    require(distributed is not None, "dask.distributed (pip install 'structflow[dask]')")
    executor = DaskExecutor(cluster_class="no_such_module.Cluster")
    expected = (
        "DaskExecutor(cluster_class='no_such_module.Cluster'): cannot import it "
        "(ModuleNotFoundError: No module named 'no_such_module')"
    )
    with pytest.raises(ValueError) as info, executor.start():
        pass
    assert str(info.value) == expected
    assert executor.client is None


class RefusingCluster:
    """A cluster class that refuses to start, naming the options it was given."""

    def __init__(self, **options: Any) -> None:
        raise ConnectionRefusedError(f"refused with {options}")


@pytest.mark.parametrize("path", ["test_dask.RefusingCluster", "test_dask:RefusingCluster"])
def test_cluster_class_import_path_names_the_class(path: str) -> None:
    """Both spellings of an import path find the class, which gets cluster_kwargs."""
    executor = DaskExecutor(cluster_class=path, cluster_kwargs={"n_workers": 3})
    refused = pytest.raises(ConnectionRefusedError, match=r"refused with \{'n_workers': 3\}")
    with refused, executor.start():
        pass
    assert executor.client is None


@pytest.mark.parametrize("path", ["RefusingCluster", "test_dask:", "not a path"])
def test_cluster_class_that_is_not_an_import_path_says_so(path: str) -> None:
    with pytest.raises(ValueError) as info, DaskExecutor(cluster_class=path).start():
        pass
    assert str(info.value) == (
        f"DaskExecutor(cluster_class={path!r}): expected a class or an import path such as "
        f"'dask_jobqueue.SLURMCluster' or 'dask_jobqueue:SLURMCluster'"
    )


def test_repr_reads_like_the_call() -> None:
    executor = DaskExecutor(cluster_kwargs={"n_workers": 2}, flush_timeout=3)
    assert (
        repr(executor)
        == "DaskExecutor(address=None, cluster_kwargs={'n_workers': 2}, flush_timeout=3.0)"
    )


def test_importing_structflow_does_not_import_dask() -> None:
    code = (
        "import sys, structflow, structflow.engine, structflow.executors.dask as module\n"
        "assert structflow.executors.DaskExecutor is module.DaskExecutor\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))\n"
        "print(loaded)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == "[]"


def test_missing_dask_names_the_extra() -> None:
    """Without the dask extra, starting the executor says what to install."""
    code = (
        "import sys\n"
        "sys.modules['distributed'] = None  # as if it were not installed\n"
        "from structflow.executors.dask import DaskExecutor\n"
        "try:\n"
        "    with DaskExecutor().start():\n"
        "        pass\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.startswith("DaskExecutor needs the 'distributed' package (")
    assert proc.stdout.strip().endswith("install the extra with: pip install 'structflow[dask]'")
