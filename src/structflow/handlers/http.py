"""
:class:`HTTPHandler`: ship records in batches over HTTP(S).

The transport is a ``requests`` session with keep-alive (one connection,
reused), TLS verification on by default, and no retries of its own: the
worker retries with backoff and jitter, splits batches on 413, and drops
batches the receiver refuses for good.
"""

from __future__ import annotations

import re
import warnings
import zlib
from collections.abc import Mapping, Sequence
from typing import Unpack
from urllib.parse import SplitResult, urlsplit, urlunsplit

import requests
import requests.adapters
from urllib3.exceptions import LocationValueError
from urllib3.util import Retry

from structflow.handlers._secrets import (
    Scrubber,
    check_header,
    is_loopback,
    mask_url,
    masked_setting,
    public_url,
)
from structflow.handlers._tls import check_verify
from structflow.handlers.encoders import (
    ENCODINGS,
    Encoder,
    EncoderOptions,
    EncodingSink,
    make_encoder,
)
from structflow.handlers.shipping.handler import ShippingHandler
from structflow.handlers.shipping.settings import (
    ShippingOptions,
    check_bool,
    check_choice,
    check_float,
    check_str,
    check_str_mapping,
    resolve_env,
    takes_shipping_options,
)
from structflow.handlers.shipping.sink import Outcome, keep_for_parent, release_exception

__all__ = ["HTTPHandler", "InsecureCredentialsWarning"]

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


#: Bytes of a response body searched for secrets before a snippet of it is quoted.
_SNIPPET_WINDOW = 16_384
# Header names whose values are credentials (besides the token's own header).
_CREDENTIAL_HEADER = re.compile(r"auth|key|token|secret|password|cookie", re.IGNORECASE)
# What requests raises for a request it cannot make at all (a header, the url or
# a proxy setting it refuses, a host name IDNA refuses): no retry can succeed.
_UNSENDABLE = (
    requests.exceptions.InvalidHeader,
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
    LocationValueError,
    UnicodeError,
)
# (host, port) pairs already warned about credentials over plain http://.
_warned_plain_http: set[tuple[str, int | None]] = set()


class InsecureCredentialsWarning(UserWarning):
    """
    An HTTPHandler sends credentials over plain ``http://`` to another machine.

    The token, the password in the url or a credential header travel
    unencrypted; use an ``https://`` url. Given once per host and port.

    .. versionadded:: 0.1.0
    """


def _snippet(data: bytes, scrub: Scrubber) -> str:
    """The start of a response body, secrets replaced, on one line, for a diagnostic."""
    text = scrub(data[:_SNIPPET_WINDOW].decode("utf-8", "replace"))[: _SNIPPET * 4]
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return text[:_SNIPPET] + ("…" if len(text) > _SNIPPET else "")


