"""
Configuration: built-in defaults < user config file < environment < ``configure()``.

The effective configuration is a nested, read-only :class:`Config`. Every
value remembers where it came from, which is what ``structflow config show``
prints and what error messages name.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from structflow._records import check_datefmt
from structflow.processors import DEFAULT_REDACT_KEYS

__all__ = ["Config", "ConfigError", "level_number", "load_config", "prefect1_only"]

ENV_PREFIX = "STRUCTFLOW__"
PATH_VAR = "STRUCTFLOW__USER_CONFIG_PATH"
DEFAULT_PATH = "~/.structflow/config.toml"

LEVELS = ("NOTSET", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# stdlib's names, its aliases (WARN, FATAL) included: not listed as custom levels.
_ALL_LEVEL_NAMES = frozenset(LEVELS) | {"WARN", "FATAL"}
RENDERERS = ("classic", "json", "console", "logfmt")
SCHEMAS = ("default", "ecs", "gcp", "datadog", "otel")
STREAMS = ("stdout", "stderr", "none")
DEFAULT_FORMAT = "[%(asctime)s] %(levelname)s - %(name)s | %(message)s"
DEFAULT_DATEFMT = "%Y-%m-%d %H:%M:%S%z"

# Subsections of [logging] whose keys belong to a handler; the handler's
# constructor validates them, so here they are only required to be tables.
# A new handler section is one more name here.
HANDLER_SECTIONS: tuple[str, ...] = ("http", "syslog", "store")


class ConfigError(ValueError):
    """
    A configuration value is invalid.

    The message names the source (file path and line, the environment
    variable, or ``configure()``), the key, the bad value and what is allowed.

    .. versionadded:: 0.1.0
    """


_UNSHOWN: Any = object()
#: How the problem of a key structflow does not know begins (see _place).
_UNKNOWN = ": unknown "


@dataclass(frozen=True)
class Source:
    """Where a configuration value came from."""

    kind: str  # "default" | "file" | "env" | "configure"
    where: str = ""  # file path, variable name, or ""
    line: int | None = None
    #: An environment variable's value as it was set, before it was read as
    #: a number, a bool or a list: a handler key that takes text takes this.
    text: str = field(default="", compare=False)

    def __str__(self) -> str:
        if self.kind == "file":
            return f"{self.where}, line {self.line}" if self.line else self.where
        if self.kind == "env":
            return self.where
        if self.kind == "configure":
            return "structflow.configure()"
        return "default"

    def subject(self, dotted: str, value: object = _UNSHOWN) -> str:
        """
        Phrase '<where>: key = value' the way the source spells the key.

        Without *value* (a key structflow does not know, whose value may be
        anything, a secret too), the key alone.
        """
        if value is _UNSHOWN:
            if self.kind == "env":
                return self.where
            if self.kind == "configure":
                return f"structflow.configure({dotted.rsplit('.', 1)[-1]}=...)"
            return f"{self}: {dotted}"
        if self.kind == "env":
            return f"{self.where}={value!r}"
        if self.kind == "configure":
            return f"structflow.configure({dotted.rsplit('.', 1)[-1]}={value!r})"
        return f"{self}: {dotted} = {value!r}"


# --- validators -----------------------------------------------------------------


def _choice(allowed: tuple[str, ...], what: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, str):
            norm = value.lower()
            if norm in allowed:
                return norm
        raise ValueError(f"is not {what}; expected one of {', '.join(allowed)}")

    return check


def _level(value: Any) -> str | int:
    """
    Check a log level: a name (any case) or a number (``10``, ``"10"``).

    Names are stdlib's and those registered with :func:`logging.addLevelName`
    before the configuration is read. A number is kept as a number and a name
    as its registered spelling, so the effective configuration shows what was
    given.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if value >= 0:
            return value
    elif isinstance(value, str):
        text = value.strip()
        if text.isdigit() and text.isascii():
            return int(text)
        names = logging.getLevelNamesMapping()
        if text in names:
            return text
        if text.upper() in names:
            return text.upper()
    custom = [name for name in logging.getLevelNamesMapping() if name not in _ALL_LEVEL_NAMES]
    allowed = ", ".join([*LEVELS, *sorted(custom)])
    raise ValueError(
        f"is not a log level; expected one of {allowed} (any case), a name registered "
        "with logging.addLevelName before structflow is configured, or a level number "
        "(0 or more, such as 10)"
    )


