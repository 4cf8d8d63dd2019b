"""
Integrations with other logging libraries.

* :mod:`structflow.integrations.structlog`: structlog's own loggers produce
  structflow records (run context, renderers, shipping).

Importing this package imports none of them; each module imports its library.
"""
