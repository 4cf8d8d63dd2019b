"""
SyslogHandler: RFC 5424 messages, RFC 6587 octet counting, UDP, TLS, reconnects,
size limits, and a real syslog-ng and rsyslog.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import pytest

import structflow
from receivers import (
    FAST,
    NO_DROPS,
    Rsyslog,
    SyslogNg,
    SyslogReceiver,
    attach,
    certificate_fixture,  # noqa: F401 - pytest finds it as 'certificate'
    closing_fixture,  # noqa: F401 - pytest finds it as 'closing'
    free_port,
    rsyslog_fixture,  # noqa: F401 - pytest finds it as 'rsyslog'
    server_context,
    syslog_ng_fixture,  # noqa: F401 - pytest finds it as 'syslog_ng'
    wait_until,
)
from structflow._context import context
from structflow.formatters import JsonFormatter
from structflow.handlers import SyslogHandler
from structflow.handlers.syslog import DEFAULT_MAX_RECORD_BYTES, UDP_MAX_BYTES

pytestmark = pytest.mark.timeout(60)

HEADER = re.compile(
    rb"<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) - "
)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")
#: How max_message_bytes marks a shortened text (the count of bytes cut varies).
MARKER = re.compile(r"…\[truncated \d+ bytes\]$")


def parse(message: bytes) -> tuple[dict[str, str], dict[str, Any]]:
    """Split an RFC 5424 message into its header fields and its JSON payload."""
    match = HEADER.match(message)
    assert match is not None, message[:200]
    header = {k: v.decode("ascii") for k, v in match.groupdict().items()}
    payload = message[match.end() :]
    assert not payload.startswith(b"\xef\xbb\xbf")  # no byte-order mark
    return header, json.loads(payload)


def received(server: SyslogReceiver, n: int) -> list[bytes]:
    """The messages *server* got, once it has *n* of them (TCP has no acknowledgement)."""
    assert wait_until(lambda: server.count() >= n, timeout=10), server.count()
    with server.lock:
        return list(server.messages)


def one_oversized_then(handler: SyslogHandler, size: int, after: int) -> None:
    """Log a record of *size* "y"s (seq -1), then *after* short ones (seq 0, 1 ...); flush."""
    logger = attach(handler)
    logger.info("y" * size, extra={"seq": -1})
    for i in range(after):
        logger.info("after %d", i, extra={"seq": i})
    assert handler.flush(timeout=30) is True


@pytest.fixture
def tcp() -> Any:
    server = SyslogReceiver("tcp")
    yield server
    server.close()


def test_tcp_messages_are_rfc5424_with_octet_counting(
    tcp: SyslogReceiver, closing: list[logging.Handler]
) -> None:
    handler = SyslogHandler(
        tcp.address, app_name="etl-app", facility="local3", hostname="web-1", msgid="FLOW"
    )
    closing.append(handler)
    logger = attach(handler)
    levels = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL]
    for i, level in enumerate(levels):
        logger.log(level, "event %d", i, extra={"seq": i, "ctx": {"user": "ann"}})

    assert handler.flush(timeout=20) is True
    parsed = [parse(m) for m in received(tcp, 5)]
    assert tcp.errors == []
    pid = str(os.getpid())
    assert [19 * 8 + s for s in (7, 6, 4, 3, 2)] == [int(h["pri"]) for h, _ in parsed]
    assert {("web-1", "etl-app", pid, "FLOW")} == {
        (h["host"], h["app"], h["procid"], h["msgid"]) for h, _ in parsed
    }
    assert all(TIMESTAMP.fullmatch(h["ts"]) for h, _ in parsed)
    assert [(f"event {i}", i, {"user": "ann"}) for i in range(5)] == [
        (p["message"], p["seq"], p["ctx"]) for _, p in parsed
    ]


def test_defaults_are_user_facility_this_host_and_no_msgid(
    tcp: SyslogReceiver, closing: list[logging.Handler]
) -> None:
    handler = SyslogHandler(tcp.address)
    closing.append(handler)
    attach(handler).info("hi")

    assert handler.flush(timeout=20) is True
    header, _ = parse(received(tcp, 1)[0])
    assert (str(1 * 8 + 6), "-") == (header["pri"], header["msgid"])
    assert header["app"] == handler.app_name
    assert re.fullmatch(r"[!-~]{1,48}", header["app"])


def test_udp_sends_one_datagram_per_message_shortened_to_fit(
    closing: list[logging.Handler],
) -> None:
    server = SyslogReceiver("udp")
    try:
        handler = SyslogHandler(server.address, app_name="udp-app", max_record_bytes=UDP_MAX_BYTES)
        closing.append(handler)
        logger = attach(handler)
        for i in range(20):
            logger.info("datagram %d", i, extra={"seq": i})
        logger.info("x" * (UDP_MAX_BYTES + 10), extra={"seq": 20})

        assert handler.flush(timeout=20) is True
        assert wait_until(lambda: server.count() == 21, timeout=10)
        assert list(range(21)) == sorted(parse(m)[1]["seq"] for m in server.messages)
        longest = max(server.messages, key=len)
        assert UDP_MAX_BYTES - 100 < len(longest) <= UDP_MAX_BYTES
        assert MARKER.search(parse(longest)[1]["message"])
        assert handler.stats()["dropped"] == NO_DROPS
    finally:
        for opened in closing:  # before the receiver: no connection to a closing server
            opened.close()
        server.close()


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Any:
    """A TLS syslog receiver; requested before ``closing``, so it closes after the handlers."""
    server = SyslogReceiver("tcp", tls=server_context(certificate))
    yield server
    server.close()


def test_tls_verifies_the_server_and_frames_like_tcp(
    tls_server: SyslogReceiver, certificate: tuple[Path, Path], closing: list[logging.Handler]
) -> None:
    assert tls_server.address.startswith("tls://")
    trusted = SyslogHandler(tls_server.address, verify=str(certificate[0]))
    untrusted = SyslogHandler(tls_server.address, shutdown_timeout=0.1, **FAST)  # type: ignore[arg-type]
    closing.extend([trusted, untrusted])
    attach(trusted).info("secure", extra={"seq": 1})
    attach(untrusted).info("refused", extra={"seq": 2})

    assert trusted.flush(timeout=20) is True
    assert untrusted.flush(timeout=0.5) is False
    assert [parse(m)[1]["seq"] for m in received(tls_server, 1)] == [1]
    assert tls_server.errors == []


def test_a_dropped_connection_is_made_again(closing: list[logging.Handler]) -> None:
    server = SyslogReceiver("tcp", close_after=10)
    try:
        handler = SyslogHandler(server.address, **FAST)  # type: ignore[arg-type]
        closing.append(handler)
        logger = attach(handler)
        for batch in range(3):
            for i in range(10):
                logger.info("m", extra={"seq": batch * 10 + i})
            assert handler.flush(timeout=20) is True

            def reconnected(expected: int = batch + 1) -> bool:
                return server.closed == expected

            assert wait_until(reconnected, timeout=10)

        assert list(range(30)) == [parse(m)[1]["seq"] for m in received(server, 30)]
        assert server.connections == 3
    finally:
        for opened in closing:  # before the receiver: no connection to a closing server
            opened.close()
        server.close()


def test_records_wait_while_the_receiver_is_down_and_arrive_when_it_is_up(
    closing: list[logging.Handler],
) -> None:
    port = free_port()
    handler = SyslogHandler(f"tcp://127.0.0.1:{port}", **FAST)  # type: ignore[arg-type]
    closing.append(handler)
    logger = attach(handler)
    for i in range(50):
        logger.info("m", extra={"seq": i})
    assert wait_until(lambda: handler.stats()["retried"] > 0, timeout=10)

    server = SyslogReceiver("tcp", port=port)
    try:
        assert handler.flush(timeout=20) is True
        assert list(range(50)) == [parse(m)[1]["seq"] for m in received(server, 50)]
    finally:
        for opened in closing:  # before the receiver: no connection to a closing server
            opened.close()
        server.close()


def test_a_spool_works_for_syslog_too(
    tcp: SyslogReceiver, closing: list[logging.Handler], tmp_path: Path
) -> None:
    handler = SyslogHandler(tcp.address, spool_dir=str(tmp_path))
    closing.append(handler)
    logger = attach(handler)
    for i in range(100):
        logger.info("m", extra={"seq": i})

    assert handler.flush(timeout=20) is True
    assert (handler.stats()["spooled"], handler.stats()["delivered"]) == (100, 100)
    assert list(range(100)) == [parse(m)[1]["seq"] for m in received(tcp, 100)]


def test_any_formatter_can_render_the_message(
    tcp: SyslogReceiver, closing: list[logging.Handler]
) -> None:
    handler = SyslogHandler(tcp.address)
    closing.append(handler)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    attach(handler).warning("plain %s", "text")

    assert handler.flush(timeout=20) is True
    (message,) = received(tcp, 1)
    match = HEADER.match(message)
    assert match is not None
    assert message[match.end() :] == b"WARNING plain text"


def test_json_formatter_options_apply(tcp: SyslogReceiver, closing: list[logging.Handler]) -> None:
    handler = SyslogHandler(tcp.address)
    closing.append(handler)
    handler.setFormatter(JsonFormatter(json_schema="gcp"))
    attach(handler).error("bad", extra={"password": "hunter2"})

    assert handler.flush(timeout=20) is True
    _, payload = parse(received(tcp, 1)[0])
    assert (payload["severity"], payload["password"]) == ("ERROR", "[REDACTED]")


def test_real_syslog_ng_receives_2000_records_with_fields_and_app_name(
    syslog_ng: SyslogNg, closing: list[logging.Handler]
) -> None:
    handler = SyslogHandler(syslog_ng.address, app_name="structflow-test", msgid="RUN")
    closing.append(handler)
    logger = attach(handler)
    for i in range(2000):
        logger.info("record %d", i, extra={"seq": i, "flow_run_id": "fr-1", "rows": {"in": i}})

    assert handler.flush(timeout=30) is True
    assert wait_until(lambda: syslog_ng.count() >= 2000, timeout=20)
    records = syslog_ng.records()
    assert len(records) == 2000
    # syslog-ng's json-parser keeps every value as a string.
    assert [
        {
            "app": "structflow-test",
            "msgid": "RUN",
            "message": f"record {i}",
            "seq": str(i),
            "flow_run_id": "fr-1",
            "rows": {"in": str(i)},
        }
        for i in range(2000)
    ] == [
        {
            "app": r["app"],
            "msgid": r["msgid"],
            "message": r["_json"]["message"],
            "seq": r["_json"]["seq"],
            "flow_run_id": r["_json"]["flow_run_id"],
            "rows": r["_json"]["rows"],
        }
        for r in records
    ]


# --- size limits -------------------------------------------------------------------


def test_a_record_over_max_record_bytes_arrives_with_its_text_shortened_and_marked(
    tcp: SyslogReceiver, closing: list[logging.Handler]
) -> None:
    handler = SyslogHandler(tcp.address, max_record_bytes=1000)
    closing.append(handler)
    logger = attach(handler)
    logger.info("é\n\x00" * 3000, extra={"seq": 1})
    logger.info("short", extra={"seq": 2})

    assert handler.flush(timeout=20) is True
    first, second = received(tcp, 2)
    assert 900 < len(first) <= 1000
    payload = parse(first)[1]
    assert (payload["seq"], payload["message"][:6]) == (1, "é\n\x00é\n\x00")
    assert MARKER.search(payload["message"])
    assert parse(second)[1]["message"] == "short"
    assert handler.stats()["dropped"] == NO_DROPS


def test_a_record_too_large_without_its_text_is_dropped_as_too_large(
    tcp: SyslogReceiver, closing: list[logging.Handler]
) -> None:
    handler = SyslogHandler(tcp.address, max_record_bytes=1000)
    closing.append(handler)
    logger = attach(handler)
    logger.info("big field", extra={"seq": 1, "blob": "b" * 2000})
    logger.info("next", extra={"seq": 2})

    assert handler.flush(timeout=20) is True
    assert [parse(m)[1]["seq"] for m in received(tcp, 1)] == [2]
    assert handler.stats()["dropped"] == {**NO_DROPS, "too_large": 1}


def test_the_default_limit_is_one_every_stock_server_takes() -> None:
    handler = SyslogHandler("tcp://127.0.0.1:9", shutdown_timeout=0)
    try:
        assert handler._sink.max_record_bytes == DEFAULT_MAX_RECORD_BYTES <= 8096  # type: ignore[attr-defined]
    finally:
        handler.close()


def test_real_rsyslog_receives_2000_records_with_run_context_and_exact_text(
    rsyslog: Rsyslog, closing: list[logging.Handler]
) -> None:
    handler = SyslogHandler(rsyslog.address, app_name="structflow-test", msgid="RUN")
    closing.append(handler)
    structflow.configure(stream="none")  # its record factory adds the run context
    logger = attach(handler)
    with context(flow_name="etl", flow_run_id="fr-1"):
        for i in range(2000):
            logger.info('record %d: "quoted" ü', i, extra={"seq": i, "rows": {"in": i}})

    assert handler.flush(timeout=30) is True
    assert wait_until(lambda: rsyslog.count() >= 2000, timeout=20)
    records = rsyslog.records()
    assert rsyslog.failures() == []
    # rsyslog's mmjsonparse keeps JSON types.
    assert [
        ("structflow-test", "RUN", f'record {i}: "quoted" ü', i, "etl", "fr-1", {"in": i})
        for i in range(2000)
    ] == [
        (
            r["app"],
            r["msgid"],
            r["json"]["message"],
            r["json"]["seq"],
            r["json"]["flow_name"],
            r["json"]["flow_run_id"],
            r["json"]["rows"],
        )
        for r in records
    ]


@pytest.mark.parametrize("size", [20_000, 200_000])
def test_real_rsyslog_parses_an_oversized_record_shortened_and_every_record_after_it(
    rsyslog: Rsyslog, closing: list[logging.Handler], size: int
) -> None:
    """Stock limits: 8,096-byte messages, and 200,000-byte frames before imtcp loses the framing."""
    handler = SyslogHandler(rsyslog.address)
    closing.append(handler)
    one_oversized_then(handler, size, 2000)

    assert wait_until(lambda: rsyslog.count() >= 2001, timeout=20)
    records = rsyslog.records()
    assert rsyslog.failures() == []
    assert [r["json"]["seq"] for r in records] == list(range(-1, 2000))
    assert MARKER.search(records[0]["json"]["message"])
    assert records[0]["json"]["message"].startswith("y" * 7000)
    assert handler.stats()["dropped"] == NO_DROPS


def test_real_syslog_ng_parses_a_record_over_its_message_size_shortened(
    syslog_ng: SyslogNg, closing: list[logging.Handler]
) -> None:
    """syslog-ng's log-msg-size (65,536) closes the connection on a longer frame."""
    handler = SyslogHandler(syslog_ng.address)
    closing.append(handler)
    one_oversized_then(handler, 100_000, 100)

    assert wait_until(lambda: syslog_ng.count() >= 101, timeout=20)
    records = syslog_ng.records()
    assert [int(r["_json"]["seq"]) for r in records] == list(range(-1, 100))
    assert MARKER.search(records[0]["_json"]["message"])


