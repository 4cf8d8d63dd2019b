"""
Configuration: built-in defaults < user config file < environment < ``configure()``.

The effective configuration is a nested, read-only :class:`Config`. Every
value remembers where it came from, which is what ``structflow config show``
prints and what error messages name.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from structflow.processors import DEFAULT_REDACT_KEYS

__all__ = ["Config", "ConfigError", "load_config"]

ENV_PREFIX = "STRUCTFLOW__"
PATH_VAR = "STRUCTFLOW__USER_CONFIG_PATH"
DEFAULT_PATH = "~/.structflow/config.toml"

LEVELS = ("NOTSET", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
RENDERERS = ("classic", "json", "console", "logfmt")
SCHEMAS = ("default", "ecs", "gcp", "datadog", "otel")
STREAMS = ("stdout", "stderr", "none")
DEFAULT_FORMAT = "[%(asctime)s] %(levelname)s - %(name)s | %(message)s"
DEFAULT_DATEFMT = "%Y-%m-%d %H:%M:%S%z"

# Subsections of [logging] whose keys belong to a handler; the handler's
# constructor validates them, so here they are only required to be tables.
HANDLER_SECTIONS = ("http", "syslog", "store")


class ConfigError(ValueError):
    """
    A configuration value is invalid.

    The message names the source (file path and line, the environment
    variable, or ``configure()``), the key, the bad value and what is allowed.

    .. versionadded:: 0.1.0
    """


@dataclass(frozen=True)
class Source:
    """Where a configuration value came from."""

    kind: str  # "default" | "file" | "env" | "configure"
    where: str = ""  # file path, variable name, or ""
    line: int | None = None

    def __str__(self) -> str:
        if self.kind == "file":
            return f"{self.where}, line {self.line}" if self.line else self.where
        if self.kind == "env":
            return self.where
        if self.kind == "configure":
            return "structflow.configure()"
        return "default"

    def subject(self, dotted: str, value: object) -> str:
        """Phrase '<where>: key = value' the way the source spells the key."""
        if self.kind == "env":
            return f"{self.where}={value!r}"
        if self.kind == "configure":
            return f"structflow.configure({dotted.rsplit('.', 1)[-1]}={value!r})"
        return f"{self}: {dotted} = {value!r}"


# --- validators -----------------------------------------------------------------


def _choice(allowed: tuple[str, ...], what: str, *, upper: bool = False) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, str):
            norm = value.upper() if upper else value.lower()
            if norm in allowed:
                return norm
        raise ValueError(f"is not {what}; expected one of {', '.join(allowed)}")

    return check


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {type(value).__name__}")
    return value


def _format(value: Any) -> str:
    fmt = _str(value)

    class _Any(dict[str, Any]):
        def __missing__(self, key: str) -> int:
            return 0

    try:
        fmt % _Any()
    except (ValueError, TypeError) as exc:
        raise ValueError(f"is not a valid %-style format string ({exc})") from None
    return fmt


def _datefmt(value: Any) -> str:
    fmt = _str(value)
    import time

    try:
        time.strftime(fmt, time.localtime(0))
    except ValueError as exc:
        raise ValueError(f"is not a valid strftime format ({exc})") from None
    return fmt


def _str_list(value: Any) -> list[str]:
    if isinstance(value, str):
        # Prefect 1 users wrote lists as strings ("['urllib3', 'botocore']");
        # read those as lists, like the environment does.
        value = _cast_env(value, list)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a list of strings")
    return list(value)


def _processor_list(value: Any) -> list[str]:
    items = _str_list(value)
    for item in items:
        if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", item):
            raise ValueError(f"has {item!r}, which is not of the form 'package.module:callable'")
    return items


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ValueError(
            "is not a TCP port; expected an integer from 0 to 65535 (0: any free port)"
        )
    return value


def _host(value: Any) -> str:
    host = _str(value).strip()
    if not host or any(c.isspace() or c in "/@?#" for c in host):
        raise ValueError("is not a host; expected an address such as 127.0.0.1, ::1 or 0.0.0.0")
    return host


@dataclass(frozen=True)
class Key:
    """One key of the [logging] section: its default and its rule."""

    default: Any
    check: Callable[[Any], Any]
    kind: type  # str, int or list: how environment strings are cast
    help: str


LOGGING_KEYS: dict[str, Key] = {
    "level": Key(
        "INFO",
        _choice(LEVELS, "a log level", upper=True),
        str,
        "level of structflow's loggers and the extra loggers",
    ),
    "format": Key(DEFAULT_FORMAT, _format, str, "classic renderer's %-style format"),
    "datefmt": Key(
        DEFAULT_DATEFMT, _datefmt, str, "classic renderer's strftime format for %(asctime)s"
    ),
    "renderer": Key(
        "classic", _choice(RENDERERS, "a renderer"), str, "how the stream handler renders records"
    ),
    "json_schema": Key(
        "default", _choice(SCHEMAS, "a JSON schema"), str, "key names of JSON output"
    ),
    "extra_loggers": Key(
        [], _str_list, list, "other libraries' loggers that get structflow's handlers"
    ),
    "redact_keys": Key(list(DEFAULT_REDACT_KEYS), _str_list, list, "keys rendered as [REDACTED]"),
    "max_message_bytes": Key(
        1_000_000, _positive_int, int, "longer messages are truncated with a marker"
    ),
    "processors": Key([], _processor_list, list, "extra processors, 'package.module:callable'"),
    "stream": Key("stdout", _choice(STREAMS, "a stream"), str, "where the stream handler writes"),
}

#: The [server] section: what ``structflow serve`` uses when its options are not given.
SERVER_KEYS: dict[str, Key] = {
    "store": Key("", _str, str, "the store served (empty: [logging.store] url, else the default)"),
    "host": Key("127.0.0.1", _host, str, "address to listen on; other than loopback needs a token"),
    "port": Key(4200, _port, int, "TCP port to listen on"),
    "token": Key("", _str, str, "bearer token every request must carry (empty: none)"),
}
#: Top-level sections with a table of keys.
SECTION_KEYS: dict[str, dict[str, Key]] = {"logging": LOGGING_KEYS, "server": SERVER_KEYS}


# --- the effective configuration --------------------------------------------------


class Config(Mapping[str, Any]):
    """
    Read-only nested configuration: ``config.logging.level`` or
    ``config["logging"]["level"]``.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_data", "_sources")

    def __init__(self, data: Mapping[str, Any], sources: Mapping[str, Source]) -> None:
        object.__setattr__(self, "_data", dict(data))
        object.__setattr__(self, "_sources", dict(sources))

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        if isinstance(value, dict):
            prefix = key + "."
            return Config(
                value,
                {k[len(prefix) :]: s for k, s in self._sources.items() if k.startswith(prefix)},
            )
        return value

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"configuration has no key {key!r}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise TypeError("the configuration is read-only; use structflow.configure(...)")

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def to_dict(self) -> dict[str, Any]:
        """Return a deep copy as plain dicts and lists."""
        return json.loads(json.dumps(self._data))  # type: ignore[no-any-return]

    def source(self, dotted: str) -> Source:
        """Return where the value at *dotted* (e.g. ``"level"``) came from."""
        found: Source = self._sources.get(dotted, Source("default"))
        return found

    def items_with_sources(self) -> Iterator[tuple[str, Any, Source]]:
        """Yield (dotted key, value, source) for every value, sections flattened."""
        for dotted, value in _flatten("", self._data):
            yield dotted, value, self.source(dotted)

    def __repr__(self) -> str:
        return f"Config({self._data!r})"


