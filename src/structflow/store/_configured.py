"""
What the configuration says about the log store: which one, and how long its entries are kept.

``[logging.store] url`` (else :data:`~structflow.store.DEFAULT_URL`) is the
store that :func:`~structflow.store.connect`, the store commands and
``structflow serve`` open without one named; ``[logging.store]
retention_days`` is how long StoreHandler, ``structflow serve``,
``structflow store prune`` and ``Store.prune()`` keep entries.
"""

from __future__ import annotations

import datetime as dt
import math

from structflow.store._dialects import DEFAULT_URL

__all__ = ["check_retention_days", "configured_age", "configured_retention_days", "configured_url"]


def configured_url() -> str:
    """
    The store the configuration names (``[logging.store] url``), else :data:`DEFAULT_URL`.

    Raises:
        ConfigError: the configuration is invalid.
    """
    from structflow._config import effective_config

    cfg = effective_config()
    section = cfg["logging"].get("store")
    url = section.get("url") if section is not None else None
    return url if isinstance(url, str) and url else DEFAULT_URL


def check_retention_days(value: object, owner: str) -> float:
    """
    Return *value* as days to keep entries (``0``: forever).

    Raises:
        ValueError: *value* is not a number of days >= 0; the message starts with *owner*.
    """
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and (not math.isfinite(float(value)) or float(value) < 0):  # type: ignore[arg-type]
        ok = False
    if not ok:
        raise ValueError(
            f"{owner}: retention_days={value!r} is invalid; expected a number of days >= 0 "
            "(0 keeps entries forever)"
        )
    return float(value)  # type: ignore[arg-type]


def configured_retention_days() -> float:
    """
    ``[logging.store] retention_days`` of the configuration (``0`` when it is not set).

    Raises:
        ValueError: the configured value is not a number of days >= 0
            (a :class:`~structflow.ConfigError` when the configuration
            itself is invalid).
    """
    from structflow._config import effective_config

    section = effective_config()["logging"].get("store")
    if section is None or "retention_days" not in section:
        return 0.0
    # Named as a handler's key is when configure() refuses it: where it came from first.
    where = section.source("retention_days")
    return check_retention_days(section["retention_days"], f"{where}: [logging.store]")


def configured_age() -> dt.timedelta | None:
    """The age ``retention_days`` configures, or None when it is not set (or ``0``)."""
    days = configured_retention_days()
    return dt.timedelta(days=days) if days else None
