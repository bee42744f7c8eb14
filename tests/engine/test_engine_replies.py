"""The engine's calls that need the server and are never queued (docs/engine.md): the
model list (kept in the cache for an offline choice) and stopping a streaming reply;
offline, or while working offline, each raises ``TransientError`` saying so and writes
nothing. Real server process, real cache."""

from __future__ import annotations

import json
import uuid

import pytest

from chat_tui.api import PermanentError, TransientError


async def test_list_models_is_kept_in_the_cache(login_account, engines):
    engine = engines.make(login_account("alice"))
    await engine.start()
    listing = await engine.list_models()
    assert [m.id for m in listing.models] == ["echo"] and listing.default == "echo"
    text, saved_at = engine.store.saved_model_list()
    assert json.loads(text)["default"] == "echo" and saved_at.endswith("Z")


async def test_offline_and_unknown_replies_are_refused_clearly(login_account, engines):
    engine = engines.make(login_account("alice"))
    await engine.start()
    with pytest.raises(PermanentError) as refused:
        await engine.stop_reply(str(uuid.uuid4()))
    assert refused.value.status == 404
    engine.set_work_offline(True)
    with pytest.raises(TransientError, match="working offline: stopping a reply"):
        await engine.stop_reply(str(uuid.uuid4()))
    with pytest.raises(TransientError, match="working offline: listing the models"):
        await engine.list_models()
    assert engine.store.saved_model_list() is None
