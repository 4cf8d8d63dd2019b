"""StoreHandler and [logging.store]: records into the store from the shipping worker."""

from __future__ import annotations

import logging
import random
import re
import socket
import string
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest

import structflow
from receivers import collected
from storelines import attached, line, refuse_poison
from structflow import store
from structflow.formatters import ClassicFormatter, JsonFormatter
from structflow.handlers import StoreHandler

CONTEXT = {"flow_name": "etl", "flow_run_id": "run-1", "task_name": "load", "task_run_id": "t-1"}


@pytest.fixture
def handler(store_url: str) -> Iterator[StoreHandler]:
    """A StoreHandler on a logger of its own (not propagating), closed afterwards."""
    made = StoreHandler(store_url, flush_interval=60.0)
    with attached(made, "stored"):
        yield made


def test_records_are_stored_with_their_context_and_fields(
    handler: StoreHandler, store_url: str
) -> None:
    logger = structflow.get_logger("stored")
    with structflow.context(**CONTEXT):
        logger.info("loaded %s rows", 3, rows=3, table="users")
        try:
            raise ValueError("bad row")
        except ValueError:
            logger.exception("failed")
    assert handler.flush(timeout=30) is True
    with store.connect(store_url) as s:
        ok, failed = s.logs()
    assert (ok.message, ok.level, ok.logger, ok.flow_run_id, ok.task_name) == (
        "loaded 3 rows",
        "info",
        "structflow.stored",
        "run-1",
        "load",
    )
    assert ok.fields == {"rows": 3, "table": "users"}
    assert failed.exception is not None
    assert failed.exception.endswith("ValueError: bad row")


def test_flush_is_a_barrier_for_every_record_accepted_before_it(
    handler: StoreHandler, store_url: str
) -> None:
    logger = structflow.get_logger("stored")
    for i in range(3000):
        logger.info("record %s", i)
    assert handler.flush(timeout=60) is True
    with store.connect(store_url) as s:
        assert len(s.logs(limit=None)) == 3000
    stats = handler.stats()
    assert (stats["accepted"], stats["delivered"], sum(stats["dropped"].values())) == (
        3000,
        3000,
        0,
    )


