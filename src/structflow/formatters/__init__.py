"""
Formatters: how a record becomes text.

Four renderers, each a :class:`logging.Formatter` taking ordinary keyword
arguments, so they work with any stdlib handler and with
:func:`logging.config.dictConfig`:

* :class:`ClassicFormatter`: the ``%(asctime)s``-style format string, for
  people;
* :class:`JsonFormatter`: one JSON object per line, for log aggregators, in
  structflow's own key layout or that of ECS, Google Cloud Logging, Datadog or
  the OpenTelemetry log data model (``json_schema``);
* :class:`ConsoleFormatter`: colourful and aligned, for a terminal;
* :class:`LogfmtFormatter`: ``key=value`` pairs.

All of them show the run context, bound keys and ``extra=`` fields, redact
secret keys, truncate huge messages, run extra structlog-style
``processors``, and never raise into the code that logs.

**Common options.** Every formatter takes these, then its own keyword
arguments:

* ``fmt``, ``datefmt``, ``style``, ``validate`` (positional too, in
  :class:`logging.Formatter`'s order, as ``dictConfig`` passes them) and
  ``defaults``: as :class:`logging.Formatter` takes them. Only the classic
  renderer shows a format; the others accept ``fmt`` and ignore it.
* ``redact_keys``: keys whose values render as ``"[REDACTED]"``
  (case-insensitive, at any depth).
* ``max_message_bytes``: longer messages (and exception texts) are
  truncated with a marker; ``None`` for no limit.
* ``processors``: structlog-style processors (callables or
  ``"package.module:callable"``) run on the event dict first.

An unknown keyword argument is a ``TypeError`` naming it and the ones the
formatter takes.

Each renderer has its own module (``classic``, ``json``, ``console``,
``logfmt``) on top of the event dict they share; import them from here.
"""

from __future__ import annotations

import logging
from typing import Any

from structflow._levels import gcp_severity, otel_severity_number
from structflow._values import to_json_bytes
from structflow.formatters._event import EventFormatter
from structflow.formatters._traceback import escape
from structflow.formatters.classic import DEFAULT_DATEFMT, DEFAULT_FORMAT, ClassicFormatter
from structflow.formatters.console import ConsoleFormatter
from structflow.formatters.json import ECS_VERSION as ECS_VERSION
from structflow.formatters.json import JSON_SCHEMAS, JsonFormatter
from structflow.formatters.logfmt import LogfmtFormatter

__all__ = [
    "DEFAULT_DATEFMT",
    "DEFAULT_FORMAT",
    "JSON_SCHEMAS",
    "RENDERERS",
    "ClassicFormatter",
    "ConsoleFormatter",
    "JsonFormatter",
    "LogfmtFormatter",
    "escape",
    "formatter_for",
    "gcp_severity",
    "otel_severity_number",
    "to_json_bytes",
]

#: Accepted values of ``formatter_for(renderer, ...)``.
RENDERERS: tuple[str, ...] = ("classic", "json", "console", "logfmt")


# --- factory -------------------------------------------------------------------

_FORMATTERS: dict[str, type[EventFormatter]] = {
    "classic": ClassicFormatter,
    "json": JsonFormatter,
    "console": ConsoleFormatter,
    "logfmt": LogfmtFormatter,
}
_COMMON_OPTIONS = frozenset(
    {"fmt", "format", "datefmt", "style", "redact_keys", "max_message_bytes", "processors"}
)
_OPTIONS_BY_RENDERER: dict[str, frozenset[str]] = {
    "classic": frozenset({"defaults", "missing"}),
    "json": frozenset({"json_schema", "service_name"}),
    "console": frozenset({"colors", "stream", "pad_message"}),
    "logfmt": frozenset(),
}
_ALL_OPTIONS = _COMMON_OPTIONS.union(*_OPTIONS_BY_RENDERER.values())


def formatter_for(renderer: str, **options: Any) -> logging.Formatter:
    """
    Return the formatter for *renderer* (``classic``, ``json``, ``console``, ``logfmt``).

    *options* are the ``[logging]`` config values (``fmt`` or ``format``,
    ``datefmt``, ``json_schema``, ``redact_keys``, ``max_message_bytes``,
    ``processors``) plus renderer-specific ones (``stream`` and ``colors``
    for console, ``service_name`` for json, ``defaults`` for classic).
    Options that do not concern the chosen renderer are ignored, so the
    whole section can be passed.

    Raises:
        ValueError: an unknown renderer or a bad option value.
        TypeError: an option no renderer knows.

    .. versionadded:: 0.1.0
    """
    name = renderer.lower() if isinstance(renderer, str) else renderer
    cls = _FORMATTERS.get(name)
    if cls is None:
        raise ValueError(
            f"renderer={renderer!r} is not a renderer; expected one of {', '.join(RENDERERS)}"
        )
    unknown = sorted(set(options) - _ALL_OPTIONS)
    if unknown:
        raise TypeError(
            f"formatter_for() got unknown option(s) {', '.join(unknown)}; "
            f"expected some of {', '.join(sorted(_ALL_OPTIONS))}"
        )
    if "format" in options:
        fmt = options.pop("format")
        options.setdefault("fmt", fmt)
    wanted = _COMMON_OPTIONS | _OPTIONS_BY_RENDERER[name]
    kwargs = {k: v for k, v in options.items() if k in wanted}
    if name != "classic":
        # Only the classic renderer uses a format string.
        kwargs.pop("fmt", None)
        kwargs.pop("style", None)
    return cls(**kwargs)
