"""
A local HTTP receiver that counts log records, for the shipping cases.

``python -m benchmarks.receiver [--port N]`` listens on 127.0.0.1 (port 0
picks a free one), prints ``READY <port>`` and serves until terminated.

Every POST counts the records in its body:

* ``/v1/logs`` is OTLP/HTTP JSON: the ``logRecords`` of every scope are
  counted;
* a body-less POST with a ``msg`` query parameter (the seed page's handler)
  counts one record;
* anything else is NDJSON: one record per non-empty line.

``Content-Encoding: gzip`` bodies are decompressed first. ``GET /_stats``
returns the counts as JSON, with the wall-clock time (``time.time()``) of the
first and last delivered record, so a sender in another process can compute
its delivery rate. ``GET /_last`` returns the last decoded body (or the seed
handler's message), for checking what was shipped. ``POST /_reset`` zeroes
the counts.
"""

from __future__ import annotations

import argparse
import gzip
import json
import signal
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

# Bodies larger than this are refused with 413, as a real collector would.
MAX_BODY_BYTES = 64 * 1024 * 1024


class Counts:
    """Thread-safe counters of what was delivered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.records = 0
            self.requests = 0
            self.bytes = 0
            self.bad_requests = 0
            self.first: float | None = None
            self.last: float | None = None
            self.last_body = b""

    def add(self, records: int, size: int, body: bytes) -> None:
        now = time.time()
        with self._lock:
            self.last_body = body
            self.records += records
            self.requests += 1
            self.bytes += size
            if self.first is None:
                self.first = now
            self.last = now

    def bad(self) -> None:
        with self._lock:
            self.bad_requests += 1

    def latest_body(self) -> bytes:
        with self._lock:
            return self.last_body

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "records": self.records,
                "requests": self.requests,
                "bytes": self.bytes,
                "bad_requests": self.bad_requests,
                "first": self.first,
                "last": self.last,
            }


def count_records(path: str, query: str, body: bytes) -> int:
    """
    Return how many log records *body* holds.

    Raises:
        ValueError: when an OTLP body is not the JSON that OTLP/HTTP defines.
    """
    if path.rstrip("/").endswith("/v1/logs"):
        doc = json.loads(body)
        total = 0
        for resource_logs in doc.get("resourceLogs", []):
            for scope_logs in resource_logs.get("scopeLogs", []):
                total += len(scope_logs.get("logRecords", []))
        return total
    if not body:
        return len(parse_qs(query).get("msg", []))
    lines = body.split(b"\n")
    # Blank lines (the empty string after the final "\n") are not records.
    return len(lines) - lines.count(b"")


class Handler(BaseHTTPRequestHandler):
    """Counts records in POST bodies; serves ``/_stats``."""

    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: a line per request would cost more than the request."""

    def _reply(self, status: int, body: bytes = b"", content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/_stats":
            body = json.dumps(self.server.counts.snapshot()).encode()
            self._reply(200, body, "application/json")
        elif path == "/_last":
            self._reply(200, self.server.counts.latest_body(), "application/octet-stream")
        else:
            self._reply(404)

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.server.counts.bad()
            self._reply(413)
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        if url.path == "/_reset":
            self.server.counts.reset()
            self._reply(204)
            return
        try:
            encoding = (self.headers.get("Content-Encoding") or "").lower()
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            records = count_records(url.path, url.query, body)
        except (OSError, ValueError, zlib.error):
            self.server.counts.bad()
            self._reply(400, b"unreadable body")
            return
        if not body:
            # The seed page's handler sends the message as a query parameter.
            body = "\n".join(parse_qs(url.query).get("msg", [])).encode()
        self.server.counts.add(records, length, body)
        if url.path.rstrip("/").endswith("/v1/logs"):
            self._reply(200, b"{}", "application/json")
        else:
            self._reply(200)


class Server(ThreadingHTTPServer):
    """The HTTP server with its counters."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, port: int) -> None:
        self.counts = Counts()
        super().__init__(("127.0.0.1", port), Handler)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.receiver")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = Server(args.port)

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stdout.write(f"READY {server.server_address[1]}\n")
    sys.stdout.flush()
    server.serve_forever(poll_interval=0.05)
    server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
