"""
The ``[logging] structlog`` setting, applied without importing structlog early.

structflow's set-up calls :func:`apply` with every configuration it applies
and :func:`reset` when it forgets it. Importing structlog takes longer than
importing structflow, so under ``"auto"`` structlog is not imported for the
check: when it is already loaded it is configured at once, otherwise a
one-shot import hook configures it right after the application imports it.
Either way it is configured before its first log call, and only if nobody
configured it first.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import threading
import traceback
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    # Not imported at run time: importlib.abc pulls in importlib.resources
    # (tempfile, shutil, random...), a tenth of structflow's import time.
    from importlib.abc import Loader

from structflow._config import Config, ConfigError

__all__ = ["apply", "reset"]

INTEGRATION = "structflow.integrations.structlog"

_hook_lock = threading.Lock()
# The configuration to apply when structlog is imported (while the hook waits).
_pending: Config | None = None


def _integration() -> Any:
    return importlib.import_module(INTEGRATION)


def apply(cfg: Config) -> None:
    """
    Bring structlog's configuration in line with *cfg* (``[logging] structlog``).

    ``False`` undoes what structflow configured (and never touches anything
    else), ``True`` configures structlog whoever configured it before,
    ``"auto"`` configures it unless someone else did. Applying the same
    configuration again changes nothing.

    Raises:
        ConfigError: ``structlog = true`` but structlog cannot be imported.
    """
    mode = cfg.logging.structlog
    if mode is False:
        _remove_hook()
        loaded = sys.modules.get(INTEGRATION)
        if loaded is not None:
            loaded._deactivate(explicit_too=False)
            loaded._refresh(cfg)
        return
    if mode is True or "structlog" in sys.modules:
        _remove_hook()
        try:
            integration = _integration()
        except ImportError as exc:
            if mode is True:
                source = cfg.logging.source("structlog")
                raise ConfigError(
                    f"{source.subject('logging.structlog', True)}: structlog cannot be "
                    f"imported ({exc}); install structlog or set it to auto or false."
                ) from None
            return
        integration._activate(force=mode is True)
        integration._refresh(cfg)
        return
    _install_hook(cfg)


def reset() -> None:
    """Undo structflow's structlog configuration and drop a pending import hook."""
    _remove_hook()
    loaded = sys.modules.get(INTEGRATION)
    if loaded is not None:
        loaded._deactivate(explicit_too=True)


# --- configuring structlog when the application imports it ------------------------


class _ConfigureAfterImport:
    """Runs structlog's own loader, then configures structlog for structflow (a loader)."""

    def __init__(self, loader: Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        # Nothing of the hook stays on the module (reload, resources).
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        _configure_now()


class _ImportHook:
    """A one-shot finder (on ``sys.meta_path``) that notices the import of ``structlog``."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "structlog":
            return None
        with _hook_lock:
            while self in sys.meta_path:
                sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = cast("Loader", _ConfigureAfterImport(spec.loader))
        return spec

    def __repr__(self) -> str:
        return "<structflow: configure structlog when it is imported>"


_hook = _ImportHook()


def _install_hook(cfg: Config) -> None:
    global _pending
    with _hook_lock:
        _pending = cfg
        if _hook not in sys.meta_path:
            sys.meta_path.insert(0, _hook)


def _remove_hook() -> None:
    global _pending
    with _hook_lock:
        _pending = None
        while _hook in sys.meta_path:
            sys.meta_path.remove(_hook)


def _configure_now() -> None:
    cfg = _pending
    _remove_hook()
    if cfg is None:
        return
    try:
        integration = _integration()
        integration._activate(force=False)
        integration._refresh(cfg)
    except Exception:
        # The application's `import structlog` must succeed regardless.
        sys.stderr.write("--- structflow could not configure structlog ---\n")
        traceback.print_exc(file=sys.stderr)
