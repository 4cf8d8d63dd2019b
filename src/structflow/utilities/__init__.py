"""Import paths kept for code ported from Prefect 1 (``prefect.utilities.*``)."""

# `import structflow` is enough for `structflow.utilities.logging.get_logger()`,
# `structflow.utilities.debug.raise_on_exception()` and
# `structflow.utilities.configuration.set_temporary_config()`, as `import
# prefect` was for Prefect 1's.
from structflow.utilities import configuration, debug, edges, logging

__all__ = ["configuration", "debug", "edges", "logging"]
