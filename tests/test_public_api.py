"""The public surface (DESIGN.md) changes only on purpose."""

from __future__ import annotations

import importlib
import subprocess
import sys

import structflow


def test_top_level_names_are_pinned() -> None:
    assert sorted(structflow.__all__) == [
        "ConfigError",
        "Flow",
        "Parameter",
        "Task",
        "__version__",
        "bound",
        "case",
        "config",
        "configure",
        "context",
        "executors",
        "flatten",
        "get_logger",
        "merge",
        "tags",
        "task",
        # Prefect 1's top-level names, so that a port renames only the imports.
        "triggers",
        "unmapped",
        "utilities",
    ]
    for name in structflow.__all__:
        assert hasattr(structflow, name), name


def test_design_names_import_from_their_modules() -> None:
    expected = {
        "structflow.formatters": [
            "ClassicFormatter",
            "JsonFormatter",
            "ConsoleFormatter",
            "LogfmtFormatter",
        ],
        "structflow.handlers": ["HTTPHandler", "SyslogHandler", "StoreHandler"],
        "structflow.store": ["connect", "Store", "LogEntry", "RunSummary"],
        "structflow.executors": [
            "LocalExecutor",
            "ThreadExecutor",
            "DaskExecutor",
            "LocalDaskExecutor",
        ],
        "structflow.testing": ["capture_logs"],
        "structflow.utilities.logging": ["get_logger", "RedirectToLog"],
        "structflow.utilities.debug": ["raise_on_exception"],
        "structflow.utilities.configuration": ["set_temporary_config"],
        "structflow.engine.signals": ["FAIL", "SUCCESS", "SKIP", "RETRY", "TRIGGERFAIL"],
        "structflow.triggers": ["all_successful", "all_finished", "always_run", "any_failed"],
        "structflow.tasks.control_flow": ["case", "merge", "switch", "ifelse"],
        "structflow.utilities.edges": ["unmapped", "flatten"],
        "structflow.engine.cache_validators": ["duration_only", "all_inputs", "all_parameters"],
        "structflow.engine": ["FlowRunner", "TaskRunner", "TimedOut", "TaskTimeoutError"],
    }
    for module_name, names in expected.items():
        module = importlib.import_module(module_name)
        for name in names:
            assert hasattr(module, name), f"{module_name}.{name}"
    from structflow.utilities.logging import get_logger

    assert get_logger is structflow.get_logger
    from structflow.utilities.edges import unmapped

    assert unmapped is structflow.unmapped
    assert issubclass(structflow.ConfigError, ValueError)


def test_import_does_not_load_dask_or_read_config() -> None:
    code = (
        "import sys, structflow, structflow.executors\n"
        "assert 'distributed' not in sys.modules and 'dask' not in sys.modules\n"
        "import structflow._setup as s\n"
        "assert s._current is None\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
