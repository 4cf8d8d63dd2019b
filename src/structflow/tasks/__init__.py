"""Import paths kept for code ported from Prefect 1 (``prefect.tasks.*``)."""