class _HTTPSink(EncodingSink):
    """Encodes with an :class:`Encoder` and POSTs with a ``requests`` session."""

    def __init__(
        self,
        url: str,
        encoder: Encoder,
        gzip: bool,
        headers: dict[str, str],
        timeout: float,
        verify: bool | str,
        scrub: Scrubber | None = None,
    ) -> None:
        super().__init__(encoder, "http")
        self.url = url
        #: Replaces the header values, the url's password and query in diagnostics.
        self.scrub = scrub or Scrubber.for_request(url, headers.values(), url)
        self.gzip = gzip
        self.timeout = timeout
        self.verify = verify
        self.headers = {
            "Content-Type": encoder.content_type,
            "User-Agent": f"structflow/{_version()}",
            **headers,
        }
        if gzip:
            self.headers["Content-Encoding"] = "gzip"
        self._session: requests.Session | None = None
        # The request every batch is sent as, but for its body (see _post).
        self._prepared: requests.PreparedRequest | None = None

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

    def _post(self, session: requests.Session, body: bytes, timeout: float) -> requests.Response:
        """
        POST *body* with *session*: the request prepared once, given the body.

        What ``session.post`` would send, for about two thirds of its cost
        (it builds and merges the request, its headers and the session's
        settings anew on every call), which a small queue, sending many
        small batches, pays on every request. Once the receiver has set a
        cookie, every request goes through ``session.post``, which adds it.
        """
        if session.cookies:
            return session.post(
                self.url,
                data=body,
                headers=self.headers,
                timeout=timeout,
                verify=self.verify,
                allow_redirects=False,
            )
        base = self._prepared
        if base is None:
            base = self._prepared = session.prepare_request(
                requests.Request("POST", self.url, headers=self.headers)
            )
        request = base.copy()
        request.prepare_body(body, None)
        return session.send(
            request,
            timeout=timeout,
            verify=self.verify,
            proxies=session.proxies,
            allow_redirects=False,
        )

    def send(self, entries: Sequence[bytes], timeout: float) -> Outcome:
        body = self.encoder.body(entries)
        if self.gzip:
            packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
            body = packer.compress(body) + packer.flush()
        session = self._session or self._new_session()
        try:
            response = self._post(session, body, timeout)
            content = response.content
        except _UNSENDABLE as exc:
            outcome = Outcome("unsendable", self._describe(exc))
            release_exception(exc)
            return outcome
        except requests.RequestException as exc:
            outcome = Outcome("retry", self._describe(exc))
            release_exception(exc)
            return outcome
        return self._outcome(response, content, len(entries))

    def _outcome(self, response: requests.Response, content: bytes, count: int) -> Outcome:
        """What the receiver's answer means for the batch of *count* entries."""
        status = response.status_code
        if 200 <= status < 300:
            checked = self.encoder.check(content, count)
            return checked if checked is not None else Outcome("ok")
        detail = f"HTTP {status} {response.reason or ''}".rstrip()
        snippet = _snippet(content, self.scrub)
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
            location = public_url(response.headers.get("Location", ""))
            detail = f"{detail} (redirected to {location!r}; set url to the final address)"
        return Outcome("reject", detail)

    def _describe(self, exc: BaseException) -> str:
        root = _root_cause(exc)
        if root is not None:
            return f"{type(exc).__name__}: {self.scrub(root)}"
        # requests' messages quote the url as sent (re-encoded, query string
        # included) and sometimes a header: leave the secrets out.
        text = self.scrub(str(exc))
        if len(text) > 300:
            text = text[:300] + "…"
        return f"{type(exc).__name__}: {text}"

    def close(self) -> None:
        session = self._session
        self._session = self._prepared = None
        if session is not None:
            session.close()

    def after_fork_in_child(self) -> None:
        keep_for_parent(self._session)
        self._session = None
        self._prepared = None
        self.encoder.after_fork_in_child()

    def describe(self) -> str:
        return f"{public_url(self.url)} ({self.encoder.name})"


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


def _check_url(owner: str, url: object) -> SplitResult:
    """Return the parts of *url* if it is an http:// or https:// URL with a valid port."""
    text = check_str(owner, "url", url, what="an http:// or https:// URL")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{owner}: url={mask_url(text)!r} is invalid; expected an http:// or https:// URL"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ValueError(f"{owner}: url={mask_url(text)!r} has an invalid port") from None
    return parts


def _target(url: str, parts: SplitResult, encoder: Encoder) -> str:
    """The url to POST to: as given, or with the encoding's path when it has none."""
    if parts.path in ("", "/") and encoder.default_path:
        return urlunsplit((parts.scheme, parts.netloc, encoder.default_path, parts.query, ""))
    return url


