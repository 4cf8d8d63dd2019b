"""
Loggers and the record contract.

Every record that reaches a handler is an ordinary :class:`logging.LogRecord`
whose ``getMessage()`` is the human message. Run context and bound keys are
attributes of the record and their names are listed in
``record.structflow_fields``.

This module is the public face of that layer: :class:`Logger` (the class of
every logger under ``structflow``), :class:`BoundLogger`, :class:`LogRecord`
and :func:`get_logger`. They are implemented in ``structflow._loggers``,
``structflow._records`` and ``structflow._setup``; this module only imports
them, so none of those imports it back.
"""

from __future__ import annotations

from structflow._loggers import ROOT_NAME, BoundLogger, Logger
from structflow._records import LogRecord, safe_message
from structflow._setup import get_logger

__all__ = ["ROOT_NAME", "BoundLogger", "LogRecord", "Logger", "get_logger", "safe_message"]
