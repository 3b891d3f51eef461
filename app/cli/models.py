"""`ganforge models`: the registry of trained models: list, show, delete."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from app.cli.client import Api, print_json, stdout

app = typer.Typer(help="Trained models: list, show, delete.", no_args_is_help=True)

ModelId = Annotated[str, typer.Argument(help="A model id (m_…).")]


@app.command("ls")
def list_models() -> None:
    """List models."""
    api = Api.current()
    answer = api.get("/v1/models").json()
    if api.json:
        print_json(answer)
        return
    table = Table("id", "name", "status", "dataset", "size", "labels", "checkpoints", box=None)
    for model in answer["models"]:
        table.add_row(
            model["id"],
            model["name"],
            model["status"],
            model["dataset_id"],
            f"{model['image_size']}px",
            ",".join(model["labels"]) or "-",
            ",".join(map(str, model["checkpoints"])) or "-",
        )
    stdout.print(table)


@app.command()
def show(model_id: ModelId) -> None:
    """A model's spec, labels, checkpoints and latest figures."""
    api = Api.current()
    model = api.get(f"/v1/models/{model_id}").json()
    if api.json:
        print_json(model)
        return
    _describe(model)


@app.command("rm")
def remove(model_id: ModelId) -> None:
    """Delete a model and its files (refused while it trains: cancel its job first)."""
    Api.current().delete(f"/v1/models/{model_id}")
    typer.echo(f"deleted {model_id}", err=True)


def _describe(model: dict[str, Any]) -> None:
    kind = "conditional" if model["conditional"] else "unconditional"
    typer.echo(f"{model['id']}  {model['name']}  ({model['status']})")
    typer.echo(
        f"{kind} {model['spec']['architecture']}, {model['image_size']} px × {model['channels']}, "
        f"latent {model['latent_dim']}, trained on {model['dataset_id']} by {model['training_job_id']}"
    )
    if model["labels"]:
        typer.echo(f"labels: {', '.join(model['labels'])}")
    typer.echo(f"checkpoints: {', '.join(map(str, model['checkpoints'])) or 'none yet'}")
    if model.get("best_checkpoint") is not None:
        typer.echo(f"best checkpoint (FID): {model['best_checkpoint']}")
    if model.get("latest_metrics"):
        figures = ", ".join(f"{name} {value:.4g}" for name, value in model["latest_metrics"].items())
        typer.echo(f"latest: {figures}")
