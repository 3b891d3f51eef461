"""`ganforge latents`: a model's named latents: list, show, save, delete."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from app.cli.client import Api, print_json, stdout
from app.cli.rendering import latent_ref

app = typer.Typer(help="A model's named latents: list, show, save, delete.", no_args_is_help=True)

ModelId = Annotated[str, typer.Argument(help="A model id (m_…).")]
Name = Annotated[str, typer.Argument(help="The latent's name ([a-z0-9_]{1,64}).")]


@app.command("ls")
def list_latents(model_id: ModelId) -> None:
    """List a model's named latents."""
    api = Api.current()
    answer = api.get(f"/v1/models/{model_id}/latents").json()
    if api.json:
        print_json(answer)
        return
    table = Table("name", "source", "created", box=None)
    for record in answer["latents"]:
        table.add_row(record["name"], record["source"], record["created_at"])
    stdout.print(table)


@app.command()
def show(model_id: ModelId, name: Name) -> None:
    """A named latent: how it was made (always as JSON)."""
    print_json(Api.current().get(f"/v1/models/{model_id}/latents/{name}").json())


@app.command()
def save(
    model_id: ModelId,
    name: Name,
    latent: Annotated[
        str, typer.Argument(help="A seed (7), seeds to average (1,2,3), a vector ([…]) or another name.")
    ],
) -> None:
    """Save a latent under a name, for arithmetic, interpolation and transform."""
    api = Api.current()
    record = api.post(f"/v1/models/{model_id}/latents", json={"name": name, "latent": latent_ref(latent)})
    if api.json:
        print_json(record.json())
    else:
        typer.echo(f"saved {name}")


@app.command("rm")
def remove(model_id: ModelId, name: Name) -> None:
    """Delete a named latent."""
    Api.current().delete(f"/v1/models/{model_id}/latents/{name}")
    typer.echo(f"deleted {name}", err=True)
