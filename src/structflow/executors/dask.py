"""
Running task runs on a Dask distributed cluster.

:class:`DaskExecutor` submits each task run to a ``dask.distributed``
cluster. What makes logging from the workers "just work" happens around each
call on the worker:

1. the flow process's effective structflow configuration travels with the
   call and is applied once per worker process per distinct configuration,
   so workers log at the same level, in the same format and to the same
   destinations (stream, HTTP endpoint, syslog) as the flow's process;
2. the submitting context (run context and ``structflow.bound`` keys) is
   re-entered, so every record carries ``flow_name``, ``flow_run_id``,
   ``task_name``, ``task_run_id``, ``map_index`` and ``task_run_count``;
3. the shipping handlers structflow attached are flushed before the call's
   result goes back to the scheduler, and every worker is flushed once more
   before the executor lets go of the cluster.

This module imports ``distributed`` only when an executor starts, so
importing structflow never imports Dask.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import inspect
import io
import json
import logging
import marshal
import math
import pickle
import pkgutil
import threading
import time
import types
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from structflow import _setup
from structflow._config import CONFIGURE_SECTION, HANDLER_SECTIONS, Config
from structflow._context import context
from structflow.executors.base import Executor, F, SharedResource, T, TaskFuture
from structflow.loggers import ROOT_NAME

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["DaskExecutor", "DaskFuture"]


#: Default seconds a worker waits for a task's records to be delivered.
DEFAULT_FLUSH_TIMEOUT = 10.0
#: Extra seconds the final flush of all workers may take beyond ``flush_timeout``
#: (the round trip to every worker) before the executor stops waiting.
_FINAL_FLUSH_GRACE = 5.0
_DIAGNOSTICS_LOGGER = f"{ROOT_NAME}.shipping"

_INSTALL_HINT = "install the extra with: pip install 'structflow[dask]'"


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            f"DaskExecutor needs the 'distributed' package ({exc}); {_INSTALL_HINT}"
        ) from exc
    return distributed


def _not_an_import_path(spec: str) -> ValueError:
    return ValueError(
        f"DaskExecutor(cluster_class={spec!r}): expected a class or an import path "
        f"such as 'dask_jobqueue.SLURMCluster' or 'dask_jobqueue:SLURMCluster'"
    )


def _resolve_cluster_class(spec: str | Callable[..., Any] | None) -> Callable[..., Any]:
    """Return the cluster class *spec* names (LocalCluster when None)."""
    if spec is None:
        return cast("Callable[..., Any]", _import_distributed().LocalCluster)
    if callable(spec):
        return spec
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr:
        # resolve_name would take a bare name for a module.
        raise _not_an_import_path(spec)
    try:
        obj: Any = pkgutil.resolve_name(spec)
    except ValueError:
        raise _not_an_import_path(spec) from None
    except (ImportError, AttributeError) as exc:
        raise ValueError(
            f"DaskExecutor(cluster_class={spec!r}): cannot import it ({type(exc).__name__}: {exc})"
        ) from None
    if not callable(obj):
        raise ValueError(f"DaskExecutor(cluster_class={spec!r}): {obj!r} is not callable")
    return cast("Callable[..., Any]", obj)


def _check_address(address: str | None) -> str | None:
    if address is not None and (not isinstance(address, str) or not address):
        raise TypeError(
            f"DaskExecutor(address=...) must be None or a scheduler address such as "
            f"'tcp://127.0.0.1:8786', got {address!r}"
        )
    return address


def _check_cluster_class(
    cluster_class: str | Callable[..., Any] | None,
) -> str | Callable[..., Any] | None:
    if cluster_class is not None and not (
        isinstance(cluster_class, str) or callable(cluster_class)
    ):
        raise TypeError(
            f"DaskExecutor(cluster_class=...) must be a class or an import path, "
            f"got {cluster_class!r}"
        )
    return cluster_class


def _check_flush_timeout(flush_timeout: float) -> float:
    if (
        isinstance(flush_timeout, bool)
        or not isinstance(flush_timeout, int | float)
        or not 0 <= flush_timeout < math.inf
    ):
        raise ValueError(
            f"DaskExecutor(flush_timeout=...) must be a finite number of seconds >= 0, "
            f"got {flush_timeout!r}"
        )
    return float(flush_timeout)


def _check_kwargs(value: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise TypeError(
            f"DaskExecutor({what}=...) must be None or a mapping of keyword arguments, "
            f"got {value!r}"
        )
    return dict(value)


# --- what travels to the worker ------------------------------------------------------


@dataclass(frozen=True)
class _Settings:
    """The flow process's effective configuration, as a worker applies it."""

    effective: dict[str, Any]
    overrides: dict[str, Any]
    fingerprint: str


