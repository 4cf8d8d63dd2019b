"""
The example of Prefect 1's "Deployment: Logging" page, ported to structflow.

Only the import names changed. Start a receiver (``python3 -m http.server``
answers the POSTs with 501 but still prints each request line), then run::

    STRUCTFLOW__LOGGING__LEVEL=DEBUG python examples/logging_example.py

The receiver sees exactly two requests, carrying "Beginning to run Task B with
input 3" and "Returning the value 10". Set ``STRUCTFLOW_EXAMPLE_URL`` to send
them somewhere other than ``http://0.0.0.0:8000/``.
"""

# ruff: noqa: UP032 - the str.format calls are kept exactly as on the seed page

import logging
import os

import requests

import structflow
from structflow import Flow, task
from structflow.utilities.logging import get_logger

URL = os.environ.get("STRUCTFLOW_EXAMPLE_URL", "http://0.0.0.0:8000/")


class MyHandler(logging.StreamHandler):
    def emit(self, record):
        requests.post(URL, params=dict(msg=record.msg))


@task(name="Task A")
def task_a():
    return 3


@task(name="Task B")
def task_b(x):
    logger = structflow.context.get("logger")
    logger.debug("Beginning to run Task B with input {}".format(x))
    y = 3 * x + 1
    logger.debug("Returning the value {}".format(y))
    return y


with Flow("logging-example") as flow:
    result = task_b(task_a)


# now attach our custom handler to Task B's logger
task_logger = get_logger("Task B")
task_logger.addHandler(MyHandler())


if __name__ == "__main__":
    flow.run()