def level_number(value: str | int) -> int:
    """
    The number of a checked ``level`` value (a name or a number).

    A name that is no longer registered (it cannot be, once checked, unless
    the application changed logging's tables since) counts as NOTSET.
    """
    if isinstance(value, int):
        return value
    number = logging.getLevelNamesMapping().get(value)
    return number if number is not None else logging.NOTSET


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
    # logging.Formatter refuses a format without a %(name)s field.
    if not logging.PercentStyle.validation_pattern.search(fmt):
        raise ValueError(
            "is not a valid %-style format string (it has no field); expected at least one "
            "field such as %(message)s"
        )
    return fmt


def _datefmt(value: Any) -> str:
    fmt = _str(value)
    import time

    try:
        check_datefmt(fmt)
        time.strftime(fmt, time.localtime(0))
    except ValueError as exc:
        raise ValueError(f"is not a valid strftime format: {exc}") from None
    return fmt


def _str_list(value: Any) -> list[str]:
    if isinstance(value, str):
        # Prefect 1 users wrote lists as strings ("['urllib3', 'botocore']");
        # read those as lists, like the environment does.
        value = _cast_env(value, list)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a list of strings")
    return list(value)


def _key_list(value: Any) -> list[str]:
    items = _str_list(value)
    for item in items:
        if not item.strip():
            raise ValueError("has an empty key; list the context keys by name")
    # A key listed twice is stamped once.
    return list(dict.fromkeys(items))


def _processor_list(value: Any) -> list[str]:
    items = _str_list(value)
    for item in items:
        if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", item):
            raise ValueError(f"has {item!r}, which is not of the form 'package.module:callable'")
    return items


def _structlog_mode(value: Any) -> str | bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("auto", "true", "false"):
        low = value.strip().lower()
        return "auto" if low == "auto" else low == "true"
    raise ValueError("is not a structlog mode; expected one of auto, true, false")


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
    """One key of a section: its default and its rule."""

    default: Any
    check: Callable[[Any], Any]
    # How an environment string is cast: str keeps it as is, list splits it at
    # commas, anything else (int, None) reads booleans and numbers by look.
    kind: type | None
    help: str


