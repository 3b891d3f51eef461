"""The `ganforge` command line: an HTTP client of the API, one module per resource (docs/cli.md)."""

from app.cli.root import main

__all__ = ["main"]
