"""
The level table: how every renderer and destination spells a stdlib level.

One row per stdlib level gives its lower-case name and its severity in the
OpenTelemetry log data model, Google Cloud Logging and syslog (RFC 5424).
Renderers and encoders read their severities here and nowhere else, so a
record has the same severity in every output.

A level between two rows (a custom level such as
``logging.addLevelName(25, "NOTICE")``) takes the row of the stdlib level
below it. For OpenTelemetry it also takes the following numbers of that
level's range, one per level above it and at most three (25 is 12, INFO4),
which is the rule of OpenTelemetry's own Python SDK. Levels 1 to 9 are
OpenTelemetry's TRACE range; level 0 (NOTSET) is its "unspecified" 0.

A leaf module: it imports nothing from structflow.
"""

from __future__ import annotations

__all__ = [
    "LOWER_NAMES",
    "gcp_severity",
    "otel_severity_number",
    "otel_severity_text",
    "syslog_severity",
]

# (lowest level number, OTel SeverityNumber, GCP severity, syslog severity),
# highest level first. The last row is below DEBUG: OTel's TRACE range.
_TABLE: tuple[tuple[int, int, str, int], ...] = (
    (50, 21, "CRITICAL", 2),
    (40, 17, "ERROR", 3),
    (30, 13, "WARNING", 4),
    (20, 9, "INFO", 6),
    (10, 5, "DEBUG", 7),
    (1, 1, "DEFAULT", 7),
)
# OTel spells two stdlib names differently; other names are kept as they are.
_OTEL_TEXT: dict[str, str] = {"WARNING": "WARN", "CRITICAL": "FATAL"}

#: stdlib level names and their lower-case spelling (the JSON ``level`` value).
LOWER_NAMES: dict[str, str] = {
    name: name.lower() for name in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "NOTSET")
}


def otel_severity_number(levelno: int) -> int:
    """
    The OpenTelemetry SeverityNumber of a level number.

    DEBUG 5, INFO 9, WARNING 13, ERROR 17, CRITICAL 21; a level between two
    stdlib levels takes the next numbers of the lower one's range (at most 3
    above it); levels below DEBUG are TRACE (1-4); NOTSET is 0 (unspecified).
    """
    for floor, number, _gcp, _syslog in _TABLE:
        if levelno >= floor:
            return number + min(3, levelno - floor)
    return 0


def otel_severity_text(levelname: str) -> str:
    """The OpenTelemetry SeverityText of a level name: ``WARN``, ``FATAL``, else the name."""
    return _OTEL_TEXT.get(levelname, levelname)


def gcp_severity(levelno: int) -> str:
    """Google Cloud Logging's severity of a level number (rounded down; DEFAULT below DEBUG)."""
    for floor, _number, gcp, _syslog in _TABLE:
        if levelno >= floor:
            return gcp
    return "DEFAULT"


def syslog_severity(levelno: int) -> int:
    """
    The RFC 5424 severity of a level number (rounded down).

    Critical 2, error 3, warning 4, info 6, debug 7 (and below).
    """
    for floor, _number, _gcp, syslog in _TABLE:
        if levelno >= floor:
            return syslog
    return 7
