"""
The options every shipping handler takes, their defaults and their validation.

A shipping handler's keyword arguments are its own (``url``, ``encoding`` ...)
followed by the *shipping options*: ``level`` and the worker's fourteen
settings (``batch_max_records`` ... ``fsync_interval``). They are spelled
once, here, as httpx keeps ``Timeout`` and ``Limits`` in one place:

* :class:`ShippingOptions`, a ``TypedDict``, types ``**options`` for type
  checkers and IDEs (PEP 692);
* :class:`WorkerSettings`, a frozen dataclass, holds the worker's settings
  with their defaults and validates them;
* :func:`takes_shipping_options` shows them to ``inspect.signature`` and
  ``help()`` as ordinary keyword-only parameters.

The ``check_*`` helpers validate the handlers' own options the same way:
every error names the handler, the key, the value and what is allowed.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypedDict, TypeVar

from structflow._paths import make_directory

__all__ = [
    "DEFAULT_LEVEL",
    "FSYNC_POLICIES",
    "WHEN_FULL",
    "ShippingOptions",
    "WorkerSettings",
    "check_bool",
    "check_choice",
    "check_float",
    "check_int",
    "check_keywords",
    "check_level",
    "check_spool_dir",
    "check_str",
    "check_str_mapping",
    "check_together",
    "default_service",
    "resolve_env",
    "takes_shipping_options",
    "takes_shipping_options_with",
]

#: What ``when_full`` may be.
WHEN_FULL = ("drop_oldest", "drop_newest", "block")
#: What ``fsync`` may be.
FSYNC_POLICIES = ("interval", "always", "never")
#: The handler's level unless one is given: every record the loggers pass on.
DEFAULT_LEVEL = "NOTSET"


def check_int(owner: str, key: str, value: object, minimum: int) -> int:
    """Return *value* if it is an int >= *minimum*, else raise a ValueError naming *key*."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{owner}: {key}={value!r} is invalid; expected an integer >= {minimum}")
    return value


def check_float(
    owner: str, key: str, value: object, minimum: float, *, strict: bool = False
) -> float:
    """Return *value* as a float if it is a number >= (or > with *strict*) *minimum*."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok:
        number = float(value)  # type: ignore[arg-type]
        ok = math.isfinite(number) and (number > minimum if strict else number >= minimum)
    if not ok:
        relation = ">" if strict else ">="
        raise ValueError(
            f"{owner}: {key}={value!r} is invalid; "
            f"expected a number of seconds {relation} {minimum:g}"
        )
    return float(value)  # type: ignore[arg-type]


def check_choice(owner: str, key: str, value: object, choices: Sequence[str]) -> str:
    """Return *value* if it is one of *choices*, else raise a ValueError listing them."""
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{owner}: {key}={value!r} is invalid; expected one of {allowed}")
    return value


def check_str(owner: str, key: str, value: object, *, what: str = "a string") -> str:
    """Return *value* if it is a string."""
    if not isinstance(value, str):
        raise ValueError(f"{owner}: {key}={value!r} is invalid; expected {what}")
    return value


def check_spool_dir(owner: str, value: object) -> str:
    """
    Return *value* if it is '' (no spool) or a directory that exists or could be made now.

    The directory is made here (the spool would make it a moment later), so
    a path that cannot be one is an error naming the key, not an OSError.
    """
    path = check_str(owner, "spool_dir", value, what="a directory path, or '' for no spool")
    if not path or os.path.isdir(path):
        return path
    if os.path.exists(path):
        reason = "it is a file, not a directory"
    else:
        problem = make_directory(path)
        if not problem:
            return path
        reason = f"it cannot be created ({problem})"
    raise ValueError(
        f"{owner}: spool_dir={path!r} is invalid; {reason}; expected a directory, or a path "
        "where one can be created"
    )


def check_bool(owner: str, key: str, value: object) -> bool:
    """Return *value* if it is a bool."""
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: {key}={value!r} is invalid; expected true or false")
    return value


def check_str_mapping(owner: str, key: str, value: object) -> dict[str, str]:
    """Return *value* as a dict if it maps strings to strings."""
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(
            f"{owner}: {key}={value!r} is invalid; expected a table of string keys to string values"
        )
    return dict(value)


def check_level(owner: str, value: object) -> int:
    """Return the numeric level for a level name or number."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        number = logging.getLevelName(value.upper())
        if isinstance(number, int):
            return number
    raise ValueError(
        f"{owner}: level={value!r} is invalid; expected one of NOTSET, DEBUG, INFO, WARNING, "
        "ERROR, CRITICAL (any case) or a non-negative integer"
    )


