"""The model list route (docs/api.md): ``GET /v1/models``, the models the server's
assistant offers, from its providers' ``GET /models`` (cached by
:class:`chat_tui.server.assistant_models.ModelCatalog`)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from chat_tui.server.routes.context import Caller, Context, errors, json_response
from chat_tui.wire.models import ModelList

router = APIRouter(tags=["models"])


@router.get("/models", response_model=ModelList, responses=errors(401))
async def list_models(p: Caller, ctx: Context) -> Response:
    """The models the server offers, the default flagged; providers that failed are in
    ``problems`` (200 even when every provider failed)."""
    del p  # any signed-in user may list them
    return json_response(await ctx.assistant.catalog.listing())