def _settings_for(cfg: Config) -> _Settings:
    effective = cfg.to_dict()
    # The worker applies it as configure() arguments, which name that section's keys.
    section = dict(effective.get(CONFIGURE_SECTION, {}))
    overrides = {k: v for k, v in section.items() if k not in HANDLER_SECTIONS}
    for name in HANDLER_SECTIONS:
        # None removes a handler the worker's own environment or file would add,
        # so the worker ships exactly where the flow's process does.
        overrides[name] = section.get(name)
    text = json.dumps(effective, sort_keys=True, separators=(",", ":"))
    return _Settings(effective, overrides, hashlib.sha256(text.encode()).hexdigest())


@dataclass(frozen=True)
class _Job:
    """One submitted call and the context it runs in."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    snapshot: dict[str, Any]


def _cloudpickle() -> Any:
    # A dependency of distributed, so present wherever a DaskExecutor can run.
    return importlib.import_module("cloudpickle")


_pickler: Any = None


def _pickler_class() -> Any:
    """
    cloudpickle's Pickler, keeping the file names of code it pickles by value.

    cloudpickle ships a function by value when its module attribute is not
    the function itself, which is the case for every ``@task`` function (the
    attribute is the task). It then renames the code's file to
    ``<dynamic-code>``, so tracebacks and records from the worker would lose
    the file and source line. Code objects travel with ``marshal`` instead,
    which keeps them whole; like cloudpickle's own format for code, it needs
    the same Python version on both sides.
    """
    global _pickler
    if _pickler is None:
        base = _cloudpickle().Pickler

        class Pickler(base):  # type: ignore[misc, valid-type]
            def reducer_override(self, obj: Any) -> Any:
                if type(obj) is types.CodeType:
                    return marshal.loads, (marshal.dumps(obj),)
                return super().reducer_override(obj)

        _pickler = Pickler
    return _pickler


def _dumps(obj: object) -> bytes:
    buffer = io.BytesIO()
    _pickler_class()(buffer, protocol=5).dump(obj)
    return buffer.getvalue()


def _loads(data: bytes) -> Any:
    return pickle.loads(data)


# --- worker side --------------------------------------------------------------------

# What this process applied for jobs: the fingerprint of the flow's
# configuration and the Config object it produced here. Comparing the object
# too notices a configure() or reset() made since (by a task, for example).
_applied: tuple[str, object] | None = None
_apply_lock = threading.Lock()
_flush_takes_timeout: dict[type, bool] = {}
_warned: set[str] = set()
# When a flush after a task last timed out (monotonic seconds), or None.
# While it is recent, later tasks in this process only nudge the handlers
# instead of waiting, so a receiver that is down delays one task per
# BEHIND_RECHECK seconds by flush_timeout rather than every task.
_behind_at: float | None = None
#: Seconds after a timed-out flush during which task runs do not wait again.
BEHIND_RECHECK = 60.0


def _diagnostic(message: str) -> None:
    # Delivery problems are reported where the shipping handlers report theirs.
    with contextlib.suppress(Exception):
        logging.getLogger(_DIAGNOSTICS_LOGGER).warning(message)


def _warn_once(key: str, message: str) -> None:
    # Once per process, so a receiver that stays down cannot flood the log.
    if key not in _warned:
        _warned.add(key)
        _diagnostic(message)


def _is_applied(settings: _Settings) -> bool:
    applied = _applied
    return (
        applied is not None
        and applied[0] == settings.fingerprint
        and applied[1] is getattr(_setup, "_current", None)
    )


def _apply_settings(settings: _Settings) -> None:
    """Configure structflow in this process as the flow's process is, once per configuration."""
    global _applied, _behind_at
    if _is_applied(settings):
        return
    with _apply_lock:
        if _is_applied(settings):
            return
        # Another configuration means other handlers: wait for them again.
        _behind_at = None
        current: Config | None = getattr(_setup, "_current", None)
        # A worker thread inside the flow's own process (processes=False)
        # already has this configuration; re-applying it would only churn.
        if current is None or current.to_dict() != settings.effective:
            try:
                current = _setup.configure(**settings.overrides)
            except Exception as exc:
                # Logging must not stop the task: it runs with the worker's own
                # logging, and the reason is reported once per configuration.
                _warn_once(
                    f"configure:{settings.fingerprint}",
                    f"DaskExecutor: could not apply the flow's structflow configuration "
                    f"on this worker ({type(exc).__name__}: {exc}); task records use the "
                    f"worker's own configuration",
                )
                current = getattr(_setup, "_current", None)
        _applied = (settings.fingerprint, current)


