"""
:class:`StreamHandler`: the handler the ``stream`` setting puts on structflow's loggers.
"""

from __future__ import annotations

import logging
import sys
from typing import IO

__all__ = ["StreamHandler"]


class StreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """
    A stream handler that writes to the *current* ``sys.stdout`` or ``sys.stderr``.

    Looking the stream up at each record (rather than once) keeps output going
    where the application and test runners redirect it.
    """

    def __init__(self, stream_name: str) -> None:
        super().__init__()
        self.stream_name = stream_name

    @property
    def stream(self) -> IO[str]:
        return sys.stderr if self.stream_name == "stderr" else sys.stdout

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        # StreamHandler.__init__ and setStream assign it; the lookup stays dynamic.
        pass

    def emit(self, record: logging.LogRecord) -> None:
        # stdlib's emit plus flush() takes the handler lock twice per record;
        # handle() already holds it, so write and flush directly.
        try:
            stream = sys.stderr if self.stream_name == "stderr" else sys.stdout
            stream.write(self.format(record) + "\n")
            stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def __repr__(self) -> str:
        return f"<structflow StreamHandler {self.stream_name} ({logging.getLevelName(self.level)})>"
