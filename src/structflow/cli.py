"""
The ``structflow`` command.

``structflow --version``, ``structflow config show`` (every effective value
and where it came from) and ``structflow config validate`` (exit 0, or 2 with
the errors); ``structflow logs``, ``structflow runs`` and ``structflow store
prune`` read the log store (see :mod:`structflow.store`); ``structflow serve``
runs the log server (see :mod:`structflow.server`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from structflow._config import LEVELS, Config, ConfigError, config_path, level_number, load_config

__all__ = ["main"]

EXIT_OK = 0
EXIT_BAD_CONFIG = 2

# The class in structflow.handlers that each [logging.<name>] table configures.
HANDLER_CLASSES = {"http": "HTTPHandler", "syslog": "SyslogHandler", "store": "StoreHandler"}


def _show(as_json: bool) -> int:
    try:
        cfg = load_config()
    except ConfigError as exc:
        print(f"structflow: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    rows = [(dotted, _shown(dotted, value), src) for dotted, value, src in cfg.items_with_sources()]
    if as_json:
        out: dict[str, dict[str, Any]] = {
            dotted: {"value": value, "source": str(src)} for dotted, value, src in rows
        }
        out["logging.level"]["number"] = level_number(cfg.logging.level)
        print(json.dumps(out, indent=2, default=repr))
        return EXIT_OK
    print(f"# config file: {config_path(os.environ)}")
    width = max(len(d) for d, _, _ in rows)
    for dotted, value, src in rows:
        shown = json.dumps(value, default=repr)
        note = _level_note(value) if dotted == "logging.level" else ""
        print(f"{dotted:<{width}} = {shown}  # {src}{f' ({note})' if note else ''}")
    return EXIT_OK


_STDLIB_LEVELS = (
    (logging.DEBUG, "DEBUG"),
    (logging.INFO, "INFO"),
    (logging.WARNING, "WARNING"),
    (logging.ERROR, "ERROR"),
    (logging.CRITICAL, "CRITICAL"),
)


def _level_note(value: str | int) -> str:
    """
    What a level given as a number or a custom name means, for ``config show``.

    ``10`` is DEBUG, ``15`` lies between DEBUG and INFO, ``NOTICE`` (a name
    the application registered) is its number; stdlib's names need no note.
    """
    number = level_number(value)
    if isinstance(value, str):
        return "" if value in LEVELS else f"level {number}"
    name = logging.getLevelName(number)
    if not name.startswith("Level "):
        return name
    below = [n for lvl, n in _STDLIB_LEVELS if lvl < number]
    above = [n for lvl, n in _STDLIB_LEVELS if lvl > number]
    if below and above:
        return f"between {below[-1]} and {above[0]}"
    return f"above {below[-1]}" if below else f"below {above[0]}"


def _shown(dotted: str, value: Any) -> Any:
    """A value as ``show`` prints it: a handler's secrets masked as its ``repr`` masks them."""
    section, _, key = dotted.rpartition(".")
    if section.startswith("logging.") and section[len("logging.") :] in HANDLER_CLASSES:
        from structflow.handlers._secrets import masked_setting

        return masked_setting(key, value)
    if dotted == "server.token" and value:
        return "***"
    return value


def _validate() -> int:
    try:
        cfg = load_config()
        # Processors, formatters and handler sections are checked by building
        # them, as configure() would, without attaching anything.
        from structflow._setup import check_formatters

        check_formatters(cfg)
        for name in HANDLER_CLASSES:
            if name in cfg.logging:
                _check_handler(cfg, name)
    except ConfigError as exc:
        print(f"structflow: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    print("structflow: configuration is valid")
    return EXIT_OK


def _check_handler(cfg: Config, name: str) -> None:
    from structflow import handlers
    from structflow._setup import build_handler

    cls = getattr(handlers, HANDLER_CLASSES[name])
    build_handler(cfg, name, cls, dict(cfg.logging[name])).close()


class _Parser(argparse.ArgumentParser):
    """
    A parser that says a usage error in one line on stderr (exit status 2).

    Sub-commands' parsers are of the same class (argparse makes them so), so
    ``structflow serve --port abc`` reads like ``structflow logs --level loud``.
    """

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: {message}\n")
        raise SystemExit(EXIT_BAD_CONFIG)


def _command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Any:
    """The parser of the (sub-)command *args* ran: ``structflow store prune``'s for it."""
    while True:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        chosen = getattr(args, actions[0].dest, None) if actions else None
        if chosen is None:
            return parser
        parser = actions[0].choices[chosen]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``structflow`` command and return its exit status."""
    from structflow import __version__

    parser = _Parser(prog="structflow", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--version", action="version", version=f"structflow {__version__}")
    sub = parser.add_subparsers(dest="command")
    cfg = sub.add_parser("config", help="inspect the configuration")
    cfg_sub = cfg.add_subparsers(dest="action", required=True)
    show = cfg_sub.add_parser("show", help="print every effective value and its source")
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    cfg_sub.add_parser("validate", help="exit 0 if the configuration is valid, 2 if not")
    from structflow import _cli_store as store_cli
    from structflow.server import _cli as serve_cli

    store_cli.add_commands(sub)
    serve_cli.add_parser(sub)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Said by the sub-command's parser, as its other usage errors are.
        _command_parser(parser, args).error("unrecognized arguments: " + " ".join(unknown))
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    if args.command in store_cli.COMMANDS:
        return store_cli.run_command(args)
    if args.command == "serve":
        return serve_cli.run(args)
    if args.action == "show":
        try:
            return _show(args.json)
        except BrokenPipeError:
            return store_cli.reader_gone()
    return _validate()


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    sys.exit(main())