# --- configuration ----------------------------------------------------------------

KEYS = {
    "app_name": None,
    "facility": "user",
    "hostname": "",
    "msgid": "",
    "timeout": 10.0,
    "verify": True,
    "max_record_bytes": 8000,
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
    parameters = inspect.signature(SyslogHandler).parameters
    assert ["address", *KEYS] == list(parameters)
    assert {name: p.default for name, p in parameters.items() if name != "address"} == KEYS


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("address", "syslog://host:514", "expected 'tcp://host:port', 'tls://host:port'"),
        ("address", "tcp://host:70000", "expected 'tcp://host:port', 'tls://host:port'"),
        ("app_name", "a" * 49, "at most 48 printable ASCII characters"),
        ("app_name", "my app", "at most 48 printable ASCII characters"),
        ("msgid", "m" * 33, "at most 32 printable ASCII characters"),
        ("hostname", "web 1", "at most 255 printable ASCII characters"),
        ("facility", "local8", "expected one of kern, user, mail"),
        ("facility", 24, "or a number from 0 to 23"),
        ("timeout", -1, "expected a number of seconds > 0"),
        ("verify", "/no/such/ca.pem", "path of an existing CA bundle"),
        ("max_record_bytes", 479, "expected an integer >= 480"),
        ("max_record_bytes", "8k", "expected an integer >= 480"),
        ("when_full", "never", "expected one of 'drop_oldest', 'drop_newest', 'block'"),
    ],
)
def test_invalid_values_name_the_key_the_value_and_what_is_allowed(
    key: str, value: Any, allowed: str
) -> None:
    arguments: dict[str, Any] = {"address": "tcp://127.0.0.1:1", key: value}
    with pytest.raises(ValueError) as info:
        SyslogHandler(**arguments)
    assert str(info.value).startswith(f"SyslogHandler: {key}={value!r} is ")
    assert allowed in str(info.value)


def test_udp_refuses_a_record_limit_no_datagram_can_carry() -> None:
    with pytest.raises(ValueError) as info:
        SyslogHandler("udp://127.0.0.1:514", max_record_bytes=70_000)
    assert str(info.value) == (
        "SyslogHandler: max_record_bytes=70000 is invalid for udp://; expected at most 65507 "
        "(the largest UDP datagram)"
    )


def test_default_ports_per_transport() -> None:
    handlers = [
        SyslogHandler(f"{s}://127.0.0.1", shutdown_timeout=0) for s in ("tcp", "tls", "udp")
    ]
    try:
        assert [h._sink.port for h in handlers] == [601, 6514, 514]  # type: ignore[attr-defined]
    finally:
        for handler in handlers:
            handler.close()


def test_repr_reads_like_the_configuration() -> None:
    handler = SyslogHandler(
        "tcp://127.0.0.1:6514",
        "etl",
        facility="local0",
        when_full="drop_newest",
        shutdown_timeout=0,
    )
    try:
        assert repr(handler) == (
            "SyslogHandler('tcp://127.0.0.1:6514', app_name='etl', facility='local0', "
            "when_full='drop_newest', shutdown_timeout=0.0)"
        )
    finally:
        handler.close()
