"""
:class:`HTTPHandler`: ship records in batches over HTTP(S).

The transport is a ``requests`` session with keep-alive (one connection,
reused), TLS verification on by default, and no retries of its own: the
worker retries with backoff and jitter, splits batches on 413, and drops
batches the receiver refuses for good.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import requests.adapters
from urllib3.util import Retry

from structflow.handlers._worker import (
    Outcome,
    ShippingHandler,
    Sink,
    WorkerSettings,
    check_bool,
    check_choice,
    check_float,
    check_level,
    check_str,
    check_str_mapping,
    fit_exception,
    release_exception,
    resolve_env,
)
from structflow.handlers.encoders import (
    ENCODINGS,
    Encoder,
    EncoderOptions,
    RecordFormatter,
    make_encoder,
)

__all__ = ["HTTPHandler"]

_OWNER = "HTTPHandler"
#: gzip level: most of the size reduction of higher levels for a fraction of the CPU.
GZIP_LEVEL = 1
#: Response bodies quoted in diagnostics are cut to this many characters.
_SNIPPET = 200
_RETRY_STATUSES = frozenset({408, 429})
_retry_after_parser = Retry(0)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("structflow")
    except Exception:
        return "0"


def default_service() -> str:
    """The program's name (``sys.argv[0]`` without directory and ``.py``), or ``python``."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    name = os.path.basename(argv0)
    if name.endswith(".py"):
        name = name[:-3]
    if not name or name in ("-c", "-m", "__main__"):
        return "python"
    return name


def _mask_url(url: str) -> str:
    """The url with its password and query values replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = "&".join(
        p.split("=", 1)[0] + ("=***" if "=" in p else "") for p in parts.query.split("&") if p
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _public_url(url: str) -> str:
    """The url as diagnostics show it: no user info, no query."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _snippet(data: bytes) -> str:
    text = data[: _SNIPPET * 4].decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return text[:_SNIPPET] + ("…" if len(text) > _SNIPPET else "")


class _HTTPSink(Sink):
    """Encodes with an :class:`Encoder` and POSTs with a ``requests`` session."""

    def __init__(
        self,
        url: str,
        encoder: Encoder,
        gzip: bool,
        headers: dict[str, str],
        timeout: float,
        verify: bool | str,
    ) -> None:
        self.url = url
        self.encoder = encoder
        self.gzip = gzip
        self.timeout = timeout
        self.verify = verify
        self.identity = f"http {encoder.name}"
        self.max_batch_records = encoder.max_records
        self.max_batch_bytes = encoder.max_body_bytes
        self.max_entry_bytes = encoder.max_entry_bytes
        self.entry_overhead = encoder.entry_overhead
        self.headers = {
            "Content-Type": encoder.content_type,
            "User-Agent": f"structflow/{_version()}",
            **headers,
        }
        if gzip:
            self.headers["Content-Encoding"] = "gzip"
        self._session: requests.Session | None = None
        self._default_formatter: RecordFormatter | None = None
        self._query = urlsplit(url).query
        # An entry that is the formatter's line as it is (ndjson, json).
        self._plain = type(encoder).entry is Encoder.entry

    def _formatter(self) -> RecordFormatter:
        fmt = self.formatter
        if fmt is not None:
            return fmt  # type: ignore[return-value]
        if self._default_formatter is None:
            from structflow.formatters import JsonFormatter

            self._default_formatter = JsonFormatter()
        return self._default_formatter

    def render(self, record: logging.LogRecord) -> bytes:
        formatter = self._formatter()
        if record.exc_info:
            fit_exception(formatter, record)
        return self.encoder.entry(record, formatter)

    def render_all(self, records: Iterable[logging.LogRecord]) -> list[bytes]:
        formatter = self._formatter()
        for record in records:
            if record.exc_info:
                fit_exception(formatter, record)
        if self._plain:
            format_bytes = formatter.format_bytes
            return [format_bytes(record) for record in records]
        entry = self.encoder.entry
        return [entry(record, formatter) for record in records]

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        # Proxies are read from the environment once, and ~/.netrc is not
        # read on every request (requests would, with trust_env).
        session.proxies.update(requests.utils.get_environ_proxies(self.url))
        session.trust_env = False
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._session = session
        return session

    def send(self, entries: Sequence[bytes], timeout: float) -> Outcome:
        body = self.encoder.body(entries)
        if self.gzip:
            packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
            body = packer.compress(body) + packer.flush()
        session = self._session or self._new_session()
        try:
            response = session.post(
                self.url,
                data=body,
                headers=self.headers,
                timeout=timeout,
                verify=self.verify,
                allow_redirects=False,
            )
            content = response.content
        except requests.RequestException as exc:
            outcome = Outcome("retry", self._describe(exc))
            release_exception(exc)
            return outcome
        status = response.status_code
        if 200 <= status < 300:
            checked = self.encoder.check(content, len(entries))
            return checked if checked is not None else Outcome("ok")
        detail = f"HTTP {status} {response.reason or ''}".rstrip()
        snippet = _snippet(content)
        if snippet:
            detail = f"{detail}: {snippet}"
        if status == 413:
            return Outcome("split", detail)
        if status in _RETRY_STATUSES or status >= 500:
            retry_after = None
            header = response.headers.get("Retry-After")
            if header:
                try:
                    retry_after = float(_retry_after_parser.parse_retry_after(header))
                except Exception:
                    retry_after = None
            return Outcome("retry", detail, retry_after=retry_after)
        if 300 <= status < 400:
            location = _public_url(response.headers.get("Location", ""))
            detail = f"{detail} (redirected to {location!r}; set url to the final address)"
        return Outcome("reject", detail)

    def _describe(self, exc: BaseException) -> str:
        root = _root_cause(exc)
        if root is not None:
            return f"{type(exc).__name__}: {root}"
        # requests' messages quote the url, query string included, which may
        # hold an API key: leave it out.
        text = str(exc)
        if self._query:
            text = text.replace(self._query, "***")
        if len(text) > 300:
            text = text[:300] + "…"
        return f"{type(exc).__name__}: {text}"

    def close(self) -> None:
        session = self._session
        self._session = None
        if session is not None:
            session.close()

    def after_fork_in_child(self) -> None:
        # The pooled connection is shared with the parent: do not close it
        # (a TLS close_notify would end the parent's session); just let the
        # child open its own.
        if self._session is not None:
            _inherited.append(self._session)
        self._session = None
        self.encoder.after_fork_in_child()

    def describe(self) -> str:
        return f"{_public_url(self.url)} ({self.encoder.name})"


