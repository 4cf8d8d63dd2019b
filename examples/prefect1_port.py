"""
A Prefect 1 flow ported to structflow by renaming its imports.

Written as Prefect 1 code is: a Parameter given by name, a branch with
``case``/``merge``, a task that skips itself with a signal, a clean-up task
on ``all_finished``, a state handler that reports failures, a task returning
two results, ``task()[key]``, retries and the task loggers. Every
``structflow`` below was ``prefect``.

Run: ``python examples/prefect1_port.py [day]``; it prints the final
states and exits 1 if the flow run failed.
"""

from __future__ import annotations

import sys
from datetime import timedelta

import structflow
from structflow import Flow, Parameter, Task, case, merge, task
from structflow.engine import State
from structflow.engine.signals import FAIL, SKIP
from structflow.triggers import all_finished

FAILURES: list[str] = []


def report_failure(task: Task, old_state: State, new_state: State) -> State:
    """A Prefect 1 state handler: note failed runs, keep the state."""
    if new_state.is_failed():
        structflow.context.get("logger").warning("reporting failure: %s", new_state.message)
        FAILURES.append(task.name)
    return new_state


@task
def is_weekend(day: str) -> bool:
    return day in ("sat", "sun")


@task(nout=2)
def extract(day: str) -> tuple[list[int], dict[str, str]]:
    logger = structflow.context.get("logger")
    logger.info("extracting orders of %s", day)
    return [3, 1, 2], {"source": "orders-db", "day": day}


@task(max_retries=2, retry_delay=timedelta(seconds=0), state_handlers=[report_failure])
def validate(rows: list[int]) -> list[int]:
    if not rows:
        raise FAIL("no rows to load")
    if structflow.context.get("task_run_count") < 2:
        raise ConnectionError("validator warming up")  # the retry succeeds
    return sorted(rows)


@task
def load(rows: list[int], source: str) -> str:
    structflow.context.get("logger").info("loading %d rows from %s", len(rows), source)
    return f"loaded {len(rows)}"


@task
def weekend_report(day: str) -> str:
    raise SKIP(f"no report on {day}")


@task(trigger=all_finished)
def clean_up() -> str:
    structflow.context.get("logger").info("removing temporary files")
    return "clean"


with Flow("orders") as flow:
    day = Parameter("day", default="mon")
    rows, meta = extract(day)
    weekend = is_weekend(day)
    with case(weekend, False):
        loaded = load(validate(rows), meta["source"])
    with case(weekend, True):
        reported = weekend_report(day)
    outcome = merge(loaded, reported)
    clean_up(upstream_tasks=[outcome])


if __name__ == "__main__":
    state = flow.run(day=sys.argv[1] if len(sys.argv) > 1 else "mon")
    for t, s in sorted(state.result.items(), key=lambda item: item[0].name):
        print(f"{t.name}: {type(s).__name__}")
    print(f"flow: {type(state).__name__}; failures reported: {FAILURES}")
    sys.exit(0 if state.is_successful() else 1)
