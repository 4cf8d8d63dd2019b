"""Store.runs pages with cursors, as Store.logs does, on both backends."""

from __future__ import annotations

import pytest

from storelines import lifecycle
from structflow.store import Store


def _ids(runs: list) -> list[str]:  # type: ignore[type-arg]
    return [r.flow_run_id for r in runs]


def test_runs_page_by_page_with_the_cursor_of_the_last_run(store: Store) -> None:
    store.ingest([line for n in range(5) for line in lifecycle(f"r{n}", start=n * 10)])
    first = store.runs(limit=2)
    second = store.runs(limit=2, after=first[-1].cursor)
    third = store.runs(limit=2, after=second[-1].cursor)
    assert [_ids(first), _ids(second), _ids(third)] == [["r4", "r3"], ["r2", "r1"], ["r0"]]


def test_runs_that_started_at_the_same_moment_are_neither_skipped_nor_repeated(
    store: Store,
) -> None:
    store.ingest([line for run in ("a", "b", "c") for line in lifecycle(run, start=0)])
    pages, after = [], None
    while True:
        page = store.runs(limit=1, after=after)
        if not page:
            break
        pages.append(page[0].flow_run_id)
        after = page[0].cursor
    assert pages == ["c", "b", "a"]


def test_a_page_keeps_its_place_when_newer_runs_arrive(store: Store) -> None:
    store.ingest([line for n in range(3) for line in lifecycle(f"r{n}", start=n * 10)])
    first = store.runs(limit=2)
    store.ingest(lifecycle("newest", start=100))
    assert _ids(store.runs(limit=2, after=first[-1].cursor)) == ["r0"]


def test_a_summary_from_run_has_no_cursor(store: Store) -> None:
    store.ingest(lifecycle("r1"))
    assert (store.run("r1").cursor, store.runs()[0].cursor != "") == ("", True)  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", ["", "nope", "AAAAAAAAAAA!", 3])
def test_a_bad_run_cursor_is_refused_with_its_name(store: Store, bad: object) -> None:
    with pytest.raises(ValueError, match=r"^after=.* is not a run cursor"):
        store.runs(after=bad)  # type: ignore[arg-type]
