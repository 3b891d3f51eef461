"""The `ganforge` command: its groups and commands, and `main`, the console script."""

from __future__ import annotations

import typer

from app.cli import datasets, keys, latents, models
from app.cli.client import add_connection_options
from app.cli.exports import export
from app.cli.generate import generate
from app.cli.latent_space import arithmetic, interpolate, invert, transform
from app.cli.quality import evaluate
from app.cli.training import jobs, train, watch

app = typer.Typer(
    name="ganforge",
    help="Train GANs and generate from them, over the ganforge API (docs/cli.md).",
    no_args_is_help=True,
    add_completion=False,
)
TRAINING, MODELS, LATENT_SPACE = "Data and training", "Models", "Latent space"
app.add_typer(datasets.app, name="datasets", rich_help_panel=TRAINING)
app.command(rich_help_panel=TRAINING)(train)
app.command(rich_help_panel=TRAINING)(watch)
app.add_typer(jobs, name="jobs", rich_help_panel=TRAINING)
app.add_typer(models.app, name="models", rich_help_panel=MODELS)
for command in (generate, evaluate, export):
    app.command(rich_help_panel=MODELS)(command)
app.add_typer(latents.app, name="latents", rich_help_panel=LATENT_SPACE)
for command in (arithmetic, interpolate, invert, transform):
    app.command(rich_help_panel=LATENT_SPACE)(command)
app.add_typer(keys.app, name="keys")
app.command("new-key", hidden=True, help="The same as `keys new`.")(keys.new)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; the exit status (docs/cli.md)."""
    command = typer.main.get_command(app)
    add_connection_options(command)
    return command.main(args=argv, prog_name="ganforge")
