"""States of task and flow runs, and how they cross process boundaries."""

from __future__ import annotations

import pickle
import threading

import pytest

from structflow.engine import (
    Failed,
    Mapped,
    Pending,
    RemoteTaskError,
    Retrying,
    Running,
    State,
    Success,
    TriggerFailed,
)

PREDICATES = (
    "is_pending",
    "is_running",
    "is_finished",
    "is_successful",
    "is_failed",
    "is_retrying",
    "is_mapped",
)


@pytest.mark.parametrize(
    ("state", "true"),
    [
        (Pending(), {"is_pending"}),
        (Running(), {"is_running"}),
        (Success(result=1), {"is_finished", "is_successful"}),
        (Mapped(result=[1]), {"is_finished", "is_successful", "is_mapped"}),
        (Failed(), {"is_finished", "is_failed"}),
        (TriggerFailed(), {"is_finished", "is_failed"}),
        (Retrying(), {"is_pending", "is_retrying"}),
    ],
)
def test_predicates_tell_the_kind_of_state(state: State, true: set[str]) -> None:
    assert {name for name in PREDICATES if getattr(state, name)()} == true


def test_a_failed_states_result_is_its_exception() -> None:
    exc = KeyError("missing")
    assert Failed("it broke", exception=exc).result is exc


def test_repr_shows_the_kind_and_the_message() -> None:
    assert (repr(Success("done")), repr(Pending())) == ("<Success: 'done'>", "<Pending>")


def test_failed_state_with_an_unpicklable_exception_still_pickles() -> None:
    class Holder(Exception):
        def __init__(self) -> None:
            super().__init__("holds a lock")
            self.lock = threading.Lock()

    exc = Holder()
    state = Failed("it broke", exception=exc, traceback="Traceback ...")
    copy = pickle.loads(pickle.dumps(state))
    assert isinstance(copy.exception, RemoteTaskError)
    assert str(copy.exception).endswith("Holder: holds a lock")
    assert copy.result is copy.exception
    assert (copy.message, copy.traceback) == ("it broke", "Traceback ...")


def test_a_picklable_exception_crosses_unchanged() -> None:
    state = Retrying("again", exception=ValueError("bad value"), run_count=2)
    copy = pickle.loads(pickle.dumps(state))
    assert (type(copy.exception), str(copy.exception), copy.run_count) == (
        ValueError,
        "bad value",
        2,
    )