def test_a_level_unknown_elsewhere_keeps_its_number(
    handler: StoreHandler, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(logging._levelToName, 25, "NOTICE")
    structflow.get_logger("stored").log(25, "noticed")
    assert handler.flush(timeout=30) is True
    with store.connect(store_url) as s:
        assert [(e.level, e.levelno) for e in s.logs()] == [("notice", 25)]


def test_a_record_with_a_name_too_long_for_an_index_holds_up_no_other(
    handler: StoreHandler, store_url: str
) -> None:
    logger = structflow.get_logger("stored")
    # Letters at random: PostgreSQL cannot compress them to fit an index entry.
    name = "".join(random.Random(3).choices(string.ascii_letters, k=30_000))
    logger.info("before")
    with structflow.context(flow_name=name, flow_run_id="run-long"):
        logger.info("named at length")
    logger.info("after")
    assert handler.flush(timeout=30) is True
    stats = handler.stats()
    assert (stats["delivered"], stats["retried"], sum(stats["dropped"].values())) == (3, 0, 0)
    with store.connect(store_url) as s:
        assert [e.message for e in s.logs()] == ["before", "named at length", "after"]
        (long,) = s.logs(flow_name=name)
    assert long.flow_run_id == "run-long"
    assert long.flow_name is not None and long.flow_name.startswith(name[:900])


def test_an_entry_the_database_refuses_is_set_aside_and_the_rest_stored(
    handler: StoreHandler, store_url: str
) -> None:
    with store.connect(store_url) as s:
        refuse_poison(s)
    logger = structflow.get_logger("stored")
    with collected("structflow.shipping") as said:
        for message in ("one", "two", "poison", "three", "four"):
            logger.info(message)
        assert handler.flush(timeout=30) is True
    stats = handler.stats()
    assert (stats["delivered"], stats["dropped"]["rejected"], stats["retried"]) == (4, 1, 0)
    assert stats["delivered_bytes"] > 0
    with store.connect(store_url) as s:
        assert [e.message for e in s.logs()] == ["one", "two", "three", "four"]
    (said_once,) = said.messages()
    assert "rejected 1 record(s) (the database refused it: " in said_once, said_once


def test_records_the_store_cannot_take_are_dropped_and_counted(
    handler: StoreHandler, store_url: str
) -> None:
    def drop_message(
        _logger: Any, _name: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event.pop("message", None)
        return event

    handler.setFormatter(JsonFormatter(processors=[drop_message]))
    structflow.get_logger("stored").info("lost")
    assert handler.flush(timeout=30) is True
    assert handler.stats()["dropped"]["encode_error"] == 1


def test_retention_prunes_old_entries_once_records_flow(store_url: str) -> None:
    with store.connect(store_url) as s:
        s.ingest([line("from 2024")])
    made = StoreHandler(store_url, retention_days=1)
    with attached(made, "retained") as logger:
        logger.warning("today")
        assert made.flush(timeout=30) is True
    with store.connect(store_url) as s:
        assert [e.message for e in s.logs()] == ["today"]


def test_a_backlog_of_old_entries_is_pruned_a_slice_per_batch(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from structflow.store import _retention as retention

    monkeypatch.setattr(retention, "PRUNE_SLICE", 10)
    with store.connect(store_url) as s:
        s.ingest([line(f"old {i}", seconds=i) for i in range(35)])
    made = StoreHandler(store_url, retention_days=1)
    left = []
    with attached(made, "retained") as logger, store.connect(store_url) as s:
        for message in ("a", "b", "c", "d", "e"):
            logger.warning(message)
            assert made.flush(timeout=30) is True
            left.append(len(s.logs(until="1d", limit=None)))
        # Caught up: the next prune is an hour away, whatever lands meanwhile.
        s.ingest([line("old again", seconds=100)])
        logger.warning("f")
        assert made.flush(timeout=30) is True
        assert [e.message for e in s.logs(until="1d")] == ["old again"]
        assert [e.message for e in s.logs(since="1d")] == ["a", "b", "c", "d", "e", "f"]
    assert left == [25, 15, 5, 0, 0]


def test_an_unreachable_store_is_retried_and_never_raises_into_the_caller() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    made = StoreHandler(
        f"postgresql://u:secret@127.0.0.1:{port}/db",
        timeout=1.0,
        retry_backoff=0.05,
        retry_max_backoff=0.1,
        shutdown_timeout=0.5,
    )
    with attached(made, "unreachable") as logger:
        logger.error("kept in memory")
        assert made.flush(timeout=1.0) is False
        assert made.stats()["retried"] >= 1
    assert made.stats()["dropped"]["shutdown"] == 1


def test_the_store_section_puts_a_store_handler_on_the_structflow_logger(
    store_url: str,
) -> None:
    structflow.configure(stream="none", store={"url": store_url})
    handlers = [h for h in structflow.get_logger().handlers if isinstance(h, StoreHandler)]
    assert len(handlers) == 1
    with structflow.context(**CONTEXT):
        structflow.get_logger("Task B").info("via config")
    assert handlers[0].flush(timeout=30) is True
    with store.connect() as s:  # the configured store
        assert [(e.message, e.flow_run_id) for e in s.logs()] == [("via config", "run-1")]


def test_the_environment_names_the_store_and_json_schema_does_not_change_it(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRUCTFLOW__LOGGING__STORE__URL", store_url)
    monkeypatch.setenv("STRUCTFLOW__LOGGING__JSON_SCHEMA", "ecs")
    structflow.configure(stream="none")
    structflow.get_logger("Task B").warning("schema-proof")
    for h in structflow.get_logger().handlers:
        if isinstance(h, StoreHandler):
            assert h.flush(timeout=30) is True
    with store.connect() as s:
        assert [(e.message, e.level) for e in s.logs()] == [("schema-proof", "warning")]


def test_a_bad_store_url_in_the_configuration_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STRUCTFLOW__LOGGING__STORE__URL", "mysql://db/logs")
    with pytest.raises(structflow.ConfigError, match="STRUCTFLOW__LOGGING__STORE__URL") as caught:
        structflow.configure(stream="none")
    assert "unknown scheme 'mysql'" in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "ftp://x/y"}, "StoreHandler: store url='ftp://x/y' has an unknown scheme 'ftp'"),
        ({"url": 3}, "StoreHandler: url=3 is invalid; expected a store url"),
        (
            {"url": "sqlite:///x.db", "retention_days": -1},
            "StoreHandler: retention_days=-1 is invalid; expected a number of days >= 0",
        ),
        ({"url": "sqlite:///x.db", "timeout": 0}, "StoreHandler: timeout=0 is invalid"),
        ({"url": "sqlite:///x.db", "when_full": "wait"}, "StoreHandler: when_full='wait'"),
    ],
)
def test_bad_arguments_are_value_errors_naming_them(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        StoreHandler(**kwargs)


def test_only_a_default_schema_json_formatter_will_do(tmp_path: Any) -> None:
    made = StoreHandler(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with pytest.raises(TypeError, match=r"needs a structflow\.formatters\.JsonFormatter"):
            made.setFormatter(ClassicFormatter())
        with pytest.raises(TypeError, match=r"JsonFormatter\(json_schema='ecs'\)"):
            made.setFormatter(JsonFormatter(json_schema="ecs"))
        made.setFormatter(JsonFormatter(redact_keys=["rows"]))
    finally:
        made.close()


def test_repr_reads_like_its_configuration_without_the_password() -> None:
    made = StoreHandler("postgresql://u:secret@db.example:5432/logs", retention_days=30)
    try:
        assert repr(made) == (
            "StoreHandler('postgresql://u:***@db.example:5432/logs', retention_days=30.0)"
        )
    finally:
        made.close()
