"""Store.run and Store.runs: flow runs derived from lifecycle records; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from storelines import T0, lifecycle, line
from structflow.store import RunSummary, Store, TaskRunSummary


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_a_finished_run_has_its_state_timing_counts_and_task_runs(store: Store) -> None:
    store.ingest(
        [
            *lifecycle("r1", tasks=(("t1", "extract", "Success"), ("t2", "load", "Failed"))),
            line("a warning", seconds=2.5, level="warning", flow_run_id="r1", task_run_id="t2"),
        ]
    )
    assert store.run("r1") == RunSummary(
        flow_run_id="r1",
        flow_name="etl",
        state="Success",
        started=at(0),
        ended=at(5),
        duration_s=5.0,
        counts={"info": 6, "warning": 1},
        task_runs=[
            TaskRunSummary("t1", "extract", None, "Success", at(1), at(2), 1.0, 1),
            TaskRunSummary("t2", "load", None, "Failed", at(3), at(4), 1.0, 1),
        ],
    )


def test_a_run_still_going_is_running_with_no_end(store: Store) -> None:
    store.ingest(lifecycle("r1", state=None, tasks=(("t1", "extract", None),)))
    summary = store.run("r1")
    assert summary is not None
    assert (summary.state, summary.ended, summary.duration_s) == ("Running", None, None)
    assert [(t.state, t.ended, t.duration_s) for t in summary.task_runs] == [
        ("Running", None, None)
    ]


def test_a_retried_task_run_counts_its_tries_and_ends_with_its_final_state(store: Store) -> None:
    context = {"flow_run_id": "r1", "task_run_id": "t1", "task_name": "flaky"}
    store.ingest(
        [
            line("start", seconds=0, lifecycle="task_run_started", **context),
            line("retry", seconds=1, lifecycle="task_run_retrying", state="Retrying", **context),
            line("start", seconds=3, lifecycle="task_run_started", **context),
        ]
    )
    summary = store.run("r1")
    assert summary is not None
    assert summary.task_runs == [
        TaskRunSummary("t1", "flaky", None, "Running", at(0), None, None, 2)
    ]
    store.ingest(
        [line("end", seconds=4, lifecycle="task_run_finished", state="Success", **context)]
    )
    summary = store.run("r1")
    assert summary is not None
    assert summary.task_runs == [
        TaskRunSummary("t1", "flaky", None, "Success", at(0), at(4), 4.0, 2)
    ]


def test_a_task_that_never_ran_has_its_end_as_its_start(store: Store) -> None:
    store.ingest(
        [
            line(
                "Task 'b': Finished task run for task with final state: 'TriggerFailed'",
                seconds=2,
                flow_run_id="r1",
                task_run_id="t9",
                task_name="b",
                lifecycle="task_run_finished",
                state="TriggerFailed",
                duration_s=0.0,
            )
        ]
    )
    summary = store.run("r1")
    assert summary is not None
    assert summary.task_runs == [
        TaskRunSummary("t9", "b", None, "TriggerFailed", at(2), at(2), 0.0, 0)
    ]


def test_a_run_without_lifecycle_records_has_no_state(store: Store) -> None:
    store.ingest(
        [
            line("x", seconds=1, flow_run_id="r1", flow_name="adhoc"),
            line("y", seconds=3, flow_run_id="r1"),
        ]
    )
    assert store.run("r1") == RunSummary("r1", "adhoc", None, at(1), None, None, {"info": 2}, [])


def test_an_unknown_run_is_none(store: Store) -> None:
    assert store.run("nope") is None


def test_runs_lists_newest_first_with_filters(store: Store) -> None:
    store.ingest(
        [
            *lifecycle("old", start=0, state="Success"),
            *lifecycle("failed", start=100, state="Failed"),
            *lifecycle("going", start=200, state=None, flow="report"),
        ]
    )
    assert [r.flow_run_id for r in store.runs()] == ["going", "failed", "old"]
    assert [r.flow_run_id for r in store.runs(state="failed")] == ["failed"]
    assert [r.flow_run_id for r in store.runs(state="Running")] == ["going"]
    assert [r.flow_run_id for r in store.runs(flow_name="etl")] == ["failed", "old"]
    assert [r.flow_run_id for r in store.runs(limit=1)] == ["going"]
    # Active since then: finished after it, or still running.
    assert [r.flow_run_id for r in store.runs(since=at(50))] == ["going", "failed"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"state": 3}, "state=3 is invalid; expected a string"),
        ({"since": "soon"}, "since='soon' is not a time"),
        ({"limit": -1}, "limit=-1 is invalid"),
        ({"flow_name": b"x"}, "flow_name=b'x' is invalid"),
    ],
)
def test_bad_runs_filters_raise_value_errors(
    store: Store, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        store.runs(**kwargs)  # type: ignore[arg-type]


def test_run_needs_a_string_id(store: Store) -> None:
    with pytest.raises(ValueError, match="flow_run_id=None is invalid"):
        store.run(None)  # type: ignore[arg-type]


def test_summaries_convert_to_json_ready_dicts(store: Store) -> None:
    store.ingest(lifecycle("r1", tasks=(("t1", "extract", "Success"),)))
    summary = store.run("r1")
    assert summary is not None
    assert summary.to_dict() == {
        "flow_run_id": "r1",
        "flow_name": "etl",
        "state": "Success",
        "started": "2024-06-01T12:00:00.000000Z",
        "ended": "2024-06-01T12:00:03.000000Z",
        "duration_s": 3.0,
        "counts": {"info": 4},
        "task_runs": [
            {
                "task_run_id": "t1",
                "task_name": "extract",
                "map_index": None,
                "state": "Success",
                "started": "2024-06-01T12:00:01.000000Z",
                "ended": "2024-06-01T12:00:02.000000Z",
                "duration_s": 1.0,
                "tries": 1,
            }
        ],
    }
