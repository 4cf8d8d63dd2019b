"""
Helpers for testing code that logs with structflow.

:func:`capture_logs` collects what your code logs as plain dicts, the same
dicts the JSON renderer writes, so a test can assert on messages, levels,
run context and fields without parsing output::

    from structflow.testing import capture_logs

    def test_load_logs_rows():
        with capture_logs() as logs:
            load(rows=3)
        assert {"message": "loaded 3 rows", "level": "info",
                "logger": "structflow.load", "rows": 3} in logs

:class:`MockSink` stands in for a receiver behind a
:class:`~structflow.handlers.ShippingHandler`: it keeps what the worker sends
and answers as told, so batching, encoding, redaction and retries can be
tested without a server (as httpx's ``MockTransport`` does for requests).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from structflow._setup import ensure_configured
from structflow.formatters import JsonFormatter
from structflow.handlers.encoders import ENCODINGS, EncoderOptions, EncodingSink, make_encoder
from structflow.handlers.shipping.settings import check_choice, check_str, check_str_mapping
from structflow.handlers.shipping.sink import Outcome
from structflow.loggers import ROOT_NAME, get_logger

__all__ = ["CapturedLogs", "MockSink", "capture_logs"]


class CapturedLogs(list[dict[str, Any]]):
    """
    The event dicts captured by :func:`capture_logs`, in the order logged.

    A list of dicts; :attr:`records` holds the :class:`logging.LogRecord`
    objects they were made from, in the same order.

    .. versionadded:: 0.1.0
    """

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def messages(self) -> list[str]:
        """Return the ``message`` of every captured event."""
        return [str(event.get("message")) for event in self]


class _CaptureHandler(logging.Handler):
    """Turns each record into an event dict; a record seen twice is kept once."""

    def __init__(self, logs: CapturedLogs, formatter: JsonFormatter) -> None:
        super().__init__(logging.NOTSET)
        self.logs = logs
        self.event_formatter = formatter
        # The captured records are kept alive by `logs.records`, so their ids
        # cannot be reused while the capture lasts.
        self._seen: set[int] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if id(record) in self._seen:
            return
        self._seen.add(id(record))
        event = self.event_formatter.event_dict(record)
        event.pop("timestamp", None)
        self.logs.records.append(record)
        self.logs.append(event)


@contextmanager
def capture_logs(
    *loggers: str | logging.Logger,
    level: int | str | None = None,
    formatter: JsonFormatter | None = None,
) -> Iterator[CapturedLogs]:
    """
    Capture records as event dicts for the duration of a ``with`` block.

    By default the handler sits on structflow's root logger (``structflow``),
    which every task, flow and engine logger propagates to, and on the
    loggers named in the ``extra_loggers`` setting. Name other loggers (or
    pass them) to capture them too: ``capture_logs("urllib3")``; ``""``
    names the root logger. A record reaching several of them is captured
    once.

    Each event is what :class:`~structflow.formatters.JsonFormatter` would
    write, without the ``timestamp``: ``level``, ``logger``, ``message``, the
    run context, bound and ``extra=`` fields, and ``exception`` when there is
    one. Redaction and truncation apply as in output; pass your own
    ``formatter`` (a ``JsonFormatter``, possibly with another ``json_schema``
    or ``processors``) to change that.

    Args:
        loggers: more loggers to capture, by name or object.
        level: if given, the level of the captured loggers during the block
            (restored afterwards); otherwise their configured levels filter as
            usual, so ``debug`` records are captured only if enabled.
        formatter: the formatter making the event dicts.

    Yields:
        A :class:`CapturedLogs` list that fills as records arrive.

    .. versionadded:: 0.1.0
    """
    logs = CapturedLogs()
    handler = _CaptureHandler(logs, formatter if formatter is not None else JsonFormatter())
    targets: list[logging.Logger] = [get_logger()]
    # The configured extra loggers stop propagation at themselves once
    # structflow has handlers on them, so they are captured where they are.
    extra = tuple(ensure_configured().logging.extra_loggers)
    for item in (*extra, *loggers):
        if isinstance(item, logging.Logger):
            lg = item
        elif item == ROOT_NAME:
            lg = get_logger()
        elif item.startswith(ROOT_NAME + "."):
            # structflow's own tree: made with structflow's logger class.
            lg = get_logger(item[len(ROOT_NAME) + 1 :])
        else:
            lg = logging.getLogger(item)
        if lg not in targets:
            targets.append(lg)
    saved_levels = [lg.level for lg in targets]
    for lg in targets:
        lg.addHandler(handler)
        if level is not None:
            lg.setLevel(level)
    try:
        yield logs
    finally:
        for lg, saved in zip(targets, saved_levels, strict=True):
            lg.removeHandler(handler)
            if level is not None:
                lg.setLevel(saved)
        handler.close()


#: What a :class:`MockSink` may answer: an outcome, or the kind of one.
Answer = Outcome | str
_KINDS = ("ok", "retry", "split", "reject")


def _outcome(answer: object) -> Outcome:
    """Return *answer* as an Outcome (a kind names an outcome without details)."""
    if isinstance(answer, Outcome):
        return answer
    kind = check_choice("MockSink", "answer", answer, _KINDS)
    return Outcome(kind, f"MockSink answered {kind!r}")  # type: ignore[arg-type]  # checked


class MockSink(EncodingSink):
    """
    A sink that keeps what it is sent and answers as told: shipping without a receiver.

    Put it behind a :class:`~structflow.handlers.ShippingHandler` with the
    options under test; records are rendered and encoded exactly as
    :class:`~structflow.handlers.HTTPHandler` does for *encoding* (with the
    handler's formatter, a ``JsonFormatter`` by default), batched by the
    real worker, and handed to :meth:`send`, which records them and answers::

        from structflow.handlers import ShippingHandler
        from structflow.testing import MockSink

        sink = MockSink(answer=["retry", "ok"])        # the first attempt fails
        handler = ShippingHandler(sink, batch_max_records=2, retry_backoff=0.01)
        ...                                            # log through the handler
        assert handler.flush(timeout=5)
        sink.attempts    # the entries of each attempt: the first batch twice
        sink.events()    # what was delivered, as dicts

    Args:
        answer: how each attempt is answered: ``"ok"`` (the default),
            ``"retry"`` (as a 503 would be), ``"split"`` (as a 413),
            ``"reject"`` (as a 400), an :class:`~structflow.handlers.Outcome`;
            a list of those, used one per attempt in order (``"ok"`` once it
            runs out); or a callable given each attempt's entries that
            returns one.
        encoding: the ``HTTPHandler`` encoding entries and :meth:`bodies`
            are made for (``ndjson`` by default); its limits (Datadog's 1000
            records a request, ...) apply to batches as they would there.
        index: as ``HTTPHandler``'s (Elasticsearch, Splunk).
        labels: as ``HTTPHandler``'s (Loki, Datadog, Splunk, OTLP).
        service: as ``HTTPHandler``'s; default: the program's name.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        answer: Answer | Sequence[Answer] | Callable[[list[bytes]], Answer] = "ok",
        *,
        encoding: str = "ndjson",
        index: str = "",
        labels: Mapping[str, str] | None = None,
        service: str = "",
    ) -> None:
        check_choice("MockSink", "encoding", encoding, tuple(ENCODINGS))
        check_str("MockSink", "index", index)
        check_str("MockSink", "service", service)
        options = EncoderOptions.of_this_process(
            index, check_str_mapping("MockSink", "labels", labels or {}), service
        )
        super().__init__(make_encoder(encoding, options), "mock")
        self._answer = answer
        # A callable answers each attempt; otherwise the script does, in
        # order, and then `_then` (a fixed answer is an empty script).
        self._call: Callable[[list[bytes]], Answer] | None = None
        self._script: deque[Outcome] = deque()
        self._then = Outcome("ok")
        if isinstance(answer, str | Outcome):
            self._then = _outcome(answer)
        elif callable(answer):
            self._call = answer
        else:
            self._script.extend(_outcome(item) for item in answer)
        self._lock = threading.Lock()
        #: The entries of every delivery attempt, in order.
        self.attempts: list[list[bytes]] = []
        #: The entries of the attempts answered ``ok``, in order.
        self.delivered: list[bytes] = []

    def send(self, entries: Sequence[bytes], timeout: float) -> Outcome:
        """Keep *entries* and answer as told."""
        batch = list(entries)
        with self._lock:
            self.attempts.append(batch)
            if self._call is not None:
                outcome = _outcome(self._call(batch))
            elif self._script:
                outcome = self._script.popleft()
            else:
                outcome = self._then
            if outcome.kind == "ok":
                self.delivered.extend(batch)
        return outcome

    def bodies(self) -> list[bytes]:
        """The request body of every attempt, as ``HTTPHandler`` would POST it (before gzip)."""
        with self._lock:
            return [self.encoder.body(batch) for batch in self.attempts]

    def events(self) -> list[dict[str, Any]]:
        """
        The delivered entries as dicts.

        For the encodings whose entry is one JSON object: ``ndjson``,
        ``json``, ``elasticsearch``, ``splunk-hec`` and ``datadog``.
        """
        with self._lock:
            return [json.loads(entry) for entry in self.delivered]

    def describe(self) -> str:
        return f"MockSink ({self.encoder.name})"

    def __repr__(self) -> str:
        return f"MockSink(answer={self._answer!r}, encoding={self.encoder.name!r})"