LOGGING_KEYS: dict[str, Key] = {
    "level": Key(
        "INFO",
        _level,
        str,
        "level of structflow's loggers and the extra loggers (a name or a number)",
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
    "log_attributes": Key(
        [],
        _key_list,
        list,
        "context keys stamped on every record (None where the context lacks them)",
    ),
    "redact_keys": Key(list(DEFAULT_REDACT_KEYS), _str_list, list, "keys rendered as [REDACTED]"),
    "max_message_bytes": Key(
        1_000_000, _positive_int, int, "longer messages are truncated with a marker"
    ),
    "processors": Key([], _processor_list, list, "extra processors, 'package.module:callable'"),
    "stream": Key("stdout", _choice(STREAMS, "a stream"), str, "where the stream handler writes"),
    "structlog": Key(
        "auto", _structlog_mode, bool, "whether structflow configures structlog's own loggers"
    ),
}

#: The [server] section: what ``structflow serve`` uses when its options are not given.
SERVER_KEYS: dict[str, Key] = {
    "store": Key("", _str, str, "the store served (empty: [logging.store] url, else the default)"),
    "host": Key("127.0.0.1", _host, str, "address to listen on; other than loopback needs a token"),
    "port": Key(4200, _port, int, "TCP port to listen on"),
    "token": Key("", _str, str, "bearer token every request must carry (empty: none)"),
}


@dataclass(frozen=True)
class Section:
    """
    A top-level section: its keys, and its subsections that are tables of keys.

    The tables' keys belong to whatever the table configures (a handler),
    which validates them; here they are only required to be tables.
    """

    keys: Mapping[str, Key]
    tables: tuple[str, ...] = ()


# Every section structflow reads, in the order the effective configuration
# lists them. A new section is one more entry; a new key, one more entry in
# its section's key table.
SECTIONS: dict[str, Section] = {
    "logging": Section(LOGGING_KEYS, HANDLER_SECTIONS),
    "server": Section(SERVER_KEYS),
}
# The section whose keys (and tables) structflow.configure() takes by name.
CONFIGURE_SECTION = "logging"


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
    """Tell whether *dotted* names a section or a table of one (e.g. ``logging.http``)."""
    head, _, table = dotted.partition(".")
    section = SECTIONS.get(head)
    return section is not None and (not table or table in section.tables)


def _key(parts: list[str]) -> Key | None:
    """Return the rule of the section key ``[parts[0]] parts[1]``, if it is one."""
    section = SECTIONS.get(parts[0]) if len(parts) == 2 else None
    return None if section is None else section.keys.get(parts[1])


def _is_table(parts: list[str]) -> bool:
    """Tell whether ``parts[:2]`` names a table of a section (``["logging", "http"]``)."""
    section = SECTIONS.get(parts[0])
    return section is not None and len(parts) >= 2 and parts[1] in section.tables


# --- reading the sources ---------------------------------------------------------------


def config_path(environ: Mapping[str, str]) -> Path:
    """Return the user config file's path (it may not exist)."""
    # As Prefect 1 read its PREFECT__USER_CONFIG_PATH: "$HOME/..." works too.
    return Path(os.path.expanduser(os.path.expandvars(environ.get(PATH_VAR) or DEFAULT_PATH)))


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


def _read_file(path: Path, named_by: str = "") -> tuple[dict[str, Any], str]:
    """
    Read the config file at *path*; a missing file is no configuration.

    Unless *named_by* (the value of :data:`PATH_VAR`) chose it: then a
    missing file is a mistake (a typo in the path), not a wish for defaults.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if named_by:
            raise ConfigError(
                f"{PATH_VAR}={named_by!r}: the config file {path} does not exist; expected the "
                f"path of a TOML file, or {os.devnull!r} to read none (unset the variable "
                f"to read {DEFAULT_PATH} if it exists)"
            ) from None
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


# (dotted key -> (value, source)): each source replaces what a lower one set.
_Layers = dict[str, tuple[Any, Source]]


# The configuration structflow applied last (set by structflow._setup), for
# modules below the set-up that need the effective values, such as the log
# store's default url.
_applied: Config | None = None


def set_applied(cfg: Config | None) -> None:
    """Record *cfg* as the configuration applied (None: nothing applied)."""
    global _applied
    _applied = cfg


def effective_config() -> Config:
    """The configuration structflow applied, else the one it would read now."""
    return _applied if _applied is not None else load_config()


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
    errors: list[str] = []
    layers = _defaults()
    _add_file(layers, config_path(env), env.get(PATH_VAR, ""))
    _add_environment(layers, env, errors)
    _add_overrides(layers, overrides or {}, errors)
    data, sources = _check(layers, errors)
    if errors:
        raise ConfigError("invalid structflow configuration:\n  " + "\n  ".join(errors))
    return Config(_in_order(data), sources)


def _defaults() -> _Layers:
    return {
        f"{name}.{key}": (spec.default, Source("default"))
        for name, section in SECTIONS.items()
        for key, spec in section.keys.items()
    }


def _add_file(layers: _Layers, path: Path, named_by: str) -> None:
    file_data, text = _read_file(path, named_by)
    for dotted, value in _flatten("", file_data):
        section, _, key = dotted.rpartition(".")
        layers[dotted] = (value, Source("file", str(path), _line_of(text, section, key)))


#: Handler tables whose names, set from the environment, take ``-`` for ``_``
#: (a variable's name cannot hold ``-``): HTTP headers, ``X-Api-Key``.
_DASHED_NAMES = frozenset({"headers"})


def _add_environment(layers: _Layers, env: Mapping[str, str], errors: list[str]) -> None:
    for name, raw in env.items():
        if not name.upper().startswith(ENV_PREFIX) or name.upper() == PATH_VAR:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        if not parts:
            continue
        spec = _key(parts)
        try:
            value = _cast_env(raw, spec.kind if spec else None)
        except ValueError as exc:
            errors.append(f"{name}={raw!r} {exc}.")
            continue
        dotted = ".".join(parts)
        if len(parts) > 3 and _is_table(parts):
            # A nested table in a table section, e.g. ..._HTTP__HEADERS__X_API_KEY:
            # its values are text (a header, a label), kept as they were set.
            dotted = ".".join(parts[:3])
            current = layers.get(dotted, ({}, Source("env", name)))[0]
            table = dict(current) if isinstance(current, dict) else {}
            if parts[2] in _DASHED_NAMES:
                parts[3:] = [part.replace("_", "-") for part in parts[3:]]
            _set_path(table, parts[3:], raw)
            value = table
        layers[dotted] = (value, Source("env", name, text=raw))


def _add_overrides(layers: _Layers, overrides: Mapping[str, Any], errors: list[str]) -> None:
    section = SECTIONS[CONFIGURE_SECTION]
    for key, value in overrides.items():
        dotted = f"{CONFIGURE_SECTION}.{key}"
        if key not in section.tables:
            layers[dotted] = (value, Source("configure"))
        elif value is None:
            # None removes the table, whatever a lower source set in it.
            for inner in [d for d in layers if d.startswith(f"{dotted}.")]:
                del layers[inner]
            layers[dotted] = (None, Source("configure"))
        elif isinstance(value, Mapping):
            for sub, subvalue in value.items():
                layers[f"{dotted}.{sub}"] = (subvalue, Source("configure"))
        else:
            errors.append(
                f"structflow.configure({key}={value!r}): must be a dict of "
                f"[{dotted}] keys, or None to remove the handler."
            )


#: Prefect 1's settings that structflow has no use for: a Prefect 1 config file
#: (or environment) renamed keeps working, and these are left alone. By the
#: section they are in ("" for the top level).
PREFECT1_ONLY: Mapping[str, frozenset[str]] = {
    "": frozenset(
        {"debug", "home_dir", "backend", "user_config_path"}
        | {"cloud", "flows", "tasks", "engine", "context"}
    ),
    "logging": frozenset({"log_to_cloud"}),
    "server": frozenset(
        {"endpoint", "host_port", "database", "graphql", "hasura", "ui", "telemetry", "services"}
    ),
}


def prefect1_only(parts: list[str]) -> bool:
    """Whether the key *parts* is one of Prefect 1's that structflow leaves alone."""
    if parts[0] in PREFECT1_ONLY[""]:
        return True
    return len(parts) > 1 and parts[1] in PREFECT1_ONLY.get(parts[0], ())


def _check(layers: _Layers, errors: list[str]) -> tuple[dict[str, Any], dict[str, Source]]:
    """Check every layered value and nest it by section; add what is wrong to *errors*."""
    data: dict[str, Any] = {name: {} for name in SECTIONS}
    sources: dict[str, Source] = {}
    for dotted, (value, source) in layers.items():
        parts = dotted.split(".")
        if prefect1_only(parts):
            continue
        if value is None and len(parts) == 2 and _is_table(parts):
            # configure(http=None): no table, whatever a lower source set.
            data[parts[0]].pop(parts[1], None)
            continue
        problem = _place(data, parts, value)
        if problem is None:
            sources[dotted] = source
        else:
            # The subject is phrased only now: repr() of a good value is never
            # needed. The value of a key structflow does not read is not shown:
            # it may be another program's secret ([context.secrets] of Prefect 1).
            known = not problem.startswith(_UNKNOWN)
            shown = source.subject(dotted, value) if known else source.subject(dotted)
            errors.append(f"{shown}{problem}")
    return data, sources


def _place(data: dict[str, Any], parts: list[str], value: Any) -> str | None:
    """
    Check *value* at the key *parts* and store it in *data*.

    Returns:
        None, or what is wrong, worded to follow the key and its value.
    """
    section = SECTIONS.get(parts[0])
    if section is None:
        return f": unknown section {parts[0]!r}; structflow reads only {_sections_phrase()}."
    node = data[parts[0]]
    if len(parts) == 1:
        example = next(iter(section.keys))
        return (
            f": [{parts[0]}] is a section, not a value; set its keys, such as {parts[0]}.{example}."
        )
    if len(parts) == 2 and parts[1] in section.tables:
        return f": [{parts[0]}.{parts[1]}] must be a table of keys."
    if len(parts) == 2:
        spec = section.keys.get(parts[1])
        if spec is None:
            allowed = ", ".join([*section.keys, *section.tables])
            where = "" if parts[0] == CONFIGURE_SECTION else f" in [{parts[0]}]"
            return f": unknown key {parts[1]!r}{where}; expected one of {allowed}."
        try:
            node[parts[1]] = spec.check(value)
        except ValueError as exc:
            return f" {exc}."
        return None
    if len(parts) == 3 and parts[1] in section.tables:
        node.setdefault(parts[1], {})[parts[2]] = value
        return None
    return f": unknown key {'.'.join(parts)!r}."


def _sections_phrase() -> str:
    names = [f"[{name}]" for name in SECTIONS]
    if len(names) == 1:
        return f"{names[0]} and its subsections"
    return f"{', '.join(names)} and their subsections"


def _in_order(data: dict[str, Any]) -> dict[str, Any]:
    """Each section's keys in their table's order, then its tables present."""
    ordered: dict[str, Any] = {}
    for name, section in SECTIONS.items():
        values = data[name]
        ordered[name] = {k: values[k] for k in section.keys}
        ordered[name].update({t: values[t] for t in section.tables if t in values})
    return ordered
