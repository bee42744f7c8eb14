"""``GET /v1/health``: the reachability probe (docs/api.md)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from chat_tui.server import __version__
from chat_tui.server.routes.context import json_response
from chat_tui.wire.models import Health

router = APIRouter(tags=["meta"])


@router.get("/health", response_model=Health)
async def health() -> Response:
    """Reachability probe; no auth: ``{"status": "ok", "version": ...}``."""
    return json_response(Health.construct(status="ok", version=__version__))
