"""
What ``structflow serve`` runs with: command-line options over ``[server]`` over defaults.

No web framework is imported here, so the command can check its settings
(and say which extra is missing) before loading one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ServerSettings", "SettingsError", "is_loopback", "resolve_settings"]


class SettingsError(ValueError):
    """The server cannot start with these settings; the message says why, on one line."""


def is_loopback(host: str) -> bool:
    """Whether *host* is a loopback address (``127.0.0.0/8``, ``::1``) or ``localhost``."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerSettings:
    """
    The effective settings of one server.

    Attributes:
        store: the store's url (as :func:`structflow.store.connect` takes it).
        host: the address to listen on.
        port: the TCP port (0: any free port).
        token: the bearer token every request must carry; ``""``: none.
        retention_days: entries older than this many days are pruned as
            lines are stored (``[logging.store] retention_days``; ``0``: none).
        host_from: the host as its source spells it, for messages
            (``--host 0.0.0.0``, ``STRUCTFLOW__SERVER__HOST='0.0.0.0'``).
    """

    store: str
    host: str
    port: int
    token: str
    retention_days: float = 0.0
    host_from: str = field(default="", compare=False)

    def __repr__(self) -> str:
        token = "'***'" if self.token else "''"
        return (
            f"ServerSettings(store={self.store!r}, host={self.host!r}, port={self.port!r}, "
            f"token={token}, retention_days={self.retention_days!r})"
        )

    def check(self) -> None:
        """
        Refuse what would expose the logs: another address than loopback without a token.

        Raises:
            SettingsError: the host is not loopback and there is no token.
        """
        if not self.token and not is_loopback(self.host):
            raise SettingsError(
                f"{self.host_from or '--host ' + self.host} is not a loopback address, "
                "and serving logs beyond this "
                "machine needs a token: pass --token, or set STRUCTFLOW__SERVER__TOKEN "
                "([server] token)"
            )


def resolve_settings(options: Mapping[str, Any]) -> ServerSettings:
    """
    Merge the command line's *options* (None: not given) over the ``[server]`` configuration.

    Without a store anywhere, the configured store (``[logging.store] url``,
    else the default file) is served. ``[logging.store] retention_days``
    applies to the store served, as ``structflow store prune`` applies it.

    Raises:
        ConfigError: the configuration is invalid.
        SettingsError: a command-line option is invalid.
    """
    from structflow._config import ConfigError, load_config
    from structflow.store._configured import configured_retention_days, configured_url

    section = load_config()["server"]
    merged = {key: section[key] for key in ("store", "host", "port", "token")}
    for key, value in options.items():
        if value is not None:
            merged[key] = value
    port = merged["port"]
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise SettingsError(f"--port {port} is not a TCP port; expected 0 to 65535")
    host = str(merged["host"]).strip()
    if options.get("host") is not None:
        host_from = f"--host {host}"
    else:
        host_from = section.source("host").subject("server.host", host)
    if not host:
        raise SettingsError(f"{host_from} is empty; expected an address such as 127.0.0.1")
    store = str(merged["store"]) or configured_url()
    try:
        retention_days = configured_retention_days()
    except ConfigError:
        raise
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    return ServerSettings(
        store=store,
        host=host,
        port=port,
        token=str(merged["token"]),
        retention_days=retention_days,
        host_from=host_from,
    )
