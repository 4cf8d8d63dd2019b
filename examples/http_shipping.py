"""
The seed page's example, shipping through structflow's HTTPHandler.

The same flow as ``logging_example.py``, but instead of a hand-written
handler that POSTs every record on the task's own thread (and loses it if the
receiver is down), Task B's logger gets an :class:`HTTPHandler`: records are
batched by a background worker, sent as NDJSON with their run context
(``flow_name``, ``flow_run_id``, ``task_name``, ``task_run_id`` ...), retried
if the receiver fails, and delivered before the program exits.

Start a receiver that prints what it gets, then run the flow::

    python examples/receiver.py 8000
    STRUCTFLOW__LOGGING__LEVEL=DEBUG python examples/http_shipping.py

Set ``STRUCTFLOW_EXAMPLE_URL`` to ship somewhere other than
``http://127.0.0.1:8000/``.
"""

import os

import structflow
from structflow import Flow, task
from structflow.handlers import HTTPHandler
from structflow.utilities.logging import get_logger

URL = os.environ.get("STRUCTFLOW_EXAMPLE_URL", "http://127.0.0.1:8000/")


@task(name="Task A")
def task_a():
    return 3


@task(name="Task B")
def task_b(x):
    logger = structflow.context.get("logger")
    logger.debug("Beginning to run Task B with input {}".format(x))  # noqa: UP032 - as on the seed page
    y = 3 * x + 1
    logger.debug("Returning the value {}".format(y))  # noqa: UP032 - as on the seed page
    return y


with Flow("logging-example") as flow:
    result = task_b(task_a)


# Attach the shipping handler to Task B's logger. It never blocks the task,
# and close() (or the end of the program) delivers what is still queued,
# waiting at most shutdown_timeout seconds.
handler = HTTPHandler(URL, shutdown_timeout=5.0)
task_logger = get_logger("Task B")
task_logger.addHandler(handler)


if __name__ == "__main__":
    state = flow.run()
    delivered = handler.flush(timeout=10)
    print(f"flow succeeded: {state.is_successful()}; records delivered: {delivered}")
    print(f"shipping stats: {handler.stats()}")
