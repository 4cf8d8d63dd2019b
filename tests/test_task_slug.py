"""task_slug: ``<task name>-<n>``, unique in its flow, stable across runs, on every record."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

import structflow
from sample_flows import Collect, add, task_a
from structflow import Flow, Parameter, task
from structflow.formatters import ClassicFormatter, ConsoleFormatter, JsonFormatter, LogfmtFormatter


@task(name="Task B")
def task_b(x: int) -> int:
    structflow.context.get("logger").info("task B got %s", x)
    return x


def slugs_of(records: list[logging.LogRecord], name: str) -> list[Any]:
    return [getattr(r, "task_slug", "<missing>") for r in records if r.name == name]


def test_tasks_get_their_name_and_a_count_as_slug() -> None:
    with Flow("f") as flow:
        first = add(1, 2)
        second = add(first, 3)
        other = task_b(second)
    param = Parameter("p")
    flow.add_task(param)

    assert flow.slugs == {first: "add-1", second: "add-2", other: "Task B-1", param: "p-1"}
    assert flow.get_tasks(slug="add-2") == [second]


def test_slugs_stay_unique_when_names_look_like_slugs() -> None:
    flow = Flow("f", tasks=[add.copy(), add.copy(name="add-1"), add.copy()])

    assert sorted(flow.slugs.values()) == ["add-1", "add-1-1", "add-2"]


def test_a_flow_built_the_same_way_has_the_same_slugs() -> None:
    def build() -> Flow:
        with Flow("f") as flow:
            add(task_b(add(1, 2)), 1)
        return flow

    one, two = build(), build()

    assert [one.slugs[t] for t in one.sorted_tasks()] == ["add-1", "Task B-1", "add-2"]
    assert [two.slugs[t] for t in two.sorted_tasks()] == ["add-1", "Task B-1", "add-2"]


def test_records_of_a_task_run_carry_its_slug(collect: Collect) -> None:
    with Flow("f") as flow:
        task_b(1)
        task_b(2)

    flow.run()

    by_message = {r.getMessage(): r for r in collect.named("structflow.Task B")}
    assert by_message["task B got 1"].task_slug == "Task B-1"  # type: ignore[attr-defined]
    assert by_message["task B got 2"].task_slug == "Task B-2"  # type: ignore[attr-defined]
    runner = collect.named("structflow.TaskRunner")
    assert {r.task_slug for r in runner} == {"Task B-1", "Task B-2"}  # type: ignore[attr-defined]


def test_the_slug_is_the_same_in_every_run_of_a_flow(collect: Collect) -> None:
    with Flow("f") as flow:
        task_b(1)

    flow.run()
    flow.run()

    records = collect.named("structflow.Task B")
    assert len({r.flow_run_id for r in records}) == 2  # type: ignore[attr-defined]
    assert slugs_of(records, "structflow.Task B") == ["Task B-1", "Task B-1"]


def test_the_slug_is_in_the_run_context() -> None:
    seen: list[Any] = []

    @task
    def look() -> None:
        seen.append(structflow.context.get("task_slug"))

    with Flow("f") as flow:
        look()
        look()
    flow.run()

    assert seen == ["look-1", "look-2"]


def test_mapped_children_keep_their_task_slug(collect: Collect) -> None:
    with Flow("f") as flow:
        task_b.map([1, 2])

    flow.run()

    for i in range(2):
        (record,) = collect.named(f"structflow.Task B[{i}]")
        assert (record.task_slug, record.map_index) == ("Task B-1", i)  # type: ignore[attr-defined]


def test_trigger_failed_tasks_carry_their_slug(collect: Collect) -> None:
    @task
    def explode() -> int:
        raise RuntimeError("no")

    with Flow("f") as flow:
        task_b(explode())

    flow.run()

    (skipped,) = [
        r
        for r in collect.named("structflow.TaskRunner")
        if r.getMessage().endswith("'TriggerFailed'")
    ]
    assert skipped.task_slug == "Task B-1"  # type: ignore[attr-defined]


@pytest.fixture
def slug_record(collect: Collect) -> logging.LogRecord:
    with Flow("f") as flow:
        task_b(task_a)
    flow.run()
    (record,) = collect.named("structflow.Task B")
    return record


def test_classic_format_can_show_the_slug(slug_record: logging.LogRecord) -> None:
    formatter = ClassicFormatter(fmt="%(task_slug)s | %(message)s")
    assert formatter.format(slug_record) == "Task B-1 | task B got 3"


def test_json_shows_the_slug_among_the_run_context(slug_record: logging.LogRecord) -> None:
    keys = list(json.loads(JsonFormatter().format(slug_record)))

    assert keys[keys.index("task_name") + 1] == "task_slug"
    assert keys.index("task_slug") < keys.index("task_run_id")


@pytest.mark.parametrize("schema", ["ecs", "datadog", "otel", "gcp"])
def test_every_json_schema_carries_the_slug(slug_record: logging.LogRecord, schema: str) -> None:
    assert '"task_slug":"Task B-1"' in JsonFormatter(json_schema=schema).format(slug_record)


def test_logfmt_and_console_show_the_slug(slug_record: logging.LogRecord) -> None:
    assert 'task_slug="Task B-1"' in LogfmtFormatter().format(slug_record)
    assert "task_slug=Task B-1" in ConsoleFormatter(colors=False).format(slug_record)