def _accepts_timeout(handler: logging.Handler) -> bool:
    kind = type(handler)
    known = _flush_takes_timeout.get(kind)
    if known is None:
        try:
            known = "timeout" in inspect.signature(handler.flush).parameters
        except (TypeError, ValueError):
            known = False
        _flush_takes_timeout[kind] = known
    return known


def flush_owned_handlers(timeout: float) -> bool:
    """
    Flush the handlers structflow attached in this process, within *timeout* seconds in all.

    Shipping handlers (those whose ``flush`` takes a ``timeout``) are waited
    on until their records are delivered; stream handlers are flushed.

    Returns:
        True when every shipping handler reported its records delivered.
    """
    deadline = time.monotonic() + max(0.0, timeout)
    delivered = True
    seen: set[int] = set()
    for handler in list(logging.getLogger(ROOT_NAME).handlers):
        if id(handler) in seen or not getattr(handler, _setup.OWNED_ATTR, False):
            continue
        seen.add(id(handler))
        try:
            if _accepts_timeout(handler):
                left = max(0.0, deadline - time.monotonic())
                flush = cast("Callable[..., Any]", handler.flush)
                if flush(timeout=left) is False:
                    delivered = False
            else:
                handler.flush()
        except Exception:
            delivered = False
    return delivered


def _run_job(payload: bytes, label: str, settings: _Settings, flush_timeout: float) -> bytes:
    """
    Run one submitted call on a worker (the function Dask executes).

    The call travels as cloudpickle bytes made by :meth:`DaskExecutor.submit`
    and its result goes back the same way, so a value that cannot cross
    between processes fails with a message naming the task rather than deep
    inside Dask's protocol.
    """
    _apply_settings(settings)
    try:
        try:
            job: _Job = _loads(payload)
        except Exception as exc:
            raise RuntimeError(
                f"the worker cannot load {label} ({type(exc).__name__}: {exc}); the task's "
                f"code and its modules must be importable on every worker"
            ) from None
        with context.restore(job.snapshot):
            value = job.fn(*job.args, **job.kwargs)
        try:
            return _dumps(value)
        except Exception as exc:
            raise TypeError(
                f"the result of {label} cannot be sent back from the worker "
                f"({type(exc).__name__}: {exc})"
            ) from None
    finally:
        _flush_after_task(flush_timeout)


def _flush_after_task(flush_timeout: float) -> None:
    global _behind_at
    behind_at = _behind_at
    if behind_at is not None and time.monotonic() - behind_at < BEHIND_RECHECK:
        # Start delivery now without waiting for it.
        flush_owned_handlers(0.0)
        return
    if flush_owned_handlers(flush_timeout):
        _behind_at = None
        return
    if behind_at is None and flush_timeout > 0:
        _diagnostic(
            f"DaskExecutor: a task's log records were not all delivered within "
            f"{flush_timeout:g} s of its end; they stay queued (or spooled) on this worker "
            f"and are retried in the background; for the next {BEHIND_RECHECK:g} s, task "
            f"runs here do not wait for delivery"
        )
    _behind_at = time.monotonic()


async def _flush_worker(timeout: float) -> bool:
    """Flush this worker's handlers without blocking its event loop."""
    return await asyncio.to_thread(flush_owned_handlers, timeout)


# --- the executor -------------------------------------------------------------------