def _as_sent(owner: str, url: str) -> str:
    """
    The url as ``requests`` sends it (host IDNA-encoded, path and query re-quoted).

    Raises:
        ValueError: ``requests`` cannot send to it (an empty label, a host IDNA
            refuses), which no retry would change.
    """
    prepared = requests.models.PreparedRequest()
    try:
        prepared.prepare_url(url, None)
        # What urllib3 does to the host on every connection attempt.
        (urlsplit(str(prepared.url)).hostname or "").encode("idna")
    except Exception as exc:
        reason = Scrubber.for_request(url, (), url)(str(exc))
        raise ValueError(
            f"{owner}: url={mask_url(url)!r} is invalid ({reason}); expected an http:// or "
            "https:// URL"
        ) from None
    return str(prepared.url)


def _header_value(owner: str, key: str, name: str, value: str) -> str:
    """
    Resolve ``"env:NAME"`` in the header *name*'s *value* and check it can be sent.

    Raises:
        ValueError: the variable is not set, or the value cannot be a header
            value; the message names *key* and the variable, never the value.
    """
    resolved = resolve_env(owner, key, value)
    if value.startswith("env:"):
        origin = f"the environment variable {value[4:]}"
        check_header(owner, f"{key}={value!r}", name, resolved, origin)
    else:
        check_header(owner, key, name, resolved)
    return resolved


def _warn_if_exposed(parts: SplitResult, headers: Mapping[str, str], token: str) -> None:
    """Warn, once per host and port, when credentials go over plain http:// off this machine."""
    host = parts.hostname or ""
    if parts.scheme != "http" or is_loopback(host):
        return
    credentials = token or parts.username or parts.password
    if not credentials and not any(map(_CREDENTIAL_HEADER.search, headers)):
        return
    where = (host, parts.port)
    if where in _warned_plain_http:
        return
    _warned_plain_http.add(where)
    port = f":{parts.port}" if parts.port else ""
    warnings.warn(
        f"HTTPHandler sends credentials to {host}{port} over plain http://, where anyone on "
        "the network path can read them; use an https:// url",
        InsecureCredentialsWarning,
        stacklevel=3,
    )


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
        options: ``level`` and the worker options (``batch_max_records`` …
            ``fsync_interval``), which every shipping handler shares; see
            "Worker options" on the handlers page.

    Raises:
        ValueError: a value is invalid, or an ``env:NAME`` it refers to is
            not set; the message names the key, the value and what is allowed.
        TypeError: a keyword argument is unknown.

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

    @takes_shipping_options
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
        **options: Unpack[ShippingOptions],
    ) -> None:
        owner = type(self).__name__
        parts = _check_url(owner, url)
        check_choice(owner, "encoding", encoding, tuple(ENCODINGS))
        check_bool(owner, "gzip", gzip)
        timeout = check_float(owner, "timeout", timeout, 0.0, strict=True)
        raw_headers = check_str_mapping(owner, "headers", headers or {})
        verify = check_verify(owner, verify)
        check_str(owner, "token", token)
        check_str(owner, "index", index)
        raw_labels = check_str_mapping(owner, "labels", labels or {})
        check_str(owner, "service", service)
        encoder = make_encoder(encoding, EncoderOptions.of_this_process(index, raw_labels, service))
        resolved = {
            k: _header_value(owner, f"headers[{k!r}]", k, v) for k, v in raw_headers.items()
        }
        secret = _header_value(owner, "token", "Authorization", token) if token else ""
        request_headers = {**(encoder.auth_headers(secret) if secret else {}), **resolved}
        target = _target(url, parts, encoder)
        scrub = Scrubber.for_request(
            target, [*request_headers.values(), secret], _as_sent(owner, target)
        )
        _warn_if_exposed(parts, request_headers, secret)
        sink = _HTTPSink(target, encoder, gzip, request_headers, timeout, verify, scrub)
        super().__init__(sink, **options)
        self.url = url
        self.encoding = encoding
        settings = {
            "encoding": encoding,
            "gzip": gzip,
            "timeout": timeout,
            "headers": raw_headers,
            "verify": verify,
            "token": token,
            "index": index,
            "labels": raw_labels,
            "service": service,
        }
        self._show(
            repr(mask_url(url)), {key: masked_setting(key, v) for key, v in settings.items()}
        )
