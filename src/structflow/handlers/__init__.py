"""
Shipping handlers: send records to remote destinations without blocking.

* :class:`HTTPHandler` — batches over HTTP(S) as NDJSON, a JSON array, Loki,
  Elasticsearch bulk, Splunk HEC, Datadog or OTLP/JSON;
* :class:`SyslogHandler` — RFC 5424 over TCP or TLS (RFC 6587 octet
  counting) or UDP;
* :class:`StoreHandler` — into a log store (SQLite or PostgreSQL), queryable
  with :mod:`structflow.store` and ``structflow logs``.

Both queue records from ``emit`` (no I/O on the caller's thread), deliver
them from a background worker with retries, bound their memory
(``max_queue_bytes``, ``when_full``), can keep records in a crash-safe
on-disk spool (``spool_dir``), and count everything in ``stats()``.
Diagnostics go to the ``structflow.shipping`` logger.
"""

from __future__ import annotations

from structflow.handlers.http import HTTPHandler
from structflow.handlers.store import StoreHandler
from structflow.handlers.syslog import SyslogHandler

__all__ = ["HTTPHandler", "StoreHandler", "SyslogHandler"]
