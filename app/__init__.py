"""The ganforge API (FastAPI). Torch-free: it queues work for the workers and never runs a model."""

__version__ = "0.2.0.dev0"
"""ganforge's version, the one source of it: pyproject.toml reads it from here, and it is the API's
`info.version`. An editable install's metadata keeps the version it was installed with, so the API
does not read it from there."""
