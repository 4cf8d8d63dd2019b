"""
:class:`SyslogHandler`: RFC 5424 syslog over TCP, TLS or UDP.

Each record becomes one RFC 5424 message::

    <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG

with ``PRI`` = facility * 8 + severity, an RFC 3339 UTC timestamp with
microseconds, no structured data (``-``), and the record rendered as JSON
(no byte-order mark) as ``MSG``. Over ``tcp://`` and ``tls://`` messages are
framed by RFC 6587 octet counting (``<length> <message>``); over ``udp://``
each message is one datagram.

A message is at most ``max_record_bytes`` long (8,000 by default: stock
rsyslog takes 8,096 and stock syslog-ng 65,536; a longer frame makes rsyslog
lose the rest of the connection). A longer record has its text shortened,
with the marker ``max_message_bytes`` uses, until the message fits; one whose
other fields alone are too large is dropped as ``too_large``.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import select
import socket
import ssl
from collections.abc import Sequence
from typing import Unpack
from urllib.parse import urlsplit

from structflow._levels import syslog_severity as severity
from structflow._records import SecondCache, safe_message, utc_second
from structflow._values import truncate
from structflow.handlers._tls import check_verify, ssl_context
from structflow.handlers.shipping.handler import ShippingHandler
from structflow.handlers.shipping.settings import (
    ShippingOptions,
    check_float,
    check_int,
    check_str,
    default_service,
    takes_shipping_options,
)
from structflow.handlers.shipping.sink import (
    EntryTooLarge,
    Outcome,
    Sink,
    keep_for_parent,
    release_exception,
)
from structflow.handlers.shipping.snapshot import fit_exceptions

__all__ = ["FACILITIES", "SyslogHandler"]

#: Facility names (as syslog.conf spells them) and their codes.
FACILITIES: dict[str, int] = {
    "kern": 0,
    "user": 1,
    "mail": 2,
    "daemon": 3,
    "auth": 4,
    "syslog": 5,
    "lpr": 6,
    "news": 7,
    "uucp": 8,
    "cron": 9,
    "authpriv": 10,
    "ftp": 11,
    "ntp": 12,
    "security": 13,
    "console": 14,
    "solaris-cron": 15,
    **{f"local{i}": 16 + i for i in range(8)},
}
_DEFAULT_PORTS = {"tcp": 601, "tls": 6514, "udp": 514}
#: The largest UDP payload IPv4 can carry.
UDP_MAX_BYTES = 65_507
#: The default ``max_record_bytes``: under stock rsyslog's limit (``maxMessageSize``,
#: 8,096 bytes) and syslog-ng's (``log-msg-size``, 65,536 bytes).
DEFAULT_MAX_RECORD_BYTES = 8_000
#: The smallest ``max_record_bytes``: what RFC 5424 requires every receiver to take.
MIN_RECORD_BYTES = 480
# Attempts at shortening a record's text before it is given up as too large
# (each one cuts more when escaping made the last one render too long).
_SHORTEN_ATTEMPTS = 8
MAX_APP_NAME = 48
MAX_MSGID = 32
MAX_HOSTNAME = 255


def _printable(text: str) -> str:
    """Keep PRINTUSASCII (33-126); anything else becomes ``_``."""
    return "".join(c if 33 <= ord(c) <= 126 else "_" for c in text)


def _header_field(owner: str, key: str, value: str, limit: int) -> str:
    if not value:
        return "-"
    if len(value) > limit or _printable(value) != value:
        raise ValueError(
            f"{owner}: {key}={value!r} is invalid; expected at most {limit} printable ASCII "
            "characters without spaces (RFC 5424)"
        )
    return value


class _SyslogSink(Sink):
    """Renders RFC 5424 messages and writes them to a socket."""

    identity = "syslog rfc5424"

    def __init__(
        self,
        transport: str,
        host: str,
        port: int,
        facility: int,
        hostname: str,
        app_name: str,
        msgid: str,
        timeout: float,
        ssl_context: ssl.SSLContext | None,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    ) -> None:
        self.transport = transport
        self.host = host
        self.port = port
        self.facility = facility
        self.hostname = hostname
        self.app_name = app_name
        self.msgid = msgid
        self.timeout = timeout
        self.ssl_context = ssl_context
        # "<length> " precedes every message in a stream.
        self.entry_overhead = 8
        #: The longest message (header and payload, without the octet count).
        self.max_record_bytes = max_record_bytes
        self.max_entry_bytes = max_record_bytes
        self._sock: socket.socket | None = None
        # RFC 3339, UTC, microseconds (RFC 5424 allows at most six digits).
        self._timestamp = SecondCache(utc_second, "%s.%06dZ", 1e6).format
        self._middle = f" {hostname} {app_name} "

    # --- rendering (writer thread) ----------------------------------------

    def _payload(self, record: logging.LogRecord, fmt: logging.Formatter) -> bytes:
        if record.exc_info:
            fit_exceptions(fmt, (record,))
        format_bytes = getattr(fmt, "format_bytes", None)
        if format_bytes is not None:
            return format_bytes(record)  # type: ignore[no-any-return]
        return str(fmt.format(record)).encode("utf-8", "replace")

    def _message(self, record: logging.LogRecord, fmt: logging.Formatter) -> bytes:
        pri = self.facility * 8 + severity(record.levelno)
        procid = record.process if record.process is not None else os.getpid()
        head = f"<{pri}>1 {self._timestamp(record.created)}{self._middle}{procid} {self.msgid} - "
        message = head.encode("ascii") + self._payload(record, fmt)
        if len(message) > self.max_record_bytes:
            return self._shortened(record, fmt, message, len(head))
        return message

    def _shortened(
        self, record: logging.LogRecord, fmt: logging.Formatter, message: bytes, head: int
    ) -> bytes:
        """
        *message* re-rendered with the record's text cut (and marked) so that it fits.

        Escaping makes the rendered text longer than the text (a control
        character becomes six bytes of JSON), so the cut is sized by how long
        the text renders, and made again, shorter, while the message is over.

        Raises:
            EntryTooLarge: the rest of the record (fields, exception) leaves
                no room for the text.
        """
        limit = self.max_record_bytes
        size = len(message)
        text = safe_message(record)

        def with_text(new_text: str) -> bytes:
            short = copy.copy(record)
            short.msg = new_text
            short.args = None
            return message[:head] + self._payload(short, fmt)

        fixed = len(with_text(""))
        keep = len(text.encode("utf-8", "surrogatepass"))
        for _ in range(_SHORTEN_ATTEMPTS):
            # The text's share of the room left, as the text renders now.
            keep = min(keep - 1, keep * (limit - fixed) // max(1, len(message) - fixed))
            if keep <= 0:
                break
            message = with_text(truncate(text, keep))
            if len(message) <= limit:
                return message
        raise EntryTooLarge(
            f"a message of {size} bytes does not fit max_record_bytes={limit} even with its "
            f"text shortened (the rest of the record takes {fixed} bytes)"
        )

    def render(self, record: logging.LogRecord) -> bytes:
        return self._message(record, self.record_formatter())

    def render_all(self, records: Sequence[logging.LogRecord]) -> list[bytes]:
        fmt = self.record_formatter()
        message = self._message
        return [message(record, fmt) for record in records]

    # --- transport (sender thread) ----------------------------------------

    def _connect(self, timeout: float) -> socket.socket:
        if self.transport == "udp":
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
            family, kind, proto, _name, address = infos[0]
            sock = socket.socket(family, kind, proto)
            sock.connect(address)
            return sock
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            if self.ssl_context is not None:
                sock = self.ssl_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        return sock

    def _peer_closed(self, sock: socket.socket) -> bool:
        """
        Whether the receiver closed the connection.

        Syslog receivers never write to the connection, so a readable socket
        means it was closed (or reset). Checking before each batch keeps a
        batch from being written into a connection that is already gone.
        """
        try:
            if hasattr(select, "poll"):
                # poll, unlike select, works for descriptors above 1023.
                poller = select.poll()
                poller.register(sock, select.POLLIN)
                readable = bool(poller.poll(0))
            else:
                readable = bool(select.select([sock], [], [], 0)[0])
        except (OSError, ValueError):
            return True
        if not readable:
            return False
        sock.setblocking(False)
        try:
            data = sock.recv(4096)
        except (ssl.SSLWantReadError, BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
        finally:
            with contextlib.suppress(OSError):
                sock.settimeout(self.timeout)
        return not data

    def send(self, entries: Sequence[bytes], timeout: float) -> Outcome:
        sock = self._sock
        try:
            if sock is not None and self.transport != "udp" and self._peer_closed(sock):
                self._drop_connection()
                sock = None
            if sock is None:
                sock = self._sock = self._connect(timeout)
            sock.settimeout(timeout)
            if self.transport == "udp":
                for index, entry in enumerate(entries):
                    try:
                        sock.send(entry)
                    except OSError as exc:
                        self._drop_connection()
                        if index == 0:
                            return Outcome("retry", f"{type(exc).__name__}: {exc}")
                        return Outcome(
                            "partial",
                            f"{type(exc).__name__}: {exc}",
                            retry=tuple(range(index, len(entries))),
                        )
                return Outcome("ok")
            frames = b"".join(b"%d %s" % (len(entry), entry) for entry in entries)
            sock.sendall(frames)
            return Outcome("ok")
        except (OSError, ssl.SSLError) as exc:
            self._drop_connection()
            outcome = Outcome("retry", f"{type(exc).__name__}: {exc}")
            release_exception(exc)
            return outcome

    def _drop_connection(self) -> None:
        sock = self._sock
        self._sock = None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        self._drop_connection()

    def after_fork_in_child(self) -> None:
        keep_for_parent(self._sock)
        self._sock = None

    def describe(self) -> str:
        return f"{self.transport}://{self.host}:{self.port}"


class SyslogHandler(ShippingHandler):
    """
    Ship records as RFC 5424 syslog messages, from a background worker.

    The message is the record rendered by the handler's formatter (a
    :class:`structflow.formatters.JsonFormatter` by default; any formatter
    works, a JSON one suits syslog-ng's ``json-parser`` and rsyslog's
    ``mmjsonparse``), after an RFC 5424 header, without a byte-order mark.
    Over TCP and TLS messages are octet-counted (RFC 6587), which syslog-ng's
    ``syslog()`` source and rsyslog's ``imtcp``/``imptcp`` read; over UDP
    each message is one datagram, sent and forgotten. Messages longer than
    ``max_record_bytes`` have their text shortened to fit. Lost connections
    are re-made with backoff.

    It shares the worker, its keys and guarantees with
    :class:`~structflow.handlers.HTTPHandler` (batching, ``when_full``,
    ``spool_dir``, ``flush``, ``stats``). TCP carries no acknowledgement: a
    record counts as delivered once written to the socket.

    Args:
        address: ``tcp://host:port`` (default port 601), ``tls://host:port``
            (6514) or ``udp://host:port`` (514).
        app_name: APP-NAME (≤ 48 printable ASCII characters); default: the
            program's name.
        facility: ``user`` (default), ``local0`` … ``local7``, ``daemon``, …
            or the facility's number (0-23).
        hostname: HOSTNAME; default: this machine's name.
        msgid: MSGID (≤ 32 characters); default ``-`` (none).
        timeout: seconds to connect and to write a batch.
        verify: for ``tls://``: verify the server's certificate (default),
            or the path of a CA bundle.
        max_record_bytes: the longest message sent (RFC 5424 header and
            payload; default 8,000, which stock rsyslog and syslog-ng both
            take; at least 480, and at most 65,507 over UDP). A longer
            record has its text shortened, with a marker, to fit; one that
            cannot fit is dropped as ``too_large``.
        options: ``level`` and the worker options, as for every shipping
            handler (see "Worker options" on the handlers page).

    Raises:
        ValueError: a value is invalid (header fields have RFC 5424's
            limits); the message names the key, the value and what is allowed.
        TypeError: a keyword argument is unknown.

    .. versionadded:: 0.1.0
    """

    OWN_DEFAULTS = {
        "app_name": None,
        "facility": "user",
        "hostname": "",
        "msgid": "",
        "timeout": 10.0,
        "verify": True,
        "max_record_bytes": DEFAULT_MAX_RECORD_BYTES,
    }

    @takes_shipping_options
    def __init__(
        self,
        address: str,
        app_name: str | None = None,
        *,
        facility: str | int = "user",
        hostname: str = "",
        msgid: str = "",
        timeout: float = 10.0,
        verify: bool | str = True,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        **options: Unpack[ShippingOptions],
    ) -> None:
        owner = type(self).__name__
        transport, host, port = _check_address(owner, address)
        if app_name is None:
            app = _printable(default_service())[:MAX_APP_NAME]
        else:
            app = _header_field(
                owner, "app_name", check_str(owner, "app_name", app_name), MAX_APP_NAME
            )
        facility_code = _check_facility(owner, facility)
        check_str(owner, "hostname", hostname)
        if hostname:
            host_field = _header_field(owner, "hostname", hostname, MAX_HOSTNAME)
        else:
            host_field = _printable(socket.gethostname())[:MAX_HOSTNAME] or "-"
        msgid_field = _header_field(owner, "msgid", check_str(owner, "msgid", msgid), MAX_MSGID)
        timeout = check_float(owner, "timeout", timeout, 0.0, strict=True)
        verify = check_verify(owner, verify)
        check_int(owner, "max_record_bytes", max_record_bytes, MIN_RECORD_BYTES)
        if transport == "udp" and max_record_bytes > UDP_MAX_BYTES:
            raise ValueError(
                f"{owner}: max_record_bytes={max_record_bytes!r} is invalid for udp://; "
                f"expected at most {UDP_MAX_BYTES} (the largest UDP datagram)"
            )
        context = ssl_context(verify) if transport == "tls" else None
        sink = _SyslogSink(
            transport,
            host,
            port,
            facility_code,
            host_field,
            app,
            msgid_field,
            timeout,
            context,
            max_record_bytes,
        )
        super().__init__(sink, **options)
        self.address = address
        self.app_name = app
        self._show(
            repr(address),
            {
                "app_name": app_name,
                "facility": facility,
                "hostname": hostname,
                "msgid": msgid,
                "timeout": timeout,
                "verify": verify,
                "max_record_bytes": max_record_bytes,
            },
        )


def _check_address(owner: str, address: object) -> tuple[str, str, int]:
    """Return (transport, host, port) of a ``tcp://``, ``tls://`` or ``udp://`` address."""
    text = check_str(
        owner,
        "address",
        address,
        what="'tcp://host:port', 'tls://host:port' or 'udp://host:port'",
    )
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        parts.scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or port == -1
        or parts.path not in ("", "/")
    ):
        raise ValueError(
            f"{owner}: address={text!r} is invalid; expected 'tcp://host:port', "
            "'tls://host:port' or 'udp://host:port'"
        )
    return parts.scheme, parts.hostname, port or _DEFAULT_PORTS[parts.scheme]


def _check_facility(owner: str, facility: object) -> int:
    """Return the code of a facility given by name or number."""
    if isinstance(facility, str) and facility.lower() in FACILITIES:
        return FACILITIES[facility.lower()]
    if isinstance(facility, int) and not isinstance(facility, bool) and 0 <= facility <= 23:
        return facility
    raise ValueError(
        f"{owner}: facility={facility!r} is invalid; expected one of "
        f"{', '.join(FACILITIES)} or a number from 0 to 23"
    )
