"""HTTPHandler: status handling, retries, transport, configuration keys, repr."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import structflow
from receivers import (
    FAST,
    NO_DROPS,
    Diagnostics,
    HTTPReceiver,
    Respond,
    attach,
    certificate_fixture,  # noqa: F401 - pytest finds it as 'certificate'
    closing_fixture,  # noqa: F401 - pytest finds it as 'closing'
    diagnostics_fixture,  # noqa: F401 - pytest finds it as 'diagnostics'
    free_port,
    receiver_fixture,  # noqa: F401 - pytest finds it as 'receiver'
    run_python,
    server_context,
    wait_until,
)
from structflow.formatters import JsonFormatter
from structflow.handlers import HTTPHandler

pytestmark = pytest.mark.timeout(60)


def ship(handler: HTTPHandler, n: int, size: int = 0) -> None:
    logger = attach(handler)
    for i in range(n):
        logger.info("x" * size, extra={"seq": i})


def seqs(receiver: HTTPReceiver) -> list[int]:
    return [line["seq"] for line in receiver.lines()]


def test_429_with_retry_after_is_honoured(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    receiver.script(Respond(429, {"Retry-After": "1"}))
    handler = HTTPHandler(receiver.url, **FAST)  # type: ignore[arg-type]
    closing.append(handler)
    ship(handler, 3)

    assert handler.flush(timeout=20) is True
    first, second = receiver.attempts[:2]
    assert [first.status, second.status] == [429, 200]
    # Without Retry-After the retry would come after ~10 ms (retry_backoff).
    assert second.at - first.at >= 0.9
    assert seqs(receiver) == [0, 1, 2]


def test_413_splits_the_batch_until_the_halves_fit(
    receiver: HTTPReceiver, closing: list[logging.Handler], diagnostics: Diagnostics
) -> None:
    receiver.max_body = 2500
    handler = HTTPHandler(receiver.url, flush_interval=30, **FAST)  # type: ignore[arg-type]
    closing.append(handler)
    ship(handler, 40, size=50)

    assert handler.flush(timeout=20) is True
    assert 413 in receiver.statuses()
    assert list(range(40)) == seqs(receiver)
    assert all(len(r.body) <= 2500 for r in receiver.accepted)
    assert handler.stats()["dropped"] == NO_DROPS
    assert any("sending it in halves" in m for m in diagnostics.messages())


def test_413_for_a_single_record_drops_it_counted(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    receiver.max_body = 100
    handler = HTTPHandler(receiver.url, **FAST)  # type: ignore[arg-type]
    closing.append(handler)
    ship(handler, 1, size=500)

    assert handler.flush(timeout=20) is True
    assert receiver.statuses() == [413]
    assert handler.stats()["dropped"] == {**NO_DROPS, "too_large": 1}


def test_400_drops_the_batch_with_a_counted_drop_and_one_diagnostic(
    receiver: HTTPReceiver, closing: list[logging.Handler], diagnostics: Diagnostics
) -> None:
    receiver.script(Respond(400, body=b'{"error": "unparseable field"}'))
    handler = HTTPHandler(receiver.url, flush_interval=30, **FAST)  # type: ignore[arg-type]
    closing.append(handler)
    logger = attach(handler)
    for i in range(5):
        logger.info("r", extra={"seq": i})

    assert handler.flush(timeout=20) is True
    assert receiver.statuses() == [400]
    assert handler.stats()["dropped"] == {**NO_DROPS, "rejected": 5}
    (record,) = diagnostics.records
    assert record.levelno == logging.ERROR
    assert "rejected 5 record(s)" in record.getMessage()
    assert "HTTP 400" in record.getMessage()
    assert "unparseable field" in record.getMessage()

    logger.info("next", extra={"seq": 5})
    assert handler.flush(timeout=20) is True
    assert seqs(receiver) == [5]


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_408_and_5xx_are_retried(
    receiver: HTTPReceiver, closing: list[logging.Handler], status: int
) -> None:
    receiver.script(Respond(status), Respond(status))
    handler = HTTPHandler(receiver.url, **FAST)  # type: ignore[arg-type]
    closing.append(handler)
    ship(handler, 3)

    assert handler.flush(timeout=20) is True
    assert [status, status, 200] == receiver.statuses()
    assert seqs(receiver) == [0, 1, 2]
    assert handler.stats()["retried"] == 6


@pytest.mark.parametrize("status", [401, 403, 404, 422])
def test_other_4xx_are_not_retried(
    receiver: HTTPReceiver, closing: list[logging.Handler], status: int
) -> None:
    receiver.script(Respond(status))
    handler = HTTPHandler(receiver.url, **FAST)  # type: ignore[arg-type]
    closing.append(handler)
    ship(handler, 2)

    assert handler.flush(timeout=20) is True
    assert [status] == receiver.statuses()
    assert handler.stats()["dropped"]["rejected"] == 2


def test_a_redirect_is_not_followed_and_says_where_to(
    receiver: HTTPReceiver, closing: list[logging.Handler], diagnostics: Diagnostics
) -> None:
    receiver.script(Respond(302, {"Location": "https://elsewhere.example/ingest?key=secret"}))
    handler = HTTPHandler(receiver.url, **FAST)  # type: ignore[arg-type]
    closing.append(handler)
    ship(handler, 1)

    assert handler.flush(timeout=20) is True
    assert receiver.statuses() == [302]
    (message,) = diagnostics.messages()
    assert "https://elsewhere.example/ingest" in message
    assert "secret" not in message


def test_batches_reuse_one_keep_alive_connection(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    handler = HTTPHandler(receiver.url, batch_max_records=10)
    closing.append(handler)
    ship(handler, 100)

    assert handler.flush(timeout=20) is True
    assert len(receiver.accepted) >= 10
    assert len({r.client for r in receiver.accepted}) == 1


def test_gzip_compresses_bodies(receiver: HTTPReceiver, closing: list[logging.Handler]) -> None:
    handler = HTTPHandler(receiver.url, gzip=True)
    closing.append(handler)
    ship(handler, 50, size=200)

    assert handler.flush(timeout=20) is True
    request = receiver.accepted[0]
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.headers["Content-Type"] == "application/x-ndjson"
    assert list(range(50)) == seqs(receiver)


def test_header_values_can_come_from_the_environment_and_stay_out_of_repr_and_diagnostics(
    receiver: HTTPReceiver,
    closing: list[logging.Handler],
    diagnostics: Diagnostics,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STRUCTFLOW_TEST_TOKEN", "s3cr3t-token")
    receiver.script(Respond(401, body=b"denied"))
    handler = HTTPHandler(
        receiver.url,
        headers={"Authorization": "env:STRUCTFLOW_TEST_TOKEN", "X-Literal": "lit3ral"},
        **FAST,  # type: ignore[arg-type]
    )
    closing.append(handler)
    ship(handler, 1)

    assert handler.flush(timeout=20) is True
    headers = receiver.attempts[0].headers
    assert (headers["Authorization"], headers["X-Literal"]) == ("s3cr3t-token", "lit3ral")
    shown = repr(handler) + " ".join(diagnostics.messages())
    assert "s3cr3t-token" not in shown and "lit3ral" not in shown
    assert "'Authorization': 'env:STRUCTFLOW_TEST_TOKEN'" in repr(handler)


def test_a_missing_environment_variable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRUCTFLOW_TEST_MISSING", raising=False)
    with pytest.raises(ValueError, match="STRUCTFLOW_TEST_MISSING, which is not set") as info:
        HTTPHandler("http://127.0.0.1:1/", headers={"Authorization": "env:STRUCTFLOW_TEST_MISSING"})
    assert "headers['Authorization']" in str(info.value)


@pytest.mark.parametrize(
    ("encoding", "header", "value"),
    [
        ("splunk-hec", "Authorization", "Splunk tok-1"),
        ("datadog", "DD-API-KEY", "tok-1"),
        ("ndjson", "Authorization", "Bearer tok-1"),
    ],
)
def test_token_is_sent_as_the_encoding_expects(
    receiver: HTTPReceiver, closing: list[logging.Handler], encoding: str, header: str, value: str
) -> None:
    handler = HTTPHandler(receiver.url, encoding=encoding, token="tok-1")
    closing.append(handler)
    ship(handler, 1)

    assert handler.flush(timeout=20) is True
    assert value == receiver.accepted[0].headers[header]
    assert "tok-1" not in repr(handler)


@pytest.mark.parametrize(
    ("encoding", "path"),
    [
        ("ndjson", "/"),
        ("json", "/"),
        ("loki", "/loki/api/v1/push"),
        ("elasticsearch", "/_bulk"),
        ("splunk-hec", "/services/collector/event"),
        ("datadog", "/api/v2/logs"),
        ("otlp", "/v1/logs"),
    ],
)
def test_a_url_without_path_gets_the_encodings_path(
    receiver: HTTPReceiver, closing: list[logging.Handler], encoding: str, path: str
) -> None:
    handler = HTTPHandler(receiver.url.rstrip("/"), encoding=encoding)
    closing.append(handler)
    ship(handler, 1)

    assert handler.flush(timeout=20) is True
    assert path == receiver.accepted[0].path


def test_a_url_with_a_path_is_used_as_given(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    handler = HTTPHandler(receiver.url + "custom/push?tenant=a", encoding="loki")
    closing.append(handler)
    ship(handler, 1)

    assert handler.flush(timeout=20) is True
    assert receiver.accepted[0].path == "/custom/push?tenant=a"


@pytest.fixture
def tls_receiver(certificate: tuple[Path, Path]) -> Iterator[HTTPReceiver]:
    """An HTTPS receiver; tests request it before ``closing``, so it closes after the handlers."""
    server = HTTPReceiver(tls=server_context(certificate))
    yield server
    server.close()


def test_tls_is_verified_by_default_and_a_ca_bundle_can_be_given(
    tls_receiver: HTTPReceiver,
    certificate: tuple[Path, Path],
    closing: list[logging.Handler],
    diagnostics: Diagnostics,
) -> None:
    untrusted = HTTPHandler(tls_receiver.url, shutdown_timeout=0.1, **FAST)  # type: ignore[arg-type]
    trusted = HTTPHandler(tls_receiver.url, verify=str(certificate[0]))
    closing.extend([untrusted, trusted])
    ship(untrusted, 1)
    ship(trusted, 1)

    assert trusted.flush(timeout=20) is True
    assert untrusted.flush(timeout=0.5) is False
    assert len(tls_receiver.accepted) == 1
    assert untrusted.stats()["delivered"] == 0
    assert any("SSLError" in m for m in diagnostics.messages())


def test_run_context_and_fields_reach_the_payload(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    structflow.configure(stream="none", level="DEBUG")
    handler = HTTPHandler(receiver.url)
    closing.append(handler)
    logger = structflow.get_logger("Task B")
    logger.addHandler(handler)
    with structflow.context(
        flow_name="f", flow_run_id="fr-1", task_name="Task B", task_run_id="tr-1"
    ):
        logger.bind(run="r-1").info("hello", rows=3, password="hunter2")

    assert handler.flush(timeout=20) is True
    (line,) = receiver.lines()
    line.pop("timestamp")
    assert isinstance(line.pop("_record_id"), str)
    assert line == {
        "level": "info",
        "logger": "structflow.Task B",
        "message": "hello",
        "flow_name": "f",
        "flow_run_id": "fr-1",
        "task_name": "Task B",
        "task_run_id": "tr-1",
        "run": "r-1",
        "rows": 3,
        "password": "[REDACTED]",
    }


def test_the_formatter_given_to_set_formatter_renders(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    handler = HTTPHandler(receiver.url)
    closing.append(handler)
    handler.setFormatter(JsonFormatter(json_schema="ecs"))
    ship(handler, 1)

    assert handler.flush(timeout=20) is True
    (line,) = receiver.lines()
    assert {"@timestamp", "log.level", "ecs.version"} <= set(line)


def test_set_formatter_refuses_a_formatter_that_cannot_render_json() -> None:
    handler = HTTPHandler("http://127.0.0.1:1/", shutdown_timeout=0)
    try:
        with pytest.raises(TypeError, match="needs a formatter with format_bytes"):
            handler.setFormatter(logging.Formatter("%(message)s"))
    finally:
        handler.close()


# --- configuration keys -----------------------------------------------------------

KEYS: dict[str, Any] = {
    "encoding": "ndjson",
    "gzip": False,
    "timeout": 10.0,
    "headers": None,
    "verify": True,
    "token": "",
    "index": "",
    "labels": None,
    "service": "",
    "level": "NOTSET",
    "batch_max_records": 5000,
    "batch_max_bytes": 1_048_576,
    "flush_interval": 1.0,
    "max_queue_bytes": 33_554_432,
    "when_full": "drop_oldest",
    "block_timeout": 1.0,
    "shutdown_timeout": 5.0,
    "max_retries": -1,
    "retry_backoff": 0.5,
    "retry_max_backoff": 30.0,
    "spool_dir": "",
    "spool_max_bytes": 1_073_741_824,
    "fsync": "interval",
    "fsync_interval": 1.0,
}


def test_keyword_arguments_are_the_config_keys_with_their_defaults() -> None:
    parameters = inspect.signature(HTTPHandler).parameters
    assert ["url", *KEYS] == list(parameters)
    assert {name: p.default for name, p in parameters.items() if name != "url"} == KEYS


def test_every_key_takes_a_plain_config_value(tmp_path: Path) -> None:
    """What a TOML table holds (str, int, float, bool, list, table) is enough for every key."""
    handler = HTTPHandler(
        url="https://logs.example/ingest",
        encoding="loki",
        gzip=True,
        timeout=3,
        headers={"X-Scope-OrgID": "tenant"},
        verify=False,
        token="t",
        index="logs-app-default",
        labels={"env": "prod"},
        service="etl",
        level="info",
        batch_max_records=10,
        batch_max_bytes=65536,
        flush_interval=2,
        max_queue_bytes=1048576,
        when_full="block",
        block_timeout=0,
        shutdown_timeout=0,
        max_retries=3,
        retry_backoff=1,
        retry_max_backoff=10,
        spool_dir=str(tmp_path / "spool"),
        spool_max_bytes=10_485_760,
        fsync="always",
        fsync_interval=5,
    )
    handler.close()


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("encoding", "xml", "expected one of 'ndjson', 'json', 'loki'"),
        ("gzip", "yes", "expected true or false"),
        ("timeout", 0, "expected a number of seconds > 0"),
        ("timeout", "10", "expected a number of seconds > 0"),
        ("headers", {"X": 1}, "expected a table of string keys to string values"),
        ("verify", "/no/such/ca.pem", "path of an existing CA bundle"),
        ("labels", ["a"], "expected a table of string keys to string values"),
        ("level", "verbose", "expected one of NOTSET, DEBUG, INFO"),
        ("batch_max_records", 0, "expected an integer >= 1"),
        ("batch_max_records", True, "expected an integer >= 1"),
        ("batch_max_bytes", 10, "expected an integer >= 1024"),
        ("flush_interval", -1, "expected a number of seconds > 0"),
        ("max_queue_bytes", 1.5, "expected an integer >= 65536"),
        ("when_full", "wait", "expected one of 'drop_oldest', 'drop_newest', 'block'"),
        ("shutdown_timeout", float("inf"), "expected a number of seconds >= 0"),
        ("max_retries", -2, "expected an integer >= -1"),
        ("spool_dir", 3, "expected a directory path"),
        ("spool_max_bytes", 1000, "expected an integer >= 1048576"),
        ("fsync", "sometimes", "expected one of 'interval', 'always', 'never'"),
    ],
)
def test_invalid_values_name_the_key_the_value_and_what_is_allowed(
    key: str, value: Any, allowed: str
) -> None:
    with pytest.raises(ValueError) as info:
        HTTPHandler("http://127.0.0.1:1/", **{key: value})
    message = str(info.value)
    assert message.startswith(f"HTTPHandler: {key}={value!r} is ")
    assert allowed in message


@pytest.mark.parametrize(
    "url", ["ftp://host/", "127.0.0.1:8000", "http:///path", "http://h:99999/"]
)
def test_a_bad_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="HTTPHandler: url="):
        HTTPHandler(url)


def test_repr_reads_like_the_configuration(tmp_path: Path) -> None:
    handler = HTTPHandler(
        "https://user:pw@logs.example/push?api_key=k",
        encoding="loki",
        gzip=True,
        token="literal",
        batch_max_records=10,
        spool_dir=str(tmp_path),
        level="WARNING",
        shutdown_timeout=0,
    )
    try:
        assert (
            "HTTPHandler('https://user:***@logs.example/push?api_key=***', encoding='loki', "
            f"gzip=True, token='***', batch_max_records=10, shutdown_timeout=0.0, "
            f"spool_dir={str(tmp_path)!r}, level='WARNING')"
        ) == repr(handler)
    finally:
        handler.close()


def test_handler_with_unreachable_url_never_blocks_the_caller_and_retries(
    closing: list[logging.Handler], diagnostics: Diagnostics
) -> None:
    handler = HTTPHandler(f"http://127.0.0.1:{free_port()}/", shutdown_timeout=0.1, **FAST)  # type: ignore[arg-type]
    closing.append(handler)
    ship(handler, 10)

    assert handler.flush(timeout=0.3) is False
    assert wait_until(lambda: handler.stats()["retried"] > 0, timeout=10)
    assert any("Connection refused" in m for m in diagnostics.messages())


def test_logging_with_structflow_does_not_import_the_http_transport() -> None:
    """``import structflow`` and its stream handler leave requests unloaded until it is used."""
    code = (
        "import sys, structflow\n"
        "structflow.get_logger('x').info('hello')\n"
        "assert 'requests' not in sys.modules, 'requests was imported'\n"
        "from structflow.handlers import HTTPHandler\n"
        "assert 'requests' in sys.modules\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
