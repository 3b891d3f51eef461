"""What the picture commands share (generate, interpolate, arithmetic, invert, transform): their common
options, the latent and checkpoint syntax, and the request that may answer 202 instead of the picture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from app.cli.client import Api, print_json, write_output
from app.cli.progress import announce, follow_job, require_success

Output = Annotated[
    Path | None,
    typer.Option("-o", "--output", help="The picture to write (.png, or .gif where offered); - for stdout."),
]
Wait = Annotated[
    bool,
    typer.Option(help="Wait for the picture; --no-wait prints the queued job (`Prefer: respond-async`)."),
]
Checkpoint = Annotated[str | None, typer.Option(help="A step, `newest` or `best`. Default: newest.")]
Truncation = Annotated[float | None, typer.Option(help="ψ in (0, 1]: latents scaled toward the mean.")]
# Headers that say what a picture is (seeds, checkpoint, frames, …), shown after writing it.
DESCRIBING_HEADERS = ("x-seeds", "x-checkpoint", "x-frames", "x-images", "x-reconstruction-mse", "x-targets")


def checkpoint_ref(text: str | None) -> int | str | None:
    """`--checkpoint 300` is a step; `newest` and `best` are names."""
    return int(text) if text is not None and text.isdigit() else text


def latent_ref(text: str) -> dict[str, Any]:
    """A latent from the command line: `7` is seed 7, `1,2,3` the mean of those seeds, `[0.1, …]` a vector,
    anything else a named latent."""
    if text.isdigit():
        return {"seed": int(text)}
    if text.startswith("["):
        try:
            return {"vector": json.loads(text)}
        except ValueError as error:
            raise typer.BadParameter(f"{text[:40]!r} is not a JSON list of numbers") from error
    parts = text.split(",")
    if len(parts) > 1 and all(part.strip().isdigit() for part in parts):
        return {"seeds": [int(part) for part in parts]}
    return {"name": text}


def split(text: str | None) -> list[str] | None:
    """A comma-separated option as a list."""
    return [part.strip() for part in text.split(",")] if text is not None else None


def split_ints(text: str | None) -> list[int] | None:
    """A comma-separated option of integers as a list."""
    parts = split(text)
    if parts is not None and not all(part.isdigit() for part in parts):
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of whole numbers")
    return [int(part) for part in parts] if parts is not None else None


def picture_format(output: Path | None, api: Api, wait: bool) -> str:
    """`json` with --json; else the picture `-o` names: gif for a .gif, png otherwise. Waiting for a
    picture needs somewhere to put it."""
    if api.json and output is not None:
        raise typer.BadParameter("give either -o (the picture) or --json (the API's JSON), not both")
    if output is None and wait and not api.json:
        raise typer.BadParameter("give -o FILE for the picture, or --json for the API's JSON")
    if api.json:
        return "json"
    return "gif" if output is not None and output.suffix.lower() == ".gif" else "png"


def request_picture(api: Api, path: str, wait: bool, **request: Any) -> httpx.Response | None:
    """POST a picture request. The API waits a while for the picture, then answers 202 with a job: with
    `wait`, the job is followed to its end and its result fetched; without, the job is printed and None
    returned."""
    answer = api.post(path, headers={} if wait else {"Prefer": "respond-async"}, **request)
    if answer.status_code != 202:
        return answer
    job_id = answer.json()["id"]
    if not wait:
        announce(answer.json(), api.json)
        return None
    require_success(follow_job(api, job_id))
    return api.get(f"/v1/jobs/{job_id}/result")


def save_picture(api: Api, answer: httpx.Response | None, output: Path | None) -> None:
    """The answer's JSON on stdout with --json, else its picture to `output`, with what describes it."""
    if answer is None:
        return
    if api.json:
        print_json(answer.json())
        return
    assert output is not None  # picture_format refused the command line otherwise
    write_output(output, answer.content)
    described = [
        f"{name.removeprefix('x-')} {answer.headers[name]}"
        for name in DESCRIBING_HEADERS
        if name in answer.headers
    ]
    if described:
        typer.echo(", ".join(described), err=True)
