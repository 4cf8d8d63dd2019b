"""Tests for structflow.processors: the structlog-style processors and the value helpers."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
import structlog

from structflow._context import bound, context
from structflow.loggers import get_logger
from structflow.processors import (
    DEFAULT_REDACT_KEYS,
    REDACTED,
    Redactor,
    Truncator,
    add_run_context,
    normalize_redact_keys,
    resolve_processor,
    resolve_processors,
)

# --- add_run_context ------------------------------------------------------------


def test_add_run_context_reads_the_current_context() -> None:
    with context(flow_name="etl", task_name="load", logger="not a field"), bound(run_id="r-1"):
        event = add_run_context(None, "info", {"event": "hello", "task_name": "explicit"})
    assert event == {"event": "hello", "task_name": "explicit", "flow_name": "etl", "run_id": "r-1"}


def test_add_run_context_prefers_the_records_fields() -> None:
    """Inside a formatter the record may come from another thread: its fields win."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = get_logger("proc")
    handler = Keep()
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)

    def work() -> None:
        with context(task_name="in-thread"):
            logger.info("m", rows=2)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    logger.removeHandler(handler)
    with context(task_name="in-main"):
        event = add_run_context(None, "info", {"_record": records[0]})
    assert {"_record": records[0], "task_name": "in-thread", "rows": 2} == event


def test_add_run_context_in_a_structlog_processor_formatter() -> None:
    """structlog's ProcessorFormatter hands foreign records over as `_record`."""
    import io

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                add_run_context,
                Redactor(),
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(sort_keys=True),
            ]
        )
    )
    get_logger()  # installs the record factory
    logger = logging.getLogger("proc_foreign")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        with context(flow_name="etl"), bound(token="secret-value"):
            logger.info("hello")
    finally:
        logger.removeHandler(handler)
    assert json.loads(stream.getvalue()) == {
        "event": "hello",
        "flow_name": "etl",
        "token": REDACTED,
    }


def test_processors_in_a_native_structlog_chain() -> None:
    log = structlog.wrap_logger(
        structlog.ReturnLogger(),
        processors=[
            add_run_context,
            Redactor(["password"]),
            Truncator(40),
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
    )
    with context(task_name="load"):
        out = log.info("é" * 30, password="p", nested={"PASSWORD": "p", "ok": 1})
    assert json.loads(out) == {
        "event": "é" * 8 + "…[truncated 44 bytes]",
        "nested": {"PASSWORD": REDACTED, "ok": 1},
        "password": REDACTED,
        "task_name": "load",
    }


# --- Redactor ------------------------------------------------------------------------


def test_redactor_matches_any_case_at_any_depth() -> None:
    event: dict[str, Any] = {
        "event": "m",
        "Password": "p",
        "headers": {"Authorization": "Bearer x", "accept": "json"},
        "items": [{"api_KEY": "k"}, ("t", {"TOKEN": "t"})],
        "count": 3,
    }
    out = Redactor()(None, "info", dict(event))
    assert out == {
        "event": "m",
        "Password": REDACTED,
        "headers": {"Authorization": REDACTED, "accept": "json"},
        "items": [{"api_KEY": REDACTED}, ["t", {"TOKEN": REDACTED}]],
        "count": 3,
    }
    assert event["headers"]["Authorization"] == "Bearer x"  # the caller's dict is untouched


def test_redactor_custom_replacement_and_keys() -> None:
    redactor = Redactor(["ssn"], replacement="***")
    assert redactor(None, "info", {"SSN": "1", "password": "p", "deep": {"ssn": "2"}}) == {
        "SSN": "***",
        "password": "p",
        "deep": {"ssn": "***"},
    }
    assert repr(redactor) == "Redactor(keys=['ssn'], replacement='***')"
    assert frozenset({"ssn"}) == redactor.keys


def test_redactor_without_keys_changes_nothing() -> None:
    event = {"password": "p"}
    assert Redactor([])(None, "info", event) is event
    assert event == {"password": "p"}


def test_redactor_leaves_the_record_alone() -> None:
    record = logging.LogRecord("x", 20, "", 0, "m", None, None)
    out = Redactor()(None, "info", {"_record": record, "token": "t"})
    assert record is out["_record"]


def test_default_redact_keys_match_the_design() -> None:
    assert DEFAULT_REDACT_KEYS == (
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "authorization",
        "cookie",
    )


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("password", "redact_keys='password' is a single string; expected a list of key names"),
        (["ok", 3], "redact_keys holds 3 \\(int\\); expected only strings"),
    ],
)
def test_bad_redact_keys(keys: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalize_redact_keys(keys)


# --- Truncator ------------------------------------------------------------------------


def test_truncator_handles_both_message_keys() -> None:
    truncator = Truncator(30)
    event = truncator(None, "info", {"event": "a" * 50, "message": "b" * 50, "other": "c" * 50})
    assert event == {
        "event": "a" * 7 + "…[truncated 43 bytes]",
        "message": "b" * 7 + "…[truncated 43 bytes]",
        "other": "c" * 50,
    }
    assert repr(truncator) == "Truncator(max_bytes=30, keys=['message', 'event'])"
    assert Truncator(None)(None, "info", {"event": "x" * 50}) == {"event": "x" * 50}


@pytest.mark.parametrize("bad", [0, -5, 2.5, "100", True])
def test_truncator_rejects_bad_limits(bad: Any) -> None:
    with pytest.raises(ValueError, match="expected a positive integer"):
        Truncator(bad)


# --- resolve_processor --------------------------------------------------------------------


def test_resolve_processor_by_path_and_class() -> None:
    assert add_run_context is resolve_processor("structflow.processors:add_run_context")
    stamper = resolve_processor("structlog.processors:TimeStamper")
    assert isinstance(stamper, structlog.processors.TimeStamper)
    # A class is instantiated, which the Processor type of the parameter does not express.
    assert isinstance(resolve_processor(Redactor), Redactor)  # type: ignore[arg-type]
    func = resolve_processor("structlog.stdlib:ProcessorFormatter.remove_processors_meta")
    assert func is structlog.stdlib.ProcessorFormatter.remove_processors_meta


def test_resolve_processor_errors_name_where_they_come_from() -> None:
    with pytest.raises(ValueError, match=r"^processors\[1\]: 'a\.b' is not of the form"):
        resolve_processors([add_run_context, "a.b"])
    with pytest.raises(ValueError, match="is a class that cannot be made without arguments"):
        resolve_processor("structflow.processors:Truncator.__class__")
    with pytest.raises(ValueError, match="processors='x:y' is a single processor; expected a list"):
        resolve_processors("x:y")
    assert resolve_processors(None) == []


@pytest.mark.parametrize("spec", ["pkg:", ":attr", "a b:c", "pkg:1st", "pkg.:attr"])
def test_a_spec_that_is_not_dotted_names_is_a_form_error(spec: str) -> None:
    with pytest.raises(ValueError, match=r"is not of the form 'package\.module:callable'"):
        resolve_processor(spec)


def test_a_module_that_fails_to_import_is_not_reported_as_a_missing_attribute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An AttributeError raised by the module's own code is an import failure."""
    (tmp_path / "structflow_test_broken_module.py").write_text("import os\nos.no_such_thing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError) as info:
        resolve_processor("structflow_test_broken_module:f", "processors[2]")
    assert str(info.value).startswith(
        "processors[2]: cannot import 'structflow_test_broken_module:f' (AttributeError: "
    )
