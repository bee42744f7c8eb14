"""``chat_tui.api.detect``: a chat-tui server, a Matrix homeserver found by
``/_matrix/client/versions`` or by ``.well-known``, neither, nothing (``chat-tui login`` on
a Matrix homeserver: ``tests/matrix/test_flows.py``)."""

from __future__ import annotations

import pytest

from chat_tui.api.detect import CHAT_TUI, MATRIX, Detected, detect
from chat_tui.api.errors import PermanentError, TransientError
from tests.support.fault_proxy import FaultProxy
from tests.support.servers import find_free_port
from tests.support.synapse import Synapse


async def test_a_chat_tui_server_is_detected_by_its_health(server) -> None:
    assert await detect(server.url + "/") == Detected(CHAT_TUI, server.url)


async def test_a_matrix_homeserver_is_detected_by_its_versions(synapse: Synapse) -> None:
    assert await detect(synapse.url) == Detected(MATRIX, synapse.url)


async def test_a_matrix_server_name_is_followed_through_well_known(synapse: Synapse) -> None:
    # The proxy is the "server name": it hides /versions (404), so only its
    # .well-known/matrix/client, which names the homeserver's own URL, can find it.
    with FaultProxy(synapse.url) as proxy:
        proxy.respond(404, path_contains="/_matrix/client/versions", count=1)
        found = await detect(proxy.url)
        assert [outcome for _, target, outcome in proxy.log] == ["forwarded", "404",
                                                                 "forwarded"]
    assert found == Detected(MATRIX, synapse.url)


async def test_neither_kind_and_nothing_listening(synapse: Synapse) -> None:
    with FaultProxy(synapse.url) as proxy:
        proxy.respond(404, count=None)
        with pytest.raises(PermanentError) as caught:
            await detect(proxy.url)
        assert "neither" in caught.value.reason
        proxy.clear()
        proxy.respond(503, path_contains="/v1/health")
        with pytest.raises(TransientError):
            await detect(proxy.url)
    with pytest.raises(TransientError) as refused:
        await detect(f"http://127.0.0.1:{find_free_port()}")
    assert refused.value.reached_server is False
