"""
Flows: directed acyclic graphs of tasks.

``with Flow("name") as flow:`` makes the flow active; calling a task inside
the block adds it and the edges from its inputs. ``Flow("name", tasks=[...])``
with :meth:`Flow.add_edge` builds one without the block, as in Prefect 1.
``flow.run()`` runs the tasks in dependency order on an executor and returns
the flow's state.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Never

from structflow._context import ContextVarScope
from structflow._setup import get_logger
from structflow.engine._active import (
    PREFECT1_FLOW_OPTIONS,
    PREFECT1_RUN_OPTIONS,
    FlowError,
    Wiring,
    activate,
    active,
    open_cases,
    refuse_options,
)
from structflow.engine._state_handlers import StateHandler, check_state_handlers
from structflow.engine.task import Parameter, Task, tasks_in, unmapped

if TYPE_CHECKING:
    from structflow.engine.state import State
    from structflow.executors import Executor
    from structflow.loggers import Logger

__all__ = ["Edge", "Flow", "FlowError", "current_flow"]


@dataclass(frozen=True)
class Edge:
    """
    A dependency: *downstream_task* runs after *upstream_task*.

    *key* names the argument of the downstream task that receives the
    upstream result (None for an ordering-only edge); *mapped* tells whether
    the downstream task maps over it.

    .. versionadded:: 0.1.0
    """

    upstream_task: Task
    downstream_task: Task
    key: str | None = None
    mapped: bool = False


@dataclass
class Inputs:
    """The arguments a task was wired with, possibly holding tasks."""

    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    mapped: bool = False


_NO_INPUTS = Inputs()


def _names(tasks: Iterable[Task]) -> str:
    return " -> ".join(repr(t.name) for t in tasks)


class Flow(ContextVarScope):
    """
    A collection of tasks and the dependencies between them.

    Args:
        name: the flow's name; its logger is ``structflow.<name>``.
        executor: the executor ``run()`` uses when none is given; defaults to
            :class:`structflow.executors.LocalExecutor`.
        tasks: tasks to add (the objects themselves, not copies), as
            :meth:`add_task` does.
        edges: :class:`Edge` objects to add, as :meth:`add_edge` does; an
            edge with a ``key`` passes the upstream result to that argument.
        reference_tasks: the tasks whose states decide the flow's state
            (see :meth:`set_reference_tasks`); defaults to the terminal tasks.
        state_handlers: callables ``handler(flow, old_state, new_state)``
            called when a run of the flow starts (``Pending`` ->
            ``Running``) and ends; a state they return becomes the new state.
        on_failure: ``callback(flow, state)``, called when a run ends failed.

    Example::

        with Flow("logging-example") as flow:
            result = task_b(task_a)
        state = flow.run()
        state.result[result].result

    or, without the ``with`` block::

        flow = Flow("logging-example", tasks=[task_a, task_b])
        flow.add_edge(task_a, task_b, key="x")

    Raises:
        TypeError: a bad name, *tasks* or *edges* that are not tasks and
            edges, or state handlers that are not callables.
        FlowError: edges that make a cycle, reference tasks not in the flow.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        name: str,
        executor: Executor | None = None,
        *,
        tasks: Iterable[Task] | None = None,
        edges: Iterable[Edge] | None = None,
        reference_tasks: Iterable[Task] | None = None,
        state_handlers: Iterable[StateHandler] | None = None,
        on_failure: Callable[[Flow, State], object] | None = None,
        **unknown: Never,
    ) -> None:
        if unknown:
            refuse_options("Flow()", unknown, PREFECT1_FLOW_OPTIONS)
        if not isinstance(name, str) or not name:
            raise TypeError(f"Flow name must be a non-empty str, got {name!r}")
        self.name = name
        self.executor = executor
        self.state_handlers = check_state_handlers(state_handlers, on_failure, f"Flow {name!r}")
        # Dicts used as insertion-ordered sets, so runs are reproducible.
        self._tasks: dict[Task, None] = {}
        self._edges: dict[Edge, None] = {}
        self._upstream: dict[Task, dict[Task, None]] = {}
        self._downstream: dict[Task, dict[Task, None]] = {}
        self._inputs: dict[Task, Inputs] = {}
        self._parameters: dict[str, Parameter] = {}
        self._reference_tasks: dict[Task, None] | None = None
        self._tokens: list[contextvars.Token[Wiring | None]] = []
        # Each task's slug, "<name>-<n>", and the last n given for each name.
        self._slugs: dict[Task, str] = {}
        self._slug_counts: dict[str, int] = {}
        for task in self._given("tasks", tasks, Task):
            self.add_task(task)
        for edge in self._given("edges", edges, Edge):
            self.add_edge(edge.upstream_task, edge.downstream_task, edge.key, edge.mapped)
        if reference_tasks is not None:
            self.set_reference_tasks(self._given("reference_tasks", reference_tasks, Task))

    def _given(self, what: str, items: Iterable[Any] | None, kind: type[Any]) -> list[Any]:
        """Return *items* as a list after checking it is an iterable of *kind*."""
        if items is None:
            return []
        if isinstance(items, str | Task | Edge) or not isinstance(items, Iterable):
            raise TypeError(
                f"Flow {self.name!r}: {what}= takes a list of {kind.__name__} objects, "
                f"got {items!r}"
            )
        listed = list(items)
        for item in listed:
            if not isinstance(item, kind):
                raise TypeError(
                    f"Flow {self.name!r}: {what}= takes {kind.__name__} objects, got {item!r}"
                )
        return listed

    def __repr__(self) -> str:
        return f"<Flow: {self.name!r}, {len(self._tasks)} tasks>"

    def __enter__(self) -> Flow:
        self._tokens.append(activate(self))
        return self

    # --- the graph --------------------------------------------------------------

    @property
    def logger(self) -> Logger:
        """
        The flow's logger, ``structflow.<name>``, as Prefect 1's ``flow.logger``.

        During a run of the flow it is ``structflow.context.get("logger")``
        outside the tasks.
        """
        return get_logger(self.name)

    @property
    def tasks(self) -> set[Task]:
        """The flow's tasks (a copy)."""
        return set(self._tasks)

    @property
    def slugs(self) -> dict[Task, str]:
        """
        Each task's slug (a copy): ``<task name>-<n>``, unique in the flow.

        A task's slug is given when it is added: ``-1`` for the first task of
        a name, ``-2`` for the second, and so on, so a flow built the same
        way has the same slugs in every run and every process. Records of a
        task run carry it as ``task_slug``; a mapped task's children share
        their task's slug.
        """
        return dict(self._slugs)

    @property
    def edges(self) -> set[Edge]:
        """The flow's edges (a copy)."""
        return set(self._edges)

    def add_task(self, task: Task) -> Task:
        """
        Add *task* to the flow (once; adding it again changes nothing).

        Returns:
            The task.

        Raises:
            TypeError: *task* is not a Task.
            FlowError: another Parameter of the flow has the same name.
        """
        if not isinstance(task, Task):
            raise TypeError(f"Flow {self.name!r}: expected a Task, got {task!r}")
        if task in self._tasks:
            return task
        self._check_addable([task])
        if isinstance(task, Parameter):
            self._parameters[task.name] = task
        count = self._slug_counts.get(task.name, 0) + 1
        self._slug_counts[task.name] = count
        self._slugs[task] = f"{task.name}-{count}"
        self._tasks[task] = None
        self._upstream[task] = {}
        self._downstream[task] = {}
        # Each open `with case(...)` block runs its new tasks only on its condition.
        for block in open_cases():
            block.add_task(task, self)
        return task

    def add_edge(
        self,
        upstream_task: Task,
        downstream_task: Task,
        key: str | None = None,
        mapped: bool = False,
    ) -> Edge:
        """
        Make *downstream_task* run after *upstream_task*, adding either if needed.

        Without *key* the edge only orders the two tasks. With *key*, the
        upstream result is also passed to *downstream_task*'s argument of
        that name, as in Prefect 1; *mapped* then maps the downstream task
        over it (see :meth:`Task.map`), and an edge without *mapped* into a
        mapped task gives every child the whole result.

        Returns:
            The edge.

        Raises:
            TypeError: a task that is not a Task, a *key* that is not a str,
                or one that ``downstream_task.run`` has no argument for.
            FlowError: the edge would make a cycle (the message names its
                tasks), or the argument *key* already has an input.
        """
        for t in (upstream_task, downstream_task):
            if not isinstance(t, Task):
                raise TypeError(f"Flow {self.name!r}: expected a Task, got {t!r}")
        if key is None:
            self._check_addable([upstream_task, downstream_task])
            self._check_acyclic(downstream_task, [upstream_task], [])
            return self._add_edge(Edge(upstream_task, downstream_task, key, mapped))
        if not isinstance(key, str) or not key:
            raise TypeError(
                f"Flow {self.name!r}: the key of an edge into {downstream_task.name!r} must be "
                f"the name of an argument of its run(), got {key!r}"
            )
        value: Any = upstream_task
        current = self._inputs.get(downstream_task)
        if current is not None and current.mapped and not mapped:
            # Into a mapped task: every child gets the whole result.
            value, mapped = unmapped(upstream_task), True
        elif current is not None and not current.mapped and mapped:
            # The inputs wired so far reach every child whole.
            self._inputs[downstream_task] = Inputs(
                tuple(unmapped(a) for a in current.args),
                {k: unmapped(v) for k, v in current.kwargs.items()},
                mapped=True,
            )
        try:
            self._wire(downstream_task, (), {key: value}, mapped=mapped, partial=True)
        except BaseException:
            if current is not None:
                self._inputs[downstream_task] = current
            raise
        return Edge(upstream_task, downstream_task, key, not isinstance(value, unmapped) and mapped)

    def set_dependencies(
        self,
        task: Task,
        upstream_tasks: Iterable[Task] | None = None,
        downstream_tasks: Iterable[Task] | None = None,
        keyword_tasks: Mapping[str, Any] | None = None,
        mapped: bool = False,
    ) -> None:
        """
        Wire *task* into the flow without a ``with`` block.

        Args:
            task: the task to wire (added if needed).
            upstream_tasks: tasks that must finish before it (ordering only).
            downstream_tasks: tasks that run after it (ordering only).
            keyword_tasks: inputs by argument name: tasks (their results are
                passed in) or constants.
            mapped: map over the *keyword_tasks* values (see :meth:`Task.map`).

        Raises:
            FlowError: a cycle, or an input already bound.
            TypeError: the inputs do not fit ``task.run``.
        """
        self._wire(
            task,
            (),
            dict(keyword_tasks or {}),
            mapped=mapped,
            upstream_tasks=upstream_tasks,
            downstream_tasks=downstream_tasks,
            partial=True,
        )

    def edges_to(self, task: Task) -> set[Edge]:
        """Return the edges into *task* (one per upstream task and argument)."""
        return {e for e in self._edges if e.downstream_task is task}

    def upstream_tasks(self, task: Task) -> set[Task]:
        """Return the tasks *task* depends on."""
        return set(self._upstream.get(task, ()))

    def downstream_tasks(self, task: Task) -> set[Task]:
        """Return the tasks that depend on *task*."""
        return set(self._downstream.get(task, ()))

    def root_tasks(self) -> set[Task]:
        """Return the tasks without upstream tasks."""
        return {t for t in self._tasks if not self._upstream[t]}

    def terminal_tasks(self) -> set[Task]:
        """Return the tasks without downstream tasks."""
        return {t for t in self._tasks if not self._downstream[t]}

    def reference_tasks(self) -> set[Task]:
        """
        Return the tasks whose states decide the flow's state.

        Defaults to the terminal tasks; a flow run succeeds when all of them
        succeed.
        """
        if self._reference_tasks is None:
            return self.terminal_tasks()
        return set(self._reference_tasks)

    def set_reference_tasks(self, tasks: Iterable[Task]) -> None:
        """
        Choose the tasks whose states decide the flow's state.

        Raises:
            FlowError: a task that is not in the flow.
        """
        chosen = dict.fromkeys(tasks)
        missing = [t for t in chosen if t not in self._tasks]
        if missing:
            raise FlowError(
                f"Flow {self.name!r}: reference tasks must be in the flow; "
                f"not in it: {', '.join(repr(t.name) for t in missing)}"
            )
        self._reference_tasks = chosen

    def parameters(self) -> set[Parameter]:
        """Return the flow's Parameter tasks."""
        return set(self._parameters.values())

    def get_tasks(self, name: str | None = None, slug: str | None = None) -> list[Task]:
        """Return the flow's tasks, in the order they were added, optionally by name or slug."""
        return [
            t
            for t in self._tasks
            if (name is None or t.name == name) and (slug is None or self._slugs[t] == slug)
        ]

    def inputs(self, task: Task) -> Inputs:
        """Return the arguments *task* was wired with (possibly holding tasks)."""
        return self._inputs.get(task, _NO_INPUTS)

    def sorted_tasks(self) -> list[Task]:
        """
        Return the tasks in an order where every task follows its upstream tasks.

        Ties keep the order in which tasks were added.

        Raises:
            FlowError: the graph has a cycle (only possible if it was edited
                behind the flow's back).
        """
        remaining = {t: len(self._upstream[t]) for t in self._tasks}
        ready = [t for t, n in remaining.items() if n == 0]
        order: list[Task] = []
        while ready:
            t = ready.pop(0)
            order.append(t)
            for d in self._downstream[t]:
                remaining[d] -= 1
                if remaining[d] == 0:
                    ready.append(d)
        if len(order) != len(self._tasks):
            stuck = [t for t in self._tasks if remaining[t] > 0]
            raise FlowError(
                f"Flow {self.name!r} has a cycle among the tasks {_names(stuck)}; "
                f"flows must be acyclic"
            )
        return order

    def validate(self) -> None:
        """
        Check that the flow can run.

        Raises:
            FlowError: a cycle, or reference tasks no longer in the flow.
        """
        self.sorted_tasks()
        if self._reference_tasks is not None:
            self.set_reference_tasks(self._reference_tasks)

    # --- running ----------------------------------------------------------------

    def run(
        self,
        parameters: Mapping[str, Any] | None = None,
        executor: Executor | None = None,
        context: Mapping[str, Any] | None = None,
        **by_name: Any,
    ) -> State:
        """
        Run the flow and return its final state.

        Args:
            parameters: values for the flow's :class:`Parameter` tasks.
            executor: where tasks run; defaults to the flow's executor, else
                a :class:`structflow.executors.LocalExecutor`.
            context: keys for the run context (``structflow.context``) of
                this run, as Prefect 1's ``flow.run(context=...)``: they win
                over the date keys (``flow.run(context={"today":
                "2024-01-31"})``); the run's own keys (``flow_name``,
                ``parameters``, ...) cannot be given.
            by_name: parameter values by name, as Prefect 1 took them
                (``flow.run(x=1)``); one given both ways takes this value.

        Returns:
            ``Success`` when all reference tasks succeeded, else ``Failed``;
            ``state.result`` maps every task to its final state. A failing
            task never raises out of ``run``.

        Raises:
            FlowError: unknown parameters, or a required one is missing.
            TypeError: *parameters* is not a mapping, *executor* not an
                Executor, or a keyword argument is neither a parameter nor an
                option of ``run``.
        """
        from structflow.engine.runner import FlowRunner

        if by_name:
            parameters = self._by_name(parameters, by_name)
        return FlowRunner(self).run(parameters=parameters, executor=executor, context=context)

    def _by_name(
        self, parameters: Mapping[str, Any] | None, by_name: dict[str, Any]
    ) -> Mapping[str, Any] | None:
        """*parameters* with the values ``run`` got by name; refuse other keywords."""
        names = {p.name for p in self.parameters()}
        others = {k: v for k, v in by_name.items() if k not in names}
        plain = sorted(set(others) - PREFECT1_RUN_OPTIONS)
        if plain:  # most likely a parameter's name mistyped
            known = ", ".join(repr(n) for n in sorted(names)) or "none"
            raise TypeError(
                f"Flow {self.name!r}: run() got {', '.join(map(repr, plain))}, neither a "
                f"parameter of the flow (its parameters: {known}) nor an option of run() "
                "(parameters, executor, context)"
            )
        if others:
            refuse_options(f"Flow {self.name!r}: run()", others, PREFECT1_RUN_OPTIONS)
        if parameters is not None and not isinstance(parameters, Mapping):
            return parameters  # FlowRunner says what is wrong with it
        return {**(parameters or {}), **by_name}

    # --- wiring (used by Task.__call__, Task.map and set_dependencies) ----------

    def _wire(
        self,
        task: Task,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        mapped: bool,
        upstream_tasks: Iterable[Task] | None = None,
        downstream_tasks: Iterable[Task] | None = None,
        partial: bool = False,
    ) -> None:
        """
        Add *task* with its inputs and dependencies, or change nothing on error.

        With *partial*, the inputs may leave arguments of ``run`` unbound
        (``set_dependencies`` adds keyword inputs one call at a time).
        """
        if not isinstance(task, Task):
            raise TypeError(f"Flow {self.name!r}: expected a Task, got {task!r}")
        ups = list(upstream_tasks or ())
        downs = list(downstream_tasks or ())
        for t in (*ups, *downs):
            if not isinstance(t, Task):
                raise TypeError(
                    f"Flow {self.name!r}: upstream and downstream tasks of {task.name!r} "
                    f"must be Tasks, got {t!r}"
                )

        inputs = self._merged_inputs(task, args, kwargs, mapped, partial)
        data_edges = self._data_edges(task, args, kwargs, mapped)
        data_ups = [e.upstream_task for e in data_edges]
        self._check_addable([task, *data_ups, *ups, *downs])
        self._check_acyclic(task, data_ups + ups, downs)

        # Everything is checked; from here on nothing can fail half-way.
        self.add_task(task)
        if inputs is not None:
            self._inputs[task] = inputs
        for edge in data_edges:
            self._add_edge(edge)
        for up in ups:
            self._add_edge(Edge(up, task))
        for down in downs:
            self._add_edge(Edge(task, down))

    def _merged_inputs(
        self,
        task: Task,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        mapped: bool,
        partial: bool,
    ) -> Inputs | None:
        if not args and not kwargs:
            return None
        current = self._inputs.get(task)
        if current is not None:
            if args and current.args:
                raise FlowError(
                    f"Flow {self.name!r}: task {task.name!r} already has positional inputs; "
                    f"a task's inputs are bound once (call the task again to get a copy)"
                )
            twice = sorted(set(kwargs) & set(current.kwargs))
            if twice:
                raise FlowError(
                    f"Flow {self.name!r}: task {task.name!r} already has inputs for "
                    f"{', '.join(map(repr, twice))}"
                )
            if current.mapped != mapped:
                raise FlowError(
                    f"Flow {self.name!r}: task {task.name!r} cannot mix mapped and "
                    f"unmapped wiring; wrap single values in unmapped() instead"
                )
            args = current.args or args
            kwargs = {**current.kwargs, **kwargs}
        task.check_arguments(args, kwargs, partial=partial)
        if mapped:
            if not any(not isinstance(v, unmapped) for v in (*args, *kwargs.values())):
                raise FlowError(
                    f"Flow {self.name!r}: map() of task {task.name!r} needs at least one "
                    f"argument to map over (every argument is unmapped)"
                )
            # A one-shot iterator would be empty on the next run; keep its items.
            args = tuple(_materialize(v) for v in args)
            kwargs = {k: _materialize(v) for k, v in kwargs.items()}
        return Inputs(args, dict(kwargs), mapped)

    def _data_edges(
        self, task: Task, args: tuple[Any, ...], kwargs: dict[str, Any], mapped: bool
    ) -> list[Edge]:
        keys = positional_names(task, len(args))
        values = [*args, *kwargs.values()]
        keys += list(kwargs)
        edges = []
        for key, value in zip(keys, values, strict=True):
            edge_mapped = mapped and not isinstance(value, unmapped)
            for up in tasks_in(value):
                edges.append(Edge(up, task, key, edge_mapped))
        return edges

    def _check_addable(self, tasks: list[Task]) -> None:
        """Raise if adding *tasks* would give the flow two Parameters with one name."""
        names: dict[str, Parameter] = {}
        for t in tasks:
            if not isinstance(t, Parameter) or t in self._tasks:
                continue
            other = self._parameters.get(t.name) or names.get(t.name)
            if other is not None and other is not t:
                raise FlowError(
                    f"Flow {self.name!r} already has a Parameter named {t.name!r}; "
                    f"parameter names must be unique within a flow"
                )
            names[t.name] = t

    def _add_edge(self, edge: Edge) -> Edge:
        self.add_task(edge.upstream_task)
        self.add_task(edge.downstream_task)
        self._edges[edge] = None
        self._upstream[edge.downstream_task][edge.upstream_task] = None
        self._downstream[edge.upstream_task][edge.downstream_task] = None
        return edge

    def _check_acyclic(
        self, task: Task, new_upstream: list[Task], new_downstream: list[Task]
    ) -> None:
        """
        Raise if new edges ``u -> task`` and ``task -> d`` would make a cycle.

        Any new cycle passes through *task*, so it is enough to walk forward
        from *task* and look for *task* itself or one of its new upstream
        tasks. For a task just created the walk ends at once.
        """
        if task in new_upstream or task in new_downstream:
            raise FlowError(
                f"Flow {self.name!r}: task {task.name!r} cannot depend on itself "
                f"(cycle {_names([task, task])}); flows must be acyclic"
            )
        targets = set(new_upstream)
        if not targets and not new_downstream:
            return
        targets.add(task)
        parent: dict[Task, Task] = {}
        stack = [(d, task) for d in (*self._downstream.get(task, ()), *new_downstream)]
        while stack:
            node, par = stack.pop()
            if node in parent:
                continue
            parent[node] = par
            if node in targets:
                path = [node]
                cur = par
                while cur is not task:
                    path.append(cur)
                    cur = parent[cur]
                path.append(task)
                path.reverse()
                if node is not task:
                    path.append(task)
                raise FlowError(
                    f"Flow {self.name!r}: this dependency would make a cycle "
                    f"{_names(path)}; flows must be acyclic"
                )
            stack.extend((d, node) for d in self._downstream.get(node, ()))


def current_flow() -> Flow | None:
    """
    Return the flow of the innermost active ``with Flow(...)`` block, or None.

    .. versionadded:: 0.1.0
    """
    flow = active()
    return flow if isinstance(flow, Flow) else None


def positional_names(task: Task, count: int) -> list[str | None]:
    """Name the parameters that *count* positional arguments bind to."""
    signature = task._signature()
    names: list[str | None] = []
    if signature is not None:
        for p in signature.parameters.values():
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                names.append(p.name)
            elif p.kind is p.VAR_POSITIONAL:
                names.extend([p.name] * max(0, count - len(names)))
                break
    names.extend([None] * max(0, count - len(names)))
    return names[:count]


def _materialize(value: Any) -> Any:
    if isinstance(value, Iterator):
        return list(value)
    return value
