"""The reference for bench/serve.py: a hand-rolled FastAPI endpoint that runs the generator in-process,
one request at a time, as one would write it without a queue. `HANDROLLED_CHECKPOINT` names the file."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from fastapi import FastAPI
from fastapi.responses import Response
from pydantic import BaseModel

from models.sampling import generate, latent_for_seed
from models.training import load_generator
from workers.shared.imaging import png_bytes

checkpoint = torch.load(Path(os.environ["HANDROLLED_CHECKPOINT"]), map_location="cpu", weights_only=True)
generator = load_generator(checkpoint)
app = FastAPI()


class Request(BaseModel):
    seed: int = 0


@app.post("/generate")
def generate_one(request: Request) -> Response:
    latent = latent_for_seed(request.seed, generator.spec.latent_dim)[None]
    return Response(png_bytes(generate(generator, latent)[0]), media_type="image/png")