class DaskExecutor(Executor):
    """
    Run task runs on a Dask distributed cluster.

    Args:
        address: the address of a running scheduler
            (``"tcp://10.0.0.5:8786"``); None starts a cluster for each flow
            run (``LocalCluster`` by default) and closes it afterwards.
        cluster_kwargs: keyword arguments for the cluster class when
            *address* is None (for ``LocalCluster``: ``n_workers``,
            ``threads_per_worker``, ``processes``, ...).
        client_kwargs: keyword arguments for ``distributed.Client``.
            ``set_as_default`` defaults to False so that a flow run does not
            replace the application's default Dask client.
        cluster_class: the cluster class to start when *address* is None: a
            class or an import path (``"dask_jobqueue.SLURMCluster"``);
            defaults to ``distributed.LocalCluster``.
        adapt_kwargs: when given, ``cluster.adapt(**adapt_kwargs)`` is called
            on the cluster the executor started (adaptive scaling).
        flush_timeout: seconds a worker waits, after each task run, for the
            run's records to be delivered by structflow's shipping handlers
            before it reports the result; the same bound applies to the final
            flush of every worker when the executor stops.

    Each submission runs on a worker inside the submitting context (run
    context and ``structflow.bound`` keys) with structflow configured as in
    the flow's process. Submissions get unique keys (``pure=False``), so
    retries and calls with equal arguments all run.

    Raises:
        ValueError: *address* together with cluster options, or a bad value.
        TypeError: an argument of the wrong type.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        address: str | None = None,
        cluster_kwargs: Mapping[str, Any] | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
        *,
        cluster_class: str | Callable[..., Any] | None = None,
        adapt_kwargs: Mapping[str, Any] | None = None,
        flush_timeout: float = DEFAULT_FLUSH_TIMEOUT,
    ) -> None:
        self.address = _check_address(address)
        self.cluster_kwargs = _check_kwargs(cluster_kwargs, "cluster_kwargs")
        self.client_kwargs = _check_kwargs(client_kwargs, "client_kwargs")
        self.adapt_kwargs = (
            None if adapt_kwargs is None else _check_kwargs(adapt_kwargs, "adapt_kwargs")
        )
        if address is not None and (
            self.cluster_kwargs or cluster_class is not None or self.adapt_kwargs is not None
        ):
            raise ValueError(
                "DaskExecutor: cluster_kwargs, cluster_class and adapt_kwargs apply only to a "
                "cluster the executor starts itself; with address=... it connects to a "
                "running scheduler, so leave them out"
            )
        self.cluster_class = _check_cluster_class(cluster_class)
        self.flush_timeout = _check_flush_timeout(flush_timeout)
        # The client, and the cluster the executor started (None for an address).
        self._connection: SharedResource[tuple[Client, Any]] = SharedResource()
        self._settings: tuple[Config, _Settings] | None = None
        # wait_first sleeps on this; every future's done-callback wakes it.
        self._changed = threading.Condition()

    def __repr__(self) -> str:
        parts = [f"address={self.address!r}"]
        if self.cluster_kwargs:
            parts.append(f"cluster_kwargs={self.cluster_kwargs!r}")
        if self.client_kwargs:
            parts.append(f"client_kwargs={self.client_kwargs!r}")
        if self.cluster_class is not None:
            parts.append(f"cluster_class={self.cluster_class!r}")
        if self.adapt_kwargs is not None:
            parts.append(f"adapt_kwargs={self.adapt_kwargs!r}")
        if self.flush_timeout != DEFAULT_FLUSH_TIMEOUT:
            parts.append(f"flush_timeout={self.flush_timeout!r}")
        return f"DaskExecutor({', '.join(parts)})"

    @property
    def client(self) -> Client | None:
        """The ``distributed.Client`` while the executor is started, else None."""
        connection = self._connection.value
        return None if connection is None else connection[0]

    @contextlib.contextmanager
    def start(self) -> Iterator[None]:
        """
        Connect to the cluster (starting one when *address* is None) for the block.

        Nested or concurrent ``start`` blocks share one client. When the last
        block exits, every worker is flushed, then the client is closed and a
        cluster the executor started is shut down.
        """
        with self._connection.use(self._connect, self._disconnect):
            yield

    def _connect(self) -> tuple[Client, Any]:
        """Return a client and the cluster it started (None for an existing scheduler)."""
        distributed = _import_distributed()
        client_kwargs = {"set_as_default": False, **self.client_kwargs}
        if self.address is not None:
            return distributed.Client(self.address, **client_kwargs), None
        cluster = _resolve_cluster_class(self.cluster_class)(**self.cluster_kwargs)
        try:
            if self.adapt_kwargs is not None:
                cluster.adapt(**self.adapt_kwargs)
            client = cast("Client", distributed.Client(cluster, **client_kwargs))
        except BaseException:
            cluster.close()
            raise
        return client, cluster

    def _disconnect(self, connection: tuple[Client, Any], failed: bool) -> None:
        client, cluster = connection
        try:
            self._flush_workers(client)
        finally:
            try:
                cast("Any", client).close()
            finally:
                if cluster is not None:
                    cluster.close()

    def _flush_workers(self, client: Client) -> None:
        """Deliver what every worker still holds before the cluster can go away."""
        answers: list[dict[str, Any]] = []

        def run() -> None:
            try:
                answers.append(client.run(_flush_worker, self.flush_timeout, on_error="return"))
            except Exception as exc:
                answers.append({"<client>": exc})

        # The call is bounded: a worker that does not answer must not hold up
        # the end of the flow run.
        thread = threading.Thread(target=run, name="structflow-dask-flush", daemon=True)
        thread.start()
        thread.join(self.flush_timeout + _FINAL_FLUSH_GRACE)
        if self.flush_timeout == 0:
            return
        if not answers:
            late = "no answer"
        else:
            late = ", ".join(f"{w}: {ok!r}" for w, ok in answers[0].items() if ok is not True)
        if late:
            _diagnostic(
                f"DaskExecutor: not every worker confirmed delivery of its log records "
                f"within {self.flush_timeout:g} s when the flow run ended ({late})"
            )

    def _current_settings(self) -> _Settings:
        cfg = _setup.ensure_configured()
        cached = self._settings
        if cached is not None and cached[0] is cfg:
            return cached[1]
        settings = _settings_for(cfg)
        self._settings = (cfg, settings)
        return settings

    def _notify(self, _future: Any) -> None:
        with self._changed:
            self._changed.notify_all()

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> TaskFuture[T]:
        """
        Run ``fn(*args, **kwargs)`` on a worker, in the current context.

        The call gets a unique key made of the task's name (when *args* start
        with a task call) and a random suffix.

        Raises:
            RuntimeError: the executor is not started.
        """
        client = self.client
        if client is None:
            raise RuntimeError(
                "DaskExecutor.submit() needs a started executor: use it inside "
                "`with executor.start():` (Flow.run does this for you)"
            )
        prefix, label = _describe(fn, args)
        job = _Job(fn=fn, args=args, kwargs=dict(kwargs), snapshot=context.snapshot())
        try:
            payload = _dumps(job)
        except Exception as exc:
            raise TypeError(
                f"DaskExecutor cannot send {label} to a worker: its function, arguments or "
                f"context do not pickle ({type(exc).__name__}: {exc})"
            ) from None
        key = f"{prefix}-{uuid.uuid4().hex}"
        future: Any = client.submit(
            _run_job,
            payload,
            label,
            self._current_settings(),
            self.flush_timeout,
            key=key,
            pure=False,
        )
        future.add_done_callback(self._notify)
        return cast("TaskFuture[T]", DaskFuture(future))

    def wait_first(self, futures: Collection[F], timeout: float | None = None) -> set[F]:
        """
        Wait until one of *futures* (returned by :meth:`submit`) is done, or *timeout* passes.

        Returns:
            The futures that are done, with a result, an error or cancelled.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                done = {f for f in futures if f.done()}
                if done or not futures:
                    return done
                if deadline is None:
                    self._changed.wait()
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    return done
                self._changed.wait(left)


