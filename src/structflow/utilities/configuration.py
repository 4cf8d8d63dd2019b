"""
``structflow.utilities.configuration``: Prefect 1's test helper, ``set_temporary_config``.

``set_temporary_config({"logging.level": "DEBUG"})`` applies configuration
values for the length of a ``with`` block, as :func:`structflow.configure`
would with them added to the call in force, and puts back that call's
values afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from structflow._config import CONFIGURE_SECTION, SECTIONS, Config, ConfigError, prefect1_only
from structflow._setup import configure, configured_overrides

__all__ = ["set_temporary_config"]


@contextmanager
def set_temporary_config(temp_config: Mapping[str, Any]) -> Iterator[Config]:
    """
    Apply configuration values for the length of a ``with`` block.

    Keys are dotted, as in Prefect 1: ``"logging.level"``,
    ``"logging.format"``, ``"logging.http.url"``. They are added to the
    values of the :func:`structflow.configure` call in force (the file and
    the environment are read again, as ``configure`` reads them); on leaving
    the block that call's values are applied again. Prefect 1's own
    settings (``"flows.checkpointing"``, ``"cloud.api"``, ...) are left
    alone, as in a config file. Meant for tests: the configuration is
    global, so threads running meanwhile see the values too.

    Yields:
        The effective configuration (also ``structflow.config``).

    Raises:
        ConfigError: a key structflow does not have, or a value
            ``configure`` refuses; nothing is changed.

    .. versionadded:: 0.1.0
    """
    previous = configured_overrides()
    overrides = _added(previous, temp_config)
    cfg = configure(**overrides)
    try:
        yield cfg
    finally:
        configure(**previous)


def _added(previous: Mapping[str, Any], temp_config: Mapping[str, Any]) -> dict[str, Any]:
    """``configure``'s keyword arguments: *previous* with the dotted keys of *temp_config*."""
    if not isinstance(temp_config, Mapping):
        raise ConfigError(
            "set_temporary_config() takes a dict of dotted keys, such as "
            f"{{'logging.level': 'DEBUG'}}; got {type(temp_config).__name__}"
        )
    tables = SECTIONS[CONFIGURE_SECTION].tables
    merged = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in previous.items()}
    for key, value in temp_config.items():
        parts = key.split(".") if isinstance(key, str) else []
        if parts and prefect1_only(parts):
            continue
        if len(parts) == 2 and parts[0] == CONFIGURE_SECTION and all(parts):
            merged[parts[1]] = value
        elif len(parts) == 3 and parts[0] == CONFIGURE_SECTION and parts[1] in tables and parts[2]:
            table = merged.get(parts[1])
            merged[parts[1]] = {**(table if isinstance(table, Mapping) else {}), parts[2]: value}
        else:
            raise ConfigError(
                f"set_temporary_config(): {key!r} is not a key structflow takes here; "
                f"expected [{CONFIGURE_SECTION}] keys such as 'logging.level' or "
                f"'logging.http.url' (tables: {', '.join(tables)})"
            )
    return merged
