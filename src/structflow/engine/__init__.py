"""
The workflow runtime: tasks, flows, their states, and the runner.

``structflow`` re-exports :func:`task`, :class:`Task`, :class:`Flow` and
:class:`Parameter`; the rest is importable from here.
"""

from structflow.engine import signals, state
from structflow.engine._active import FlowError
from structflow.engine._timeout import TaskTimeoutError
from structflow.engine.flow import Edge, Flow, current_flow
from structflow.engine.runner import FlowRunner, TaskCall, TaskRunner, run_task
from structflow.engine.state import *  # noqa: F403 - the states, as state.__all__ lists them
from structflow.engine.task import FunctionTask, Parameter, Task, task, unmapped

__all__ = [
    "Edge",
    "Flow",
    "FlowError",
    "FlowRunner",
    "FunctionTask",
    "Parameter",
    "Task",
    "TaskCall",
    "TaskRunner",
    "TaskTimeoutError",
    "current_flow",
    "run_task",
    "signals",
    "task",
    "unmapped",
]
__all__ += state.__all__
