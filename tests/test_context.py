"""structflow.context and structflow.bound."""

from __future__ import annotations

import datetime as dt
import logging
import threading

import pytest

import structflow
from sample_flows import Collect
from structflow import context


def test_context_is_empty_outside_blocks() -> None:
    assert context.get("flow_name") is None
    assert context.get("missing", 5) == 5
    assert "flow_name" not in context
    with pytest.raises(KeyError):
        context["flow_name"]
    with pytest.raises(AttributeError):
        _ = context.flow_name


def test_with_block_adds_and_removes_keys() -> None:
    with context(flow_name="f", user_key=1):
        assert context["flow_name"] == "f"
        assert context.user_key == 1
        with context(flow_name="g"):
            assert context.get("flow_name") == "g"
            assert context.get("user_key") == 1
        assert context.flow_name == "f"
    assert dict(context) == {"logger": structflow.get_logger()}


def test_context_is_read_only() -> None:
    with pytest.raises(TypeError, match="read-only"):
        context.flow_name = "x"


def test_bound_is_a_decorator_with_fresh_state_per_call() -> None:
    seen = []

    @structflow.bound(request_id="r-1")
    def work() -> None:
        from structflow._context import current_fields

        seen.append(dict(current_fields()))

    work()
    work()
    assert seen == [{"request_id": "r-1"}, {"request_id": "r-1"}]


def test_threads_do_not_share_context() -> None:
    seen: list[object] = []
    with context(flow_name="main"):
        t = threading.Thread(target=lambda: seen.append(context.get("flow_name")))
        t.start()
        t.join(5)
    assert seen == [None]


def test_snapshot_restore_round_trip() -> None:
    with context(flow_name="f", parameters={"x": 1}), structflow.bound(k="v"):
        snap = context.snapshot()
    with context.restore(snap):
        from structflow._context import current_fields

        assert context.flow_name == "f"
        assert dict(current_fields()) == {"flow_name": "f", "k": "v"}


# --- Prefect 1's habits ------------------------------------------------------------


def test_logger_outside_any_run_is_the_root_logger() -> None:
    root = structflow.get_logger()
    assert (context.get("logger"), context["logger"], context.logger) == (root, root, root)


def test_logger_outside_any_run_is_configured() -> None:
    """Helper code logs through it before anything else used structflow."""
    import structflow._setup as setup

    context.get("logger").info("from a helper")
    assert setup._current is not None


def test_logger_is_always_a_key() -> None:
    assert ("logger" in context, len(context), list(context)) == (True, 1, ["logger"])


def test_logger_set_by_a_block_wins_over_the_root_logger() -> None:
    task_logger = structflow.get_logger("Task B")
    with context(logger=task_logger):
        assert (context.get("logger"), list(context)) == (task_logger, ["logger"])


def test_logger_during_a_task_run_is_the_task_logger() -> None:
    seen = []

    @structflow.task(name="Helper user")
    def work() -> None:
        seen.append(context.get("logger"))

    with structflow.Flow("f") as flow:
        work()
    flow.run()
    assert seen == [structflow.get_logger("Helper user")]


def test_a_task_run_has_prefect_1s_date_keys_and_full_name() -> None:
    seen: list[dict[str, object]] = []

    @structflow.task(name="fetch")
    def fetch(i: int) -> None:
        seen.append(context.to_dict())

    with structflow.Flow("f") as flow:
        fetch.map([0, 1])
    before = dt.datetime.now(dt.UTC)
    assert flow.run().is_successful()
    after = dt.datetime.now(dt.UTC)
    assert sorted(c["task_full_name"] for c in seen) == ["fetch[0]", "fetch[1]"]  # type: ignore[type-var]
    first = seen[0]
    start = first["date"]
    assert isinstance(start, dt.datetime) and before <= start <= after
    assert first["scheduled_start_time"] == start
    day = start.date()
    assert (first["today"], first["today_nodash"]) == (day.isoformat(), day.strftime("%Y%m%d"))
    assert first["yesterday"] == (day - dt.timedelta(days=1)).isoformat()
    assert first["tomorrow_nodash"] == (day + dt.timedelta(days=1)).strftime("%Y%m%d")
    assert all(c["date"] == start for c in seen)  # one flow run, one start


def test_run_context_keys_win_over_the_dates_as_in_prefect_1() -> None:
    seen: list[dict[str, object]] = []

    @structflow.task
    def report() -> None:
        seen.append(context.to_dict())

    with structflow.Flow("f") as flow:
        report()

    assert flow.run(context={"today": "2024-01-31", "tenant": "acme"}).is_successful()
    assert (seen[0]["today"], seen[0]["tenant"], seen[0]["flow_name"]) == (
        "2024-01-31",
        "acme",
        "f",
    )
    start = seen[0]["date"]
    assert isinstance(start, dt.datetime)  # the others still come from the run's start
    assert seen[0]["yesterday"] == (start.date() - dt.timedelta(days=1)).isoformat()
    with pytest.raises(TypeError, match=r"run\(context=\.\.\.\) cannot set 'flow_run_id'"):
        flow.run(context={"flow_run_id": "mine"})
    with pytest.raises(TypeError, match="takes a mapping of context keys"):
        flow.run(context=[("today", "x")])  # type: ignore[arg-type]


