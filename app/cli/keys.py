"""`ganforge keys new`: make an API key and its GANFORGE_API_KEYS entry (offline: nothing is sent)."""

from __future__ import annotations

from typing import Annotated

import typer

from app.api_keys import Role, new_key
from app.cli.client import json_output, print_json

app = typer.Typer(help="API keys.", no_args_is_help=True)

RoleOption = Annotated[Role, typer.Option(help="admin may do everything; user may use models.")]


@app.command("new")
def new(role: RoleOption = "user") -> None:
    """Print a new key (give it to the client; it is not stored) and the entry for GANFORGE_API_KEYS."""
    key, entry = new_key(role)
    if json_output():
        print_json({"key": key, "role": role, "entry": entry})
        return
    typer.echo(f"key (give it to the client; it is not stored): {key}")
    typer.echo(f"entry for GANFORGE_API_KEYS (comma-separate several): {entry}")
