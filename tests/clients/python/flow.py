"""ganforge's main flow through the client that openapi-python-client generates from its /openapi.json
(the package `ganforge_client`, on PYTHONPATH): upload the demo archive, train a tiny conditional model
and follow it, generate as JSON and decode the PNG, save named latents, run an arithmetic expression,
transform an image. tests/integration/test_generated_clients.py generates the client and runs this:

    python tests/clients/python/flow.py BASE_URL ARCHIVE.zip IMAGE.png

Prints one JSON line of what it saw; fails on any unexpected answer. The generated package is imported
inside `main`, so that this module imports without it.
"""

from __future__ import annotations

import base64
import json
import struct
import sys
import time
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def expect(answer: Any, kind: type[T], what: str) -> T:
    """`answer` if it is a `kind`; else (an ErrorDetail, an Accepted, None) fail, saying what came."""
    if not isinstance(answer, kind):
        raise AssertionError(f"{what}: expected {kind.__name__}, got {answer!r}")
    return answer


def png_size(png_base64: str) -> list[int]:
    """The width and height of a PNG, from its IHDR chunk; fails on anything that is not a PNG."""
    png = base64.b64decode(png_base64)
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return list(struct.unpack(">II", png[16:24]))


def main(base_url: str, archive: Path, image: Path) -> dict[str, Any]:
    import httpx
    from ganforge_client import Client
    from ganforge_client.api.datasets import datasets_upload
    from ganforge_client.api.latent_space import latents_arithmetic, latents_save, latents_transform
    from ganforge_client.api.models import models_generate
    from ganforge_client.api.training import training_jobs_get, training_jobs_start
    from ganforge_client.models import (
        ArithmeticRequest,
        ArithmeticRequestFormat,
        ArithmeticResult,
        Dataset,
        DatasetUpload,
        DatasetUploadLabels,
        GeneratedImages,
        GenerateRequest,
        GenerateRequestFormat,
        NamedLatentRecord,
        SaveLatentRequest,
        SeedLatent,
        SeedsLatent,
        TrainingJob,
        TrainingSpec,
        Transformation,
        TransformRequest,
        TransformRequestFormat,
    )
    from ganforge_client.types import File

    client = Client(base_url=base_url, timeout=httpx.Timeout(120))
    with archive.open("rb") as payload:
        upload = DatasetUpload(
            file=File(payload=payload, file_name="shapes.zip"),
            name="shapes",
            labels=DatasetUploadLabels.FOLDERS,
            image_size=32,
        )
        dataset = expect(datasets_upload.sync(client=client, body=upload), Dataset, "datasets-upload")

    spec = TrainingSpec(
        dataset_id=dataset.id,
        conditional=True,
        steps=20,
        batch_size=16,
        latent_dim=16,
        base_channels=8,
        encoder_steps=20,
        eval_every=0,
    )
    started = training_jobs_start.sync_detailed(client=client, body=spec)
    job = expect(started.parsed, TrainingJob, "training-jobs-start")
    while job.status.value in ("queued", "running"):
        time.sleep(0.2)
        job = expect(training_jobs_get.sync(job.id, client=client), TrainingJob, "training-jobs-get")
    assert job.status.value == "completed", job.error
    model_id = job.model_id

    request = GenerateRequest(n=2, seed=7, label="circles", format_=GenerateRequestFormat.JSON)
    generated = models_generate.sync_detailed(model_id, client=client, body=request)
    images = expect(generated.parsed, GeneratedImages, "models-generate")

    for latent in (
        SaveLatentRequest("circle", SeedLatent(1)),
        SaveLatentRequest("square", SeedsLatent([2, 3])),
    ):
        saved = latents_save.sync(model_id, client=client, body=latent)
        expect(saved, NamedLatentRecord, "latents-save")

    expression = ArithmeticRequest(
        expression="circle - square + 0.5*circle",
        label="squares",
        variations=2,
        format_=ArithmeticRequestFormat.JSON,
    )
    arithmetic = expect(
        latents_arithmetic.sync(model_id, client=client, body=expression),
        ArithmeticResult,
        "latents-arithmetic",
    )

    with image.open("rb") as payload:
        request = TransformRequest(
            source_label="circles",
            image=File(payload=payload, file_name="circle.png"),
            target_labels="circles,squares",
            optimise_steps=10,
            format_=TransformRequestFormat.JSON,
        )
        transformed = latents_transform.sync(model_id, client=client, body=request)
    transform = expect(transformed, Transformation, "latents-transform")

    return {
        "dataset": {"count": dataset.count, "classes": dataset.classes},
        "training": {
            "status": job.status.value,
            "step": job.step,
            "location": started.headers.get("Location"),
        },
        "generate": {
            "seeds": generated.headers.get("X-Seeds"),
            "labels": [image.label for image in images.images],
            "size": png_size(images.images[0].png_base64),
        },
        "arithmetic": {"latent": len(arithmetic.latent), "variations": len(arithmetic.variations)},
        "transform": {
            "labels": [image.label for image in transform.images],
            "size": png_size(transform.images[1].png_base64),
            "mse": transform.mse,
        },
    }


if __name__ == "__main__":
    base, archive_path, image_path = sys.argv[1:]
    print(json.dumps(main(base, Path(archive_path), Path(image_path))))
