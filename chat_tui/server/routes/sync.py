"""``GET /v1/sync``: the delta sync with its long-poll (docs/api.md).

A poll is held until another device's change (or the server's) arrives or ``timeout``
ends; the device's own changes do not answer it early (:mod:`chat_tui.server.notify`).
A poll reads the database only when another device may have changed something for it
(the notifier says so), and once more at its timeout; the read itself is
:meth:`chat_tui.server.data.sync.Sync.read`, whose conversations are shared by every
woken device.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from chat_tui.server.data.sync import empty_answer, parse_cursor
from chat_tui.server.routes.context import Caller, Context, errors, json_response
from chat_tui.wire.limits import MAX_SYNC_TIMEOUT
from chat_tui.wire.models import CURSOR_PATTERN, SyncResponse

router = APIRouter(tags=["sync"])


@router.get("/sync", response_model=SyncResponse, responses=errors(401, 410, 422))
async def sync(
    p: Caller,
    ctx: Context,
    since: Annotated[
        str | None,
        Query(
            description="the cursor of a previous answer (opaque; today decimal digits); "
            "one the server does not know answers 410",
            json_schema_extra={"pattern": CURSOR_PATTERN},
        ),
    ] = None,
    timeout: Annotated[
        float, Query(ge=0, le=MAX_SYNC_TIMEOUT, description="long-poll seconds")
    ] = 0,
) -> Response:
    """Delta sync with long-poll (docs/api.md, GET /v1/sync)."""
    since_n = parse_cursor(since) if since is not None else None
    notifier = ctx.notifier
    read = ctx.db.sync.read

    def answer(data: SyncResponse, seen: int) -> Response:
        notifier.answered(p.user_id, p.device_id, int(data.cursor), seen)
        return json_response(data)

    if since_n is None or timeout <= 0:
        _, seen = notifier.others_changed(p.user_id, p.device_id, since_n)
        return answer(await ctx.run(read, p, since_n), seen)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    data = None
    while True:
        event = notifier.subscribe(p.user_id, p.device_id)
        try:
            # Asked before the read: a change committed after it is marked again.
            others, seen = notifier.others_changed(p.user_id, p.device_id, since_n)
            # Nothing changed, or only by this device itself (it has its own changes
            # from its requests' answers): hold until another device's change. When
            # only this device can have changed anything, there is nothing to read yet
            # (``data`` None: read at the end of the wait).
            data = await ctx.run(read, p, since_n) if others else None
            if data is not None and (data.conversations or data.read_markers):
                return answer(data, seen)
            remaining = deadline - loop.time()
            if remaining <= 0 or notifier.closed:
                break
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                break
        finally:
            notifier.release(p.user_id, p.device_id)
    own = notifier.own_changed(p.user_id, p.device_id)
    if not notifier.closed and (data is None or own):
        data = await ctx.run(read, p, since_n)  # its own changes, from before or while held
    if data is not None and (data.conversations or data.read_markers):
        return answer(data, seen)  # the device's own changes, at the end of the wait
    return answer(empty_answer(since_n), seen)
