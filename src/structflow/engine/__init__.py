"""
The workflow runtime: tasks, flows, their states, and the runner.

``structflow`` re-exports :func:`task`, :class:`Task`, :class:`Flow` and
:class:`Parameter`; the rest is importable from here.
"""

from structflow.engine._active import FlowError
from structflow.engine._timeout import TaskTimeoutError
from structflow.engine.flow import Edge, Flow, current_flow
from structflow.engine.runner import FlowRunner, TaskCall, TaskRunner, run_task
from structflow.engine.state import (
    Failed,
    Finished,
    Mapped,
    Pending,
    RemoteTaskError,
    Retrying,
    Running,
    State,
    Success,
    TimedOut,
    TriggerFailed,
)
from structflow.engine.task import FunctionTask, Parameter, Task, task, unmapped

__all__ = [
    "Edge",
    "Failed",
    "Finished",
    "Flow",
    "FlowError",
    "FlowRunner",
    "FunctionTask",
    "Mapped",
    "Parameter",
    "Pending",
    "RemoteTaskError",
    "Retrying",
    "Running",
    "State",
    "Success",
    "Task",
    "TaskCall",
    "TaskRunner",
    "TaskTimeoutError",
    "TimedOut",
    "TriggerFailed",
    "current_flow",
    "run_task",
    "task",
    "unmapped",
]
