"""The studio: a single page that drives the whole API from a browser (docs/studio.md), and
`GET /v1/whoami`, which tells a page what its key may do.

The page's files live in app/studio/ and are plain ES modules and one style sheet: no build step, no
CDN. They hold no data, so they are served without a key (the page asks for one when the API answers
401); app.locality still refuses strangers when no keys are configured, as for every other route.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from app.responses import KEYED
from app.security import PrincipalDep

STUDIO_DIR = Path(__file__).resolve().parent.parent / "studio"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
# The page's own files change with the service: revalidated each time (ETag), never served stale.
REVALIDATE = "no-cache"

router = APIRouter()


class WhoAmI(BaseModel):
    role: str = Field(description="admin or user: what the presented key (or the local user) may do.")
    principal: str = Field(description='"local" with no keys configured, else the key\'s hash prefix.')


@router.get(
    "/v1/whoami",
    tags=["health"],
    summary="The role of the presented API key",
    operation_id="whoami",
    responses=KEYED,
)
def whoami(principal: PrincipalDep) -> WhoAmI:
    """The studio reads it to hide what a `user` key may not do (datasets, training, deletion)."""
    return WhoAmI(role=principal.role, principal=principal.id)


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse("/studio", status_code=307)


@router.get("/studio", include_in_schema=False)
def studio_page(request: Request) -> Response:
    return _serve(STUDIO_DIR / "index.html", request)


@router.get("/studio/{path:path}", include_in_schema=False)
def studio_file(path: str, request: Request) -> Response:
    if not path:
        return _serve(STUDIO_DIR / "index.html", request)
    file = (STUDIO_DIR / path).resolve()
    if not file.is_relative_to(STUDIO_DIR) or file.suffix not in MEDIA_TYPES or not file.is_file():
        raise HTTPException(404, f"the studio has no file {path[:100]!r}")
    return _serve(file, request)


def _serve(file: Path, request: Request) -> Response:
    stat = file.stat()
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
    headers = {"Cache-Control": REVALIDATE, "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return FileResponse(file, media_type=MEDIA_TYPES[file.suffix], headers=headers)
