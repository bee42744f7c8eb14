"""The routes of the wire API v1 (docs/api.md), one ``APIRouter`` per resource, all
under ``/v1``: :mod:`.health`, :mod:`.auth`, :mod:`.conversations`, :mod:`.messages`,
:mod:`.replies`, :mod:`.sync`, :mod:`.models`, :mod:`.users`. Shared dependencies are in
:mod:`.context`."""

from __future__ import annotations

from fastapi import APIRouter

from chat_tui.server.routes import (
    auth,
    conversations,
    health,
    messages,
    models,
    replies,
    sync,
    users,
)
from chat_tui.wire.limits import API_PREFIX


def api_router() -> APIRouter:
    """Every route of the API, under ``/v1``."""
    router = APIRouter(prefix=API_PREFIX)
    for module in (health, auth, users, conversations, messages, replies, sync, models):
        router.include_router(module.router)
    return router
