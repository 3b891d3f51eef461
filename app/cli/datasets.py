"""`ganforge datasets`: upload an archive (with a progress bar), list, show, preview, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from app.cli.client import Api, given, print_json, stderr, stdout, write_output

app = typer.Typer(help="Image archives to train on, and the built-in ones.", no_args_is_help=True)


@app.command()
def upload(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A .zip, .tar or .tar.gz.")],
    name: Annotated[str | None, typer.Option(help="Default: the archive's file name.")] = None,
    image_size: Annotated[int | None, typer.Option(help="32, 64 or 128. Default: 64.")] = None,
    channels: Annotated[int | None, typer.Option(help="1 (grey) or 3 (RGB). Default: 3.")] = None,
    labels: Annotated[
        Literal["none", "folders", "csv", "utkface"] | None,
        typer.Option(help="Where labels come from: none, sub-folders, labels.csv, UTKFace names."),
    ] = None,
    age_bins: Annotated[
        str | None, typer.Option(help="Lower edges of the age groups, comma-separated (utkface, csv).")
    ] = None,
) -> None:
    """Upload an archive of images; prints the new dataset."""
    api = Api.current()
    fields = given(name=name, image_size=image_size, channels=channels, labels=labels, age_bins=age_bins)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with (
        Progress(*columns, console=stderr) as bar,
        bar.open(path, "rb", description=f"uploading {path.name}") as file,
    ):
        dataset = api.post("/v1/datasets", files={"file": (path.name, file)}, data=fields).json()
    _show(dataset, api.json)


@app.command("ls")
def list_datasets() -> None:
    """List datasets."""
    api = Api.current()
    answer = api.get("/v1/datasets").json()
    if api.json:
        print_json(answer)
        return
    table = Table("id", "name", "images", "size", "classes", box=None)
    for dataset in answer["datasets"]:
        table.add_row(
            dataset["id"],
            dataset["name"],
            str(dataset["count"]),
            f"{dataset['image_size']}px×{dataset['channels']}",
            str(len(dataset["classes"])),
        )
    stdout.print(table)


@app.command()
def show(dataset_id: Annotated[str, typer.Argument(help="A dataset id.")]) -> None:
    """A dataset's statistics: count, classes, skipped files."""
    api = Api.current()
    _show(api.get(f"/v1/datasets/{dataset_id}").json(), api.json)


@app.command()
def preview(
    dataset_id: Annotated[str, typer.Argument(help="A dataset id.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The PNG to write; - for stdout.")],
) -> None:
    """Write a grid of the dataset's examples."""
    write_output(output, Api.current().get(f"/v1/datasets/{dataset_id}/preview.png").content)


@app.command("rm")
def remove(dataset_id: Annotated[str, typer.Argument(help="A dataset id.")]) -> None:
    """Delete a dataset (refused while a training job needs it)."""
    Api.current().delete(f"/v1/datasets/{dataset_id}")
    typer.echo(f"deleted {dataset_id}", err=True)


def _show(dataset: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(dataset)
        return
    typer.echo(f"{dataset['id']}  {dataset['name']}")
    typer.echo(
        f"{dataset['count']} images, {dataset['image_size']} px, {dataset['channels']} channel(s), "
        f"labels: {dataset['labels']}"
    )
    for label, count in dataset["class_counts"].items():
        typer.echo(f"  {label}: {count}")
    for skipped in dataset["skipped"]:
        typer.echo(f"  skipped {skipped['path']}: {skipped['reason']}")
