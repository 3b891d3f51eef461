"""`ganforge`, the command line, against a real stack with API keys: every command run as a subprocess,
its output, files and exit status checked. One tiny conditional digits model serves the commands that
need one."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from app.api_keys import new_key
from tests.archives import labelled_zip
from tests.conftest import free_port
from tests.integration.cli import Cli
from tests.integration.conftest import Stack, running_stack
from workers.shared.contract import TrainingSpec

ADMIN_KEY, ADMIN_ENTRY = new_key("admin")
USER_KEY, USER_ENTRY = new_key("user")
TINY = ("--latent-dim", "16", "--base-channels", "8", "--batch-size", "8")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from running_stack(tmp_path_factory, "cli", {"GANFORGE_API_KEYS": f"{ADMIN_ENTRY},{USER_ENTRY}"})


@pytest.fixture(scope="module")
def cli(stack: Stack) -> Cli:
    """`ganforge` as an admin of the stack, told where it is by the environment."""
    return Cli({**stack.env, "GANFORGE_URL": stack.url, "GANFORGE_API_KEY": ADMIN_KEY})


@pytest.fixture(scope="module")
def model(cli: Cli) -> str:
    """A conditional digits model trained for a few steps with `train --watch`; its id."""
    job = cli.json(
        "train",
        "--dataset",
        "digits",
        "--conditional",
        "--steps",
        "30",
        "--encoder-steps",
        "20",
        *TINY,
        "--watch",
    )
    assert job["status"] == "completed" and job["step"] == 30
    assert job["spec"]["conditional"] is True and job["spec"]["latent_dim"] == 16
    return job["model_id"]


def picture(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image


def test_train_watch_shows_a_progress_bar_and_ends_completed(cli: Cli, model: str) -> None:
    job_id = "tj_" + model.removeprefix("m_")
    watched = cli.ok("watch", job_id)
    assert watched.stdout.strip() == f"{job_id}: completed"
    assert "30/30" in watched.stderr  # the bar, on stderr
    shown = cli.ok("jobs", "show", job_id)
    assert f"{job_id}  model {model}  completed  30/30" in shown.stdout
    listed = cli.json("jobs")["training_jobs"]
    assert job_id in [job["id"] for job in listed]
    assert job_id in cli.ok("jobs", "ls").stdout


def test_a_canceled_job_exits_1_and_a_refused_request_exits_3(cli: Cli) -> None:
    spec = ("--dataset", "digits", "--steps", "100000", *TINY, "--name", "to cancel", "--betas", "0.4", "0.9")
    started = cli.json("train", *spec, "--augment", "translation,cutout", "--idempotency-key", "once")
    assert started["status"] == "queued" and started["name"] == "to cancel"
    assert started["spec"]["betas"] == [0.4, 0.9] and started["spec"]["augment"] == "translation,cutout"
    retried = cli.json("train", *spec, "--augment", "translation,cutout", "--idempotency-key", "once")
    assert retried["id"] == started["id"]  # the same key: the same job
    canceled = cli.json("jobs", "cancel", started["id"])
    assert canceled["id"] == started["id"]
    watched = cli("watch", started["id"])
    assert watched.returncode == 1 and watched.stdout.strip() == f"{started['id']}: canceled"
    again = cli("jobs", "cancel", started["id"])
    assert again.returncode == 3 and "409" in again.stderr and "already canceled" in again.stderr
    assert cli("jobs", "resume", started["id"]).returncode == 0
    cli.ok("jobs", "cancel", started["id"])


def test_every_training_spec_field_is_an_option_of_train(cli: Cli) -> None:
    described = Cli({**cli.env, "COLUMNS": "300"}).ok("train", "--help").stdout
    for field in TrainingSpec.model_fields:
        option = "--dataset" if field == "dataset_id" else "--" + field.replace("_", "-")
        assert f" {option} " in described, option


def test_a_bad_spec_field_is_named_and_exits_3(cli: Cli) -> None:
    refused = cli("train", "--dataset", "digits", "--steps", "0")
    assert refused.returncode == 3
    assert "422" in refused.stderr and "body.steps" in refused.stderr
    unknown = cli("train", "--dataset", "no_such_set")
    assert unknown.returncode == 3 and "404" in unknown.stderr


def test_datasets_upload_list_show_preview_and_delete(cli: Cli, tmp_path: Path) -> None:
    archive = tmp_path / "pets.zip"
    archive.write_bytes(labelled_zip())
    uploaded = cli.ok("datasets", "upload", str(archive), "--labels", "folders", "--image-size", "32")
    assert "uploading pets.zip" in uploaded.stderr  # the upload's progress bar
    assert "12 images, 32 px" in uploaded.stdout and "cats: 6" in uploaded.stdout
    dataset = next(d for d in cli.json("datasets", "ls")["datasets"] if d["name"] == "pets.zip")
    assert dataset["class_counts"] == {"cats": 6, "dogs": 6}
    assert dataset["id"] in cli.ok("datasets", "ls").stdout
    assert cli.json("datasets", "show", dataset["id"])["count"] == 12
    cli.ok("datasets", "preview", dataset["id"], "-o", str(tmp_path / "preview.png"))
    assert picture(tmp_path / "preview.png").width > 32

    cli.ok("datasets", "rm", dataset["id"])
    gone = cli("datasets", "show", dataset["id"])
    assert gone.returncode == 3 and "404" in gone.stderr


def test_models_list_show_and_delete(cli: Cli, model: str) -> None:
    assert model in [m["id"] for m in cli.json("models", "ls")["models"]]
    assert model in cli.ok("models", "ls").stdout
    shown = cli.json("models", "show", model)
    assert shown["labels"] == [str(digit) for digit in range(10)] and shown["checkpoints"] == [30]
    assert "labels: 0, 1, 2" in cli.ok("models", "show", model).stdout
    missing = cli("models", "rm", "m_000000000000")
    assert missing.returncode == 3 and "404" in missing.stderr


def test_generate_writes_a_grid_and_says_its_seeds(cli: Cli, model: str, tmp_path: Path) -> None:
    first = tmp_path / "sevens.png"
    done = cli.ok("generate", model, "-n", "4", "--seed", "7", "--label", "7", "-o", str(first))
    assert "seeds 7,8,9,10" in done.stderr and "checkpoint 30" in done.stderr
    assert picture(first).width > 2 * 32  # a 2×2 grid of 32 px digits
    again = tmp_path / "again.png"
    cli.ok(
        "generate", model, "-n", "4", "--seed", "7", "--label", "7", "-o", str(again), "--checkpoint", "30"
    )
    assert again.read_bytes() == first.read_bytes()

    answer = cli.json("generate", model, "--seeds", "3,5", "--labels", "1,2")
    assert [(image["seed"], image["label"]) for image in answer["images"]] == [(3, "1"), (5, "2")]
    refused = cli("generate", model, "--label", "cat", "-o", str(tmp_path / "x.png"))
    assert refused.returncode == 3 and "body.label" in refused.stderr
    assert cli("generate", model).returncode == 2  # neither -o nor --json
    piped = cli("generate", model, "--seed", "7", "--label", "7", "-o", "-", text=False)
    assert piped.returncode == 0 and piped.stdout.startswith(b"\x89PNG")


def test_a_job_that_answered_202_is_followed_by_id(cli: Cli, model: str, tmp_path: Path) -> None:
    queued = cli.json("generate", model, "--seed", "1", "--label", "4", "--no-wait")
    assert queued["status"] == "queued" and queued["location"] == f"/v1/jobs/{queued['id']}"
    watched = cli.ok("watch", queued["id"])
    assert watched.stdout.strip() == f"{queued['id']}: finished"
    assert cli.json("jobs", "show", queued["id"])["kind"] == "generate"
    result = cli.ok("jobs", "result", queued["id"])
    assert '"seed": 1' in result.stdout and '"label": "4"' in result.stdout

    picture_job = cli.ok("generate", model, "--seed", "1", "--label", "4", "--no-wait").stdout.split()[0]
    cli.ok("watch", picture_job)
    assert cli("jobs", "result", picture_job).returncode == 2  # a picture needs -o
    cli.ok("jobs", "result", picture_job, "-o", str(tmp_path / "later.png"))
    assert picture(tmp_path / "later.png").size == (32, 32)


def test_named_latents_arithmetic_and_interpolation(cli: Cli, model: str, tmp_path: Path) -> None:
    cli.ok("latents", "save", model, "a", "1")
    cli.ok("latents", "save", model, "b", "2")
    cli.ok("latents", "save", model, "c", "3,4")
    assert sorted(record["name"] for record in cli.json("latents", "ls", model)["latents"]) == ["a", "b", "c"]
    assert cli.json("latents", "show", model, "c")["latent"] == {"seeds": [3, 4]}

    done = cli.ok(
        "arithmetic", model, "a - b + c", "--variations", "2", "--label", "5", "-o", str(tmp_path / "sum.png")
    )
    assert "images 3" in done.stderr
    result = cli.json("arithmetic", model, "a - b + 0.5*c", "--label", "5")
    assert len(result["latent"]) == 16
    bad = cli("arithmetic", model, "a - nobody", "--label", "5", "-o", str(tmp_path / "bad.png"))
    assert bad.returncode == 3 and "nobody" in bad.stderr

    walk = tmp_path / "walk.gif"
    done = cli.ok("interpolate", model, "a", "5", "c", "--steps", "2", "--label", "3", "-o", str(walk))
    assert "frames 7" in done.stderr  # 3 keys + 2 × 2 between
    with Image.open(walk) as animation:
        assert animation.format == "GIF" and animation.n_frames == 7

    cli.ok("latents", "rm", model, "c")
    assert cli("latents", "show", model, "c").returncode == 3


def test_invert_and_transform_an_image(cli: Cli, model: str, tmp_path: Path) -> None:
    digit = tmp_path / "three.png"
    cli.ok("generate", model, "--seed", "11", "--label", "3", "-o", str(digit))
    inverted = cli.json("invert", model, str(digit), "--label", "3", "--steps", "5", "--save-as", "three")
    assert inverted["saved_as"] == "three" and inverted["mse"] >= 0 and len(inverted["latent"]) == 16
    taken = cli("invert", model, str(digit), "--label", "3", "--steps", "5", "--save-as", "three", "--json")
    assert taken.returncode == 3 and '"detail"' in taken.stderr  # --json: the API's error as it is
    cli.ok(
        "invert",
        model,
        str(digit),
        "--label",
        "3",
        "--steps",
        "5",
        "--save-as",
        "three",
        "--replace",
        "-o",
        str(tmp_path / "pair.png"),
    )
    assert picture(tmp_path / "pair.png").width > 32

    strip = tmp_path / "strip.png"
    done = cli.ok(
        "transform",
        model,
        str(digit),
        "--source-label",
        "3",
        "--targets",
        "1,8",
        "--optimise-steps",
        "5",
        "-o",
        str(strip),
    )
    assert "targets 1,8" in done.stderr and picture(strip).width > 2 * 32
    from_latent = cli.json("transform", model, "--latent", "three", "--source-label", "3", "--targets", "2")
    assert [image["label"] for image in from_latent["images"]] == ["2"]


def test_evaluate_waits_for_its_figures(cli: Cli, tmp_path: Path) -> None:
    """On a model of a dozen images: FID's reference features are computed from the training set."""
    archive = tmp_path / "few.zip"
    archive.write_bytes(labelled_zip())
    dataset = cli.json("datasets", "upload", str(archive), "--image-size", "32")
    trained = cli.json(
        "train", "--dataset", dataset["id"], "--steps", "4", "--encoder-steps", "0", *TINY, "--watch"
    )
    model = trained["model_id"]

    row = cli.json("evaluate", model, "--checkpoint", "4", "--samples", "10", "--metrics", "fid", "--wait")
    assert row["step"] == 4 and row["samples"] == 10 and row["fid"] > 0
    queued = cli.ok("evaluate", model, "--samples", "10", "--metrics", "kid")
    job_id = queued.stdout.split()[0]
    assert cli.ok("watch", job_id).stdout.strip() == f"{job_id}: finished"
    assert cli.json("models", "show", model)["latest_evaluation"]["kid"] is not None

    cli.ok("models", "rm", model)
    assert cli("models", "show", model).returncode == 3


def test_keys_and_connection_options(cli: Cli, stack: Stack) -> None:
    made = cli.json("keys", "new", "--role", "admin")
    assert made["entry"] == f"admin:{hashlib.sha256(made['key'].encode()).hexdigest()}"
    assert "entry for GANFORGE_API_KEYS" in cli.ok("new-key", "--role", "user").stdout  # the old name

    anonymous = Cli({**cli.env, "GANFORGE_API_KEY": ""})
    refused = anonymous("models", "ls")
    assert refused.returncode == 3 and "401" in refused.stderr
    assert anonymous("--key", USER_KEY, "models", "ls").returncode == 0  # before the command
    assert anonymous("models", "ls", "--key", USER_KEY).returncode == 0  # or after it
    forbidden = anonymous("datasets", "ls", "--key", USER_KEY)  # datasets are for admins
    assert forbidden.returncode == 3 and "403" in forbidden.stderr
    assert cli.json("models", "ls") == cli.json("--json", "models", "ls")

    nowhere = cli("models", "ls", "--url", f"http://127.0.0.1:{free_port()}")
    assert nowhere.returncode == 4 and "cannot reach" in nowhere.stderr
    assert cli("models", "ls", "--no-such-option").returncode == 2