def _root_cause(exc: BaseException) -> str | None:
    """The OS's reason under a requests/urllib3 error, e.g. ``[Errno 111] Connection refused``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None and current.strerror:
            return f"[Errno {current.errno}] {current.strerror}"
        reason = getattr(current, "reason", None)
        nested = (
            current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        )
        current = (
            reason
            if isinstance(reason, BaseException)
            else nested or current.__cause__ or current.__context__
        )
    return None


# Sessions inherited across fork, kept referenced so that their sockets are
# never closed (or finalised) by the child.
_inherited: list[requests.Session] = []


class HTTPHandler(ShippingHandler):
    """
    Ship records over HTTP(S), batched, from a background worker.

    ``emit`` never blocks on the network or disk and never raises. Records
    are rendered by the handler's formatter (a
    :class:`structflow.formatters.JsonFormatter` by default, or the one given
    to ``setFormatter``), encoded for *encoding*, and POSTed in batches.
    Connection errors, 408, 429 (honouring ``Retry-After``) and 5xx are
    retried with exponential backoff and jitter; 413 splits the batch; other
    4xx drop it (counted in :meth:`stats` and reported on the
    ``structflow.shipping`` logger).

    Keyword arguments carry the names of the ``[logging.http]`` config keys;
    every one takes a plain value (str, int, float, bool, list or table).

    Args:
        url: ``http://`` or ``https://`` address of the receiver. With no path
            (or ``/``), the encoding's usual path is used (``/loki/api/v1/push``,
            ``/_bulk``, ``/services/collector/event``, ``/api/v2/logs``,
            ``/v1/logs``).
        encoding: ``ndjson`` (default), ``json``, ``loki``, ``elasticsearch``,
            ``splunk-hec``, ``datadog`` or ``otlp``.
        gzip: compress request bodies (``Content-Encoding: gzip``).
        timeout: seconds to connect, and to wait for each read of the response.
        headers: extra request headers; a value ``"env:NAME"`` is read from
            the environment variable NAME when the handler is made, so secrets
            stay out of config files (and out of ``repr`` and diagnostics).
        verify: verify the server's TLS certificate (default); or the path of
            a CA bundle.
        token: credentials sent the way the encoding expects
            (``Authorization: Splunk <token>``, ``DD-API-KEY: <token>``,
            otherwise ``Authorization: Bearer <token>``); ``"env:NAME"`` works
            here too.
        index: Elasticsearch index or data stream (default
            ``logs-structflow-default``); Splunk index (default: the token's).
        labels: static key/values describing this deployment: Loki stream
            labels, Datadog ``ddtags``, OTLP resource attributes, Splunk
            indexed fields.
        service: the service name for Loki (``service_name`` label), Datadog
            (``service``), Splunk (``source``) and OTLP (``service.name``);
            default: the program's name.
        level: the handler's level (default ``NOTSET``: everything the
            loggers pass on).
        batch_max_records: most records per request.
        batch_max_bytes: most bytes per request body (before gzip).
        flush_interval: seconds a record may wait for its batch to fill.
        max_queue_bytes: memory bound of the queue (rendered payload bytes).
        when_full: ``drop_oldest`` (default), ``drop_newest`` or ``block``.
        block_timeout: seconds ``block`` waits for room before dropping.
        shutdown_timeout: seconds ``close()`` and interpreter exit may spend
            delivering what is queued.
        max_retries: attempts after the first before a batch is dropped;
            ``-1`` (default) retries until delivered or shut down.
        retry_backoff: first retry delay, doubled per attempt, with jitter.
        retry_max_backoff: longest retry delay.
        spool_dir: a directory for the crash-safe on-disk spool (``""``: none).
        spool_max_bytes: disk cap of the spool; the oldest records go first.
        fsync: ``interval`` (default), ``always`` or ``never``.
        fsync_interval: seconds between syncs under ``interval``.

    Raises:
        ValueError: a value is invalid; the message names the key, the value
            and what is allowed.

    .. versionadded:: 0.1.0
    """

    OWN_DEFAULTS = {
        "encoding": "ndjson",
        "gzip": False,
        "timeout": 10.0,
        "headers": {},
        "verify": True,
        "token": "",
        "index": "",
        "labels": {},
        "service": "",
    }

    def __init__(
        self,
        url: str,
        encoding: str = "ndjson",
        *,
        gzip: bool = False,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        verify: bool | str = True,
        token: str = "",
        index: str = "",
        labels: Mapping[str, str] | None = None,
        service: str = "",
        level: str | int = "NOTSET",
        batch_max_records: int = 5000,
        batch_max_bytes: int = 1_048_576,
        flush_interval: float = 1.0,
        max_queue_bytes: int = 33_554_432,
        when_full: str = "drop_oldest",
        block_timeout: float = 1.0,
        shutdown_timeout: float = 5.0,
        max_retries: int = -1,
        retry_backoff: float = 0.5,
        retry_max_backoff: float = 30.0,
        spool_dir: str = "",
        spool_max_bytes: int = 1_073_741_824,
        fsync: str = "interval",
        fsync_interval: float = 1.0,
    ) -> None:
        url = check_str(_OWNER, "url", url, what="an http:// or https:// URL")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"{_OWNER}: url={_mask_url(url)!r} is invalid; expected an http:// or https:// URL"
            )
        try:
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            raise ValueError(f"{_OWNER}: url={_mask_url(url)!r} has an invalid port") from None
        check_choice(_OWNER, "encoding", encoding, tuple(ENCODINGS))
        check_bool(_OWNER, "gzip", gzip)
        timeout = check_float(_OWNER, "timeout", timeout, 0.0, strict=True)
        raw_headers = check_str_mapping(_OWNER, "headers", headers or {})
        if not isinstance(verify, bool):
            check_str(_OWNER, "verify", verify, what="true, false or the path of a CA bundle")
            if not os.path.exists(verify):
                raise ValueError(
                    f"{_OWNER}: verify={verify!r} is invalid; expected true, false or the path of "
                    "an existing CA bundle"
                )
        check_str(_OWNER, "token", token)
        check_str(_OWNER, "index", index)
        raw_labels = check_str_mapping(_OWNER, "labels", labels or {})
        check_str(_OWNER, "service", service)
        levelno = check_level(_OWNER, level)
        settings = WorkerSettings.validated(
            _OWNER,
            batch_max_records=batch_max_records,
            batch_max_bytes=batch_max_bytes,
            flush_interval=flush_interval,
            max_queue_bytes=max_queue_bytes,
            when_full=when_full,
            block_timeout=block_timeout,
            shutdown_timeout=shutdown_timeout,
            max_retries=max_retries,
            retry_backoff=retry_backoff,
            retry_max_backoff=retry_max_backoff,
            spool_dir=spool_dir,
            spool_max_bytes=spool_max_bytes,
            fsync=fsync,
            fsync_interval=fsync_interval,
        )
        resolved = {
            name: resolve_env(_OWNER, f"headers[{name!r}]", value)
            for name, value in raw_headers.items()
        }
        secret = resolve_env(_OWNER, "token", token) if token else ""
        options = EncoderOptions(
            index=index,
            labels=raw_labels,
            service=service or default_service(),
            hostname=socket.gethostname(),
        )
        encoder = make_encoder(encoding, options)
        request_headers = {**(encoder.auth_headers(secret) if secret else {}), **resolved}
        target = url
        if parts.path in ("", "/") and encoder.default_path:
            target = urlunsplit((parts.scheme, parts.netloc, encoder.default_path, parts.query, ""))
        self.url = url
        self.encoding = encoding
        self._own = {
            "encoding": encoding,
            "gzip": gzip,
            "timeout": timeout,
            "headers": {k: (v if v.startswith("env:") else "***") for k, v in raw_headers.items()},
            "verify": verify,
            "token": token if token.startswith("env:") else ("***" if token else ""),
            "index": index,
            "labels": raw_labels,
            "service": service,
        }
        sink = _HTTPSink(target, encoder, gzip, request_headers, timeout, verify)
        super().__init__(sink, settings, levelno, f"HTTPHandler({sink.describe()})")

    def _check_formatter(self, fmt: logging.Formatter | None) -> None:
        if fmt is not None and not (hasattr(fmt, "format_bytes") and hasattr(fmt, "event_dict")):
            raise TypeError(
                f"HTTPHandler renders records as JSON objects and needs a formatter with "
                f"format_bytes() and event_dict(), such as structflow.formatters.JsonFormatter; "
                f"got {type(fmt).__name__}"
            )

    def _repr_items(self) -> Any:
        yield repr(_mask_url(self.url))
        for key, value in self._own.items():
            if value != self.OWN_DEFAULTS[key]:
                yield f"{key}={value!r}"
