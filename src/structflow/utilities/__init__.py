"""Import paths kept for code ported from Prefect 1 (``prefect.utilities.*``)."""

# `import structflow` is enough for `structflow.utilities.logging.get_logger()`
# and `structflow.utilities.debug.raise_on_exception()`, as `import prefect`
# was for Prefect 1's.
from structflow.utilities import debug, logging

__all__ = ["debug", "logging"]
