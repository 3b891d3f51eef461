"""How the API answers when the store (GANFORGE_STORAGE_URL) cannot be reached or refuses its
credentials: 503 with `Retry-After`, naming the store, and nothing half-done (an upload is not kept)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from workers.shared.object_store import StoreUnavailable

log = logging.getLogger("ganforge.api")

STORE_RETRY_AFTER_SECONDS = 10


def install_store_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(request: Request, error: StoreUnavailable) -> JSONResponse:
        log.warning("the store failed %s: %s", request.url.path, error)
        return JSONResponse(
            {"detail": f"storage unavailable: {error}. Try again later."},
            status_code=503,
            headers={"Retry-After": str(STORE_RETRY_AFTER_SECONDS)},
        )
