"""The picture routes' two forms: the PNG itself, or with `?format=json` the PNG base64-encoded in a JSON
document (`PngImage`), for clients that cannot take a binary body (many generated ones)."""

from __future__ import annotations

import base64
from enum import Enum
from pathlib import Path
from typing import Annotated

from fastapi import Query
from fastapi.responses import FileResponse, JSONResponse, Response

from app.responses import picture
from app.schemas import PngImage


class PictureForm(str, Enum):
    """How a picture route answers: `png`, the picture; `json`, a `PngImage` document."""

    png = "png"
    json = "json"


PictureFormat = Annotated[PictureForm, Query(description='png: the picture; json: `{"png_base64": …}`.')]

PNG_OR_JSON = picture(PngImage, "A PNG; with `format=json`, the PNG base64-encoded in JSON.")


def png_answer(png: bytes, format: PictureForm) -> Response:
    if format == PictureForm.json:
        return JSONResponse(PngImage(png_base64=base64.b64encode(png).decode()).model_dump())
    return Response(png, media_type="image/png")


def png_file_answer(path: Path, format: PictureForm) -> Response:
    """The PNG at `path`: streamed from the file, or read whole for its JSON form."""
    if format == PictureForm.json:
        return png_answer(path.read_bytes(), format)
    return FileResponse(path, media_type="image/png")
