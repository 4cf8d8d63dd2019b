"""structflow.context and structflow.bound."""

from __future__ import annotations

import threading

import pytest

import structflow
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
    assert dict(context) == {}


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