def resolve_env(owner: str, key: str, value: str) -> str:
    """
    Return *value*, or the environment variable it names as ``"env:NAME"``.

    Raises:
        ValueError: the variable is not set (the message names the variable,
            never a value).
    """
    if not value.startswith("env:"):
        return value
    name = value[4:]
    if not name:
        raise ValueError(
            f"{owner}: {key}={value!r} names no environment variable; expected 'env:NAME'"
        )
    try:
        return os.environ[name]
    except KeyError:
        raise ValueError(
            f"{owner}: {key}={value!r} refers to the environment variable {name}, which is not set"
        ) from None


def default_service() -> str:
    """The program's name (``sys.argv[0]`` without directory and ``.py``), or ``python``."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    name = os.path.basename(argv0)
    if name.endswith(".py"):
        name = name[:-3]
    if not name or name in ("-c", "-m", "__main__"):
        return "python"
    return name


class ShippingOptions(TypedDict, total=False):
    """
    The keyword arguments every shipping handler takes besides its own.

    Described once, in the "Worker options" section of the handlers page;
    the defaults are :data:`DEFAULT_LEVEL` and those of :class:`WorkerSettings`.
    """

    level: str | int
    batch_max_records: int
    batch_max_bytes: int
    flush_interval: float
    max_queue_bytes: int
    when_full: str
    block_timeout: float
    shutdown_timeout: float
    max_retries: int
    retry_backoff: float
    retry_max_backoff: float
    spool_dir: str
    spool_max_bytes: int
    fsync: str
    fsync_interval: float


@dataclass(frozen=True)
class WorkerSettings:
    """
    The worker's settings, with their defaults.

    .. versionadded:: 0.1.0
    """

    batch_max_records: int = 5000
    batch_max_bytes: int = 1_048_576
    flush_interval: float = 1.0
    max_queue_bytes: int = 33_554_432
    when_full: str = "drop_oldest"
    block_timeout: float = 1.0
    shutdown_timeout: float = 5.0
    max_retries: int = -1
    retry_backoff: float = 0.5
    retry_max_backoff: float = 30.0
    spool_dir: str = ""
    spool_max_bytes: int = 1_073_741_824
    fsync: str = "interval"
    fsync_interval: float = 1.0

    @classmethod
    def from_options(
        cls, owner: str, options: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
    ) -> WorkerSettings:
        """
        Build settings from a handler's worker options, validating each.

        *defaults* holds the handler's own defaults where they differ from
        the worker's (see ``ShippingHandler.WORKER_DEFAULTS``); they give
        way, as the worker's do, to what the user set.

        Raises:
            ValueError: a value is invalid; the message names the key, the
                value and what is allowed.
        """
        s = cls(**{**(defaults or {}), **options})
        check_int(owner, "batch_max_records", s.batch_max_records, 1)
        check_int(owner, "batch_max_bytes", s.batch_max_bytes, 1024)
        check_float(owner, "flush_interval", s.flush_interval, 0.0, strict=True)
        check_int(owner, "max_queue_bytes", s.max_queue_bytes, 65_536)
        check_choice(owner, "when_full", s.when_full, WHEN_FULL)
        check_float(owner, "block_timeout", s.block_timeout, 0.0)
        check_float(owner, "shutdown_timeout", s.shutdown_timeout, 0.0)
        check_int(owner, "max_retries", s.max_retries, -1)
        check_float(owner, "retry_backoff", s.retry_backoff, 0.0, strict=True)
        check_float(owner, "retry_max_backoff", s.retry_max_backoff, 0.0, strict=True)
        check_spool_dir(owner, s.spool_dir)
        check_int(owner, "spool_max_bytes", s.spool_max_bytes, 1_048_576)
        check_choice(owner, "fsync", s.fsync, FSYNC_POLICIES)
        check_float(owner, "fsync_interval", s.fsync_interval, 0.0, strict=True)
        check_together(owner, s, given=options.keys())
        floats = {
            f.name: float(getattr(s, f.name)) for f in fields(cls) if f.type in ("float", float)
        }
        return cls(**{**{f.name: getattr(s, f.name) for f in fields(cls)}, **floats})

    def non_defaults(self, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """
        Return the settings that differ from their defaults, in declaration order.

        *defaults* overrides the worker's defaults (a handler's own).
        """
        own = defaults or {}
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value != own.get(f.name, f.default):
                out[f.name] = value
        return out


def check_together(owner: str, settings: WorkerSettings, given: Collection[str]) -> None:
    """
    Refuse settings that are each valid but cannot work together, naming both keys.

    *given* holds the keys the user set: a default that does not fit what
    the user chose gives way instead (the worker never makes a batch larger
    than a quarter of ``max_queue_bytes``), so ``max_queue_bytes`` alone may
    be as small as 64 KiB.

    Raises:
        ValueError: ``batch_max_bytes`` was set above ``max_queue_bytes``:
            the queue could never hold one batch.
    """
    queue, batch = settings.max_queue_bytes, settings.batch_max_bytes
    if "batch_max_bytes" in given and queue < batch:
        raise ValueError(
            f"{owner}: max_queue_bytes={queue} is smaller than batch_max_bytes={batch}: "
            "the queue could never hold one batch; raise max_queue_bytes or lower batch_max_bytes"
        )


_Init = TypeVar("_Init", bound=Callable[..., None])


def check_keywords(owner: str, given: Mapping[str, object], of: Callable[..., object]) -> None:
    """
    Raise TypeError when *given* holds a key that is not a keyword parameter of *of*.

    The message names the key and every keyword *of* takes (as
    ``inspect.signature`` shows them: see :func:`takes_shipping_options`).
    """
    parameters = inspect.signature(of).parameters.values()
    names = [p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for key in given:
        if key not in names:
            raise TypeError(
                f"{owner}: unknown keyword argument {key!r}; expected one of {', '.join(names)}"
            )


def takes_shipping_options(init: _Init) -> _Init:
    """
    Show a handler's ``**options`` as the keyword parameters they stand for.

    ``inspect.signature(HTTPHandler)`` (and so ``help()`` and the tests that
    pin the keyword names) then lists ``level`` and every worker setting
    with its default, after the handler's own parameters, exactly as if each
    had been written out.
    """
    return _show_options(init, {})


def takes_shipping_options_with(**defaults: Any) -> Callable[[_Init], _Init]:
    """:func:`takes_shipping_options`, showing the handler's own defaults of some settings."""
    return lambda init: _show_options(init, defaults)


def _show_options(init: _Init, defaults: Mapping[str, Any]) -> _Init:
    signature = inspect.signature(init)
    kept = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    keyword = inspect.Parameter.KEYWORD_ONLY
    shown = [inspect.Parameter("level", keyword, default=DEFAULT_LEVEL, annotation="str | int")]
    shown.extend(
        inspect.Parameter(
            f.name, keyword, default=defaults.get(f.name, f.default), annotation=f.type
        )
        for f in fields(WorkerSettings)
    )
    init.__signature__ = signature.replace(parameters=[*kept, *shown])  # type: ignore[attr-defined]
    return init