def _describe(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[str, str]:
    """Return a Dask key prefix (the dashboard groups by it) and a label for messages."""
    first = args[0] if args else None
    name = getattr(getattr(first, "task", None), "name", None)
    if isinstance(name, str) and name:
        index = getattr(first, "map_index", None)
        full = name if index is None else f"{name}[{index}]"
        return name, f"task {full!r}"
    fn_name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or "call"
    return str(fn_name), f"the call of {fn_name}"


class DaskFuture:
    """
    The future :meth:`DaskExecutor.submit` returns.

    It wraps a ``distributed.Future`` (:attr:`dask_future`) whose value is
    the call's pickled result, and unpickles it in :meth:`result`.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("dask_future",)

    def __init__(self, dask_future: Any) -> None:
        self.dask_future = dask_future

    def __repr__(self) -> str:
        return f"<DaskFuture {self.key!r} {self.dask_future.status}>"

    @property
    def key(self) -> str:
        """The call's unique key on the Dask scheduler."""
        return str(self.dask_future.key)

    def done(self) -> bool:
        """Return True once the call finished, with a result, an error or cancelled."""
        return bool(self.dask_future.done())

    def result(self, timeout: float | None = None) -> Any:
        """
        Return the call's result, or raise its exception.

        Raises:
            TimeoutError: *timeout* seconds passed first.
        """
        return _loads(self.dask_future.result(timeout=timeout))