def test_context_takes_a_mapping() -> None:
    with context({"flow_name": "f", "user key": 1}):
        assert (context.flow_name, context["user key"]) == ("f", 1)


def test_keywords_win_over_the_mapping() -> None:
    with context({"a": 1, "b": 2}, b=3):
        assert (context.a, context.b) == (1, 3)


def test_run_keys_given_in_a_mapping_are_stamped_on_records(collect: Collect) -> None:
    with context({"flow_name": "f", "task_run_id": "t-1"}):
        structflow.get_logger("x").info("hi")
    [record] = collect.records
    assert (vars(record)["flow_name"], vars(record)["task_run_id"]) == ("f", "t-1")


def test_context_refuses_what_is_not_a_mapping() -> None:
    with pytest.raises(TypeError, match=r"takes a mapping of keys, or keywords; got list"):
        context([("a", 1)])  # type: ignore[arg-type]


def test_context_refuses_keys_that_are_not_strings() -> None:
    with pytest.raises(TypeError, match=r"keys must be strings; got 1 \(int\)"):
        context({1: "a"})  # type: ignore[dict-item]


# --- [logging] log_attributes -------------------------------------------------------


def test_log_attributes_are_stamped_from_the_context(collect: Collect) -> None:
    structflow.configure(stream="none", level="DEBUG", log_attributes=["user_id", "region"])
    with context(user_id=42, region="eu"):
        structflow.get_logger("x").info("hi")
    [record] = collect.records
    assert (vars(record)["user_id"], vars(record)["region"]) == (42, "eu")
    assert vars(record)["structflow_fields"] == ("user_id", "region")


def test_log_attributes_absent_from_the_context_are_none(collect: Collect) -> None:
    """As Prefect 1 did: a handler or format string that reads the attribute still works."""
    structflow.configure(stream="none", level="DEBUG", log_attributes=["user_id"])
    structflow.get_logger("x").info("hi")
    [record] = collect.records
    assert (vars(record)["user_id"], vars(record)["structflow_fields"]) == (None, ("user_id",))


def test_log_attributes_follow_the_run_context(collect: Collect) -> None:
    structflow.configure(stream="none", level="DEBUG", log_attributes=["user_id"])
    with context(flow_name="f"), structflow.bound(request_id="r-1"), context(user_id=7):
        structflow.get_logger("x").info("hi")
    [record] = collect.records
    assert vars(record)["structflow_fields"] == ("flow_name", "user_id", "request_id")


def test_log_attributes_reach_other_libraries_records(collect: Collect) -> None:
    structflow.configure(stream="none", level="DEBUG", log_attributes=["user_id"])
    other = logging.getLogger("some.library")
    other.addHandler(collect)
    try:
        with context(user_id=5):
            other.warning("from a library")
    finally:
        other.removeHandler(collect)
    [record] = [r for r in collect.records if r.name == "some.library"]
    assert vars(record)["user_id"] == 5


def test_log_attributes_reach_structlog_records(collect: Collect) -> None:
    import structlog

    structflow.configure(stream="none", level="DEBUG", log_attributes=["user_id"])
    with context(user_id=9):
        structlog.get_logger("structflow.sl").info("from structlog")
    [record] = [r for r in collect.records if r.getMessage() == "from structlog"]
    assert vars(record)["user_id"] == 9


def test_log_attributes_apply_to_a_block_entered_before_structflow_read_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The configuration is read at first use, which may be inside the block."""
    monkeypatch.setenv("STRUCTFLOW__LOGGING__LOG_ATTRIBUTES", "user_id")
    monkeypatch.setenv("STRUCTFLOW__LOGGING__STREAM", "none")
    collect = Collect()
    with context(user_id=3):
        logger = structflow.get_logger("x")
        logger.addHandler(collect)
        logger.warning("hi")
        logger.removeHandler(collect)
    [record] = collect.records
    assert vars(record)["user_id"] == 3


def test_without_log_attributes_nothing_more_is_stamped(collect: Collect) -> None:
    with context(user_id=1):
        structflow.get_logger("x").info("hi")
    [record] = collect.records
    assert (vars(record)["structflow_fields"], hasattr(record, "user_id")) == ((), False)


def test_log_attributes_follow_tasks_into_executor_threads(collect: Collect) -> None:
    from structflow.executors import ThreadExecutor

    structflow.configure(stream="none", level="DEBUG", log_attributes=["user_id"])

    @structflow.task(name="Threaded")
    def threaded() -> None:
        structflow.context.get("logger").info("in a thread")

    with structflow.Flow("f") as flow:
        threaded()
    with context(user_id="u-7"):
        assert flow.run(executor=ThreadExecutor(max_workers=2)).is_successful()
    [record] = [r for r in collect.records if r.getMessage() == "in a thread"]
    assert vars(record)["user_id"] == "u-7"
