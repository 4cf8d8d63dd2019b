"""
Handlers: write records to a stream, or ship them to remote destinations without blocking.

* :class:`HTTPHandler` — batches over HTTP(S) as NDJSON, a JSON array, Loki,
  Elasticsearch bulk, Splunk HEC, Datadog or OTLP/JSON;
* :class:`SyslogHandler` — RFC 5424 over TCP or TLS (RFC 6587 octet
  counting) or UDP;
* :class:`StoreHandler` — into a log store (SQLite or PostgreSQL), queryable
  with :mod:`structflow.store` and ``structflow logs``;
* :class:`ShippingHandler` — the same machinery in front of any
  :class:`Sink`, such as :class:`structflow.testing.MockSink`.

Shipping handlers queue records from ``emit`` (no I/O on the caller's
thread), deliver them from a background worker with retries, bound their
memory (``max_queue_bytes``, ``when_full``), can keep records in a crash-safe
on-disk spool (``spool_dir``), and count everything in ``stats()``.
Diagnostics go to the ``structflow.shipping`` logger.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from structflow.handlers.http import HTTPHandler, InsecureCredentialsWarning
    from structflow.handlers.shipping.handler import ShippingHandler
    from structflow.handlers.shipping.sink import Outcome, Sink
    from structflow.handlers.store import StoreHandler
    from structflow.handlers.syslog import SyslogHandler

__all__ = [
    "HTTPHandler",
    "InsecureCredentialsWarning",
    "Outcome",
    "ShippingHandler",
    "Sink",
    "StoreHandler",
    "SyslogHandler",
]

# Each name is imported when first asked for: `import structflow` loads the
# stream handler (structflow.handlers.stream) and must not pay for requests.
_HOMES = {
    "HTTPHandler": "structflow.handlers.http",
    "InsecureCredentialsWarning": "structflow.handlers.http",
    "Outcome": "structflow.handlers.shipping.sink",
    "ShippingHandler": "structflow.handlers.shipping.handler",
    "Sink": "structflow.handlers.shipping.sink",
    "StoreHandler": "structflow.handlers.store",
    "SyslogHandler": "structflow.handlers.syslog",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
