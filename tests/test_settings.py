"""The shipping options: one set of names and defaults for every shipping handler."""

from __future__ import annotations

import inspect
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

import structflow
from structflow.handlers import HTTPHandler, ShippingHandler, StoreHandler, SyslogHandler
from structflow.handlers.shipping.settings import ShippingOptions, WorkerSettings

SHIPPING_OPTIONS = {
    "level": "NOTSET",
    **{f.name: f.default for f in fields(WorkerSettings)},
}


def trailing_keywords(cls: type, n: int) -> dict[str, Any]:
    """The last *n* keyword parameters of *cls* with their defaults, as inspect shows them."""
    parameters = list(inspect.signature(cls).parameters.values())[-n:]
    return {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY}


@pytest.mark.parametrize("cls", [HTTPHandler, SyslogHandler, ShippingHandler])
def test_every_shipping_handler_shows_the_same_options_with_the_same_defaults(cls: type) -> None:
    assert trailing_keywords(cls, len(SHIPPING_OPTIONS)) == SHIPPING_OPTIONS


def test_the_store_handler_shows_the_same_options_with_larger_batches() -> None:
    larger = {"batch_max_records": 10_000, "batch_max_bytes": 4_194_304}
    assert trailing_keywords(StoreHandler, len(SHIPPING_OPTIONS)) == {**SHIPPING_OPTIONS, **larger}


def test_the_store_handlers_batches_are_larger_unless_set_and_give_way_to_a_small_queue(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'logs.db'}"
    handlers = [
        StoreHandler(url),
        StoreHandler(url, batch_max_records=5000, batch_max_bytes=1_048_576),
        StoreHandler(url, max_queue_bytes=1_048_576),
    ]
    try:
        default, as_others, small_queue = handlers
        assert repr(default) == f"StoreHandler({url!r})"
        assert repr(as_others) == (
            f"StoreHandler({url!r}, batch_max_records=5000, batch_max_bytes=1048576)"
        )
        assert repr(small_queue) == f"StoreHandler({url!r}, max_queue_bytes=1048576)"
        batches = [(h._worker._batch_records, h._worker._batch_bytes) for h in handlers]
        assert batches == [(10_000, 4_194_304), (5000, 1_048_576), (10_000, 524_288)]
    finally:
        for handler in handlers:
            handler.close()


def test_the_typed_options_are_the_shown_ones() -> None:
    """What type checkers see for **options is what inspect and the docs list."""
    assert set(ShippingOptions.__optional_keys__) == set(SHIPPING_OPTIONS)
    assert ShippingOptions.__required_keys__ == frozenset()


def test_an_unknown_keyword_is_refused_naming_it_and_every_keyword_allowed() -> None:
    own = ["url", "encoding", "gzip", "timeout", "headers", "verify", "token", "index", "labels"]
    allowed = ", ".join([*own, "service", *SHIPPING_OPTIONS])
    with pytest.raises(TypeError) as info:
        HTTPHandler("http://127.0.0.1:1/", gzp=True)  # type: ignore[call-arg]
    assert str(info.value) == (
        f"HTTPHandler: unknown keyword argument 'gzp'; expected one of {allowed}"
    )


def test_an_unknown_key_in_a_handler_section_is_a_config_error() -> None:
    with pytest.raises(structflow.ConfigError, match=r"\[logging.syslog\] SyslogHandler: unknown "):
        structflow.configure(syslog={"address": "tcp://127.0.0.1:1", "facilty": "local0"})


def test_a_queue_smaller_than_one_batch_is_refused_naming_both_keys() -> None:
    with pytest.raises(ValueError) as info:
        HTTPHandler("http://127.0.0.1:1/", max_queue_bytes=65_536, batch_max_bytes=1_048_576)
    assert str(info.value) == (
        "HTTPHandler: max_queue_bytes=65536 is smaller than batch_max_bytes=1048576: "
        "the queue could never hold one batch; raise max_queue_bytes or lower batch_max_bytes"
    )


def test_a_small_queue_alone_is_accepted() -> None:
    """The default batch_max_bytes gives way to a smaller max_queue_bytes given alone."""
    handler = HTTPHandler("http://127.0.0.1:1/", max_queue_bytes=65_536)
    handler.close()
    assert "max_queue_bytes=65536" in repr(handler)