def _is_section(dotted: str) -> bool:
    return dotted in SECTION_KEYS or dotted in {f"logging.{s}" for s in HANDLER_SECTIONS}


# --- reading the sources ---------------------------------------------------------------


def config_path(environ: Mapping[str, str]) -> Path:
    """Return the user config file's path (it may not exist)."""
    return Path(os.path.expanduser(environ.get(PATH_VAR) or DEFAULT_PATH))


def _line_of(text: str, section: str, key: str) -> int | None:
    """Best effort: the line on which *key* is set inside [*section*]."""
    current = ""
    key_re = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.match(r"^\[\s*([^\]]+?)\s*\]", stripped)
        if header:
            current = header.group(1).replace('"', "").replace("'", "")
            continue
        if current == section and key_re.match(line):
            return number
        dotted = re.match(
            rf"^\s*{re.escape(section.rsplit('.', 1)[-1])}\.{re.escape(key)}\s*=", line
        )
        if dotted and current == section.rsplit(".", 1)[0]:
            return number
    return None


def _read_file(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, ""
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the config file is not UTF-8 ({exc.reason})") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _cast_env(raw: str, kind: type | None) -> Any:
    """Cast an environment string by the rules in the docs."""
    text = raw.strip()
    if kind is str:
        return raw
    if text.startswith("["):
        try:
            return tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            try:
                return json.loads(text)
            except ValueError:
                raise ValueError("starts with '[' but is not a TOML or JSON list") from None
    if kind is list:
        return [part.strip() for part in text.split(",") if part.strip()]
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?", text):
        return float(text)
    return raw


def _set_path(data: dict[str, Any], parts: list[str], value: Any) -> None:
    node = data
    for part in parts[:-1]:
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[parts[-1]] = value


def _flatten(prefix: str, data: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and _is_section(dotted):
            yield from _flatten(dotted + ".", value)
        else:
            yield dotted, value


def load_config(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """
    Read defaults, the user config file, the environment and *overrides*.

    Args:
        overrides: keyword arguments given to ``structflow.configure()``:
            ``[logging]`` keys by name, and ``http=``/``syslog=``/``store=`` tables.
        environ: the environment to read (``os.environ`` by default).

    Raises:
        ConfigError: listing every invalid value with its source.
    """
    env = os.environ if environ is None else environ
    # (dotted key -> (value, source)), later sources win
    layers: dict[str, tuple[Any, Source]] = {}
    for section_name, keys in SECTION_KEYS.items():
        for key, spec in keys.items():
            layers[f"{section_name}.{key}"] = (spec.default, Source("default"))

    path = config_path(env)
    file_data, text = _read_file(path)
    errors: list[str] = []
    for dotted, value in _flatten("", file_data):
        section, _, key = dotted.rpartition(".")
        layers[dotted] = (value, Source("file", str(path), _line_of(text, section, key)))

    for name, raw in env.items():
        if not name.upper().startswith(ENV_PREFIX) or name.upper() == PATH_VAR:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        if not parts:
            continue
        dotted = ".".join(parts)
        env_spec = SECTION_KEYS.get(parts[0], {}).get(parts[1]) if len(parts) == 2 else None
        try:
            value = _cast_env(raw, env_spec.kind if env_spec else None)
        except ValueError as exc:
            errors.append(f"{name}={raw!r} {exc}.")
            continue
        if len(parts) > 3 and parts[0] == "logging" and parts[1] in HANDLER_SECTIONS:
            # a nested table in a handler section, e.g. ..._HTTP__HEADERS__X_API_KEY
            dotted = ".".join(parts[:3])
            current = layers.get(dotted, ({}, Source("env", name)))[0]
            table = dict(current) if isinstance(current, dict) else {}
            _set_path(table, parts[3:], value)
            value = table
        layers[dotted] = (value, Source("env", name))

    for key, value in (overrides or {}).items():
        if key in HANDLER_SECTIONS:
            if value is None:
                for dotted in [d for d in layers if d.startswith(f"logging.{key}.")]:
                    del layers[dotted]
                layers[f"logging.{key}"] = (None, Source("configure"))
                continue
            if not isinstance(value, Mapping):
                errors.append(
                    f"structflow.configure({key}={value!r}): must be a dict of "
                    f"[logging.{key}] keys, or None to remove the handler."
                )
                continue
            for sub, subvalue in value.items():
                layers[f"logging.{key}.{sub}"] = (subvalue, Source("configure"))
        else:
            layers[f"logging.{key}"] = (value, Source("configure"))

    data: dict[str, Any] = {"logging": {}, "server": {}}
    sources: dict[str, Source] = {}
    for dotted, (value, source) in layers.items():
        parts = dotted.split(".")
        if parts[0] == "server":
            _check_server_key(parts, value, source, data, sources, errors)
            continue
        if parts[0] != "logging":
            errors.append(
                f"{source.subject(dotted, value)}: unknown section {parts[0]!r}; "
                "structflow reads only [logging] (and its subsections) and [server]."
            )
            continue
        if len(parts) == 2 and parts[1] in HANDLER_SECTIONS:
            if value is None:
                data["logging"].pop(parts[1], None)
                continue
            errors.append(
                f"{source.subject(dotted, value)}: [logging.{parts[1]}] must be a table of keys."
            )
            continue
        if len(parts) == 2:
            key_spec = LOGGING_KEYS.get(parts[1])
            if key_spec is None:
                allowed = ", ".join([*LOGGING_KEYS, *HANDLER_SECTIONS])
                errors.append(
                    f"{source.subject(dotted, value)}: unknown key {parts[1]!r}; "
                    f"expected one of {allowed}."
                )
                continue
            try:
                checked = key_spec.check(value)
            except ValueError as exc:
                errors.append(f"{source.subject(dotted, value)} {exc}.")
                continue
            data["logging"][parts[1]] = checked
            sources[dotted] = source
        elif len(parts) == 3 and parts[1] in HANDLER_SECTIONS:
            data["logging"].setdefault(parts[1], {})[parts[2]] = value
            sources[dotted] = source
        else:
            errors.append(f"{source.subject(dotted, value)}: unknown key {dotted!r}.")
    if errors:
        raise ConfigError("invalid structflow configuration:\n  " + "\n  ".join(errors))
    # Default values first in a stable order, then handler sections.
    ordered = {k: data["logging"][k] for k in LOGGING_KEYS}
    for section in HANDLER_SECTIONS:
        if section in data["logging"]:
            ordered[section] = data["logging"][section]
    server = {k: data["server"][k] for k in SERVER_KEYS}
    return Config({"logging": ordered, "server": server}, sources)


def _check_server_key(
    parts: list[str],
    value: Any,
    source: Source,
    data: dict[str, Any],
    sources: dict[str, Source],
    errors: list[str],
) -> None:
    """Check one value of the [server] section into *data*, or add its error."""
    dotted = ".".join(parts)
    spec = SERVER_KEYS.get(parts[1]) if len(parts) == 2 else None
    if spec is None:
        errors.append(
            f"{source.subject(dotted, value)}: unknown key {'.'.join(parts[1:])!r} in [server]; "
            f"expected one of {', '.join(SERVER_KEYS)}."
        )
        return
    try:
        data["server"][parts[1]] = spec.check(value)
    except ValueError as exc:
        errors.append(f"{source.subject(dotted, value)} {exc}.")
        return
    sources[dotted] = source
