"""The backend interface (``chat_tui.api.backend.Backend``): both transports have every
method of it with the same parameters, and the chat-tui client keeps its behaviour with
the ``conversation_id`` keyword the interface passes to edits and deletes."""

from __future__ import annotations

import inspect
import uuid

import pytest

from chat_tui.api.backend import Backend
from chat_tui.api.client import ApiClient
from chat_tui.api.errors import PermanentError
from chat_tui.api.matrix import MatrixClient

_METHODS = [name for name, value in vars(Backend).items()
            if inspect.isfunction(value) and not name.startswith("_")]


def test_the_interface_names_what_the_engine_needs() -> None:
    assert set(_METHODS) == {
        "set_token", "aclose", "health", "login", "put_conversation", "put_message",
        "patch_message", "delete_message", "mark_read", "sync", "messages", "user_exists",
        "logout", "patch_conversation", "leave_conversation", "add_member", "remove_member"}


@pytest.mark.parametrize("cls", [ApiClient, MatrixClient])
@pytest.mark.parametrize("name", _METHODS)
def test_transport_has_the_interface_method(cls: type, name: str) -> None:
    wanted = inspect.signature(getattr(Backend, name))
    got = inspect.signature(getattr(cls, name))
    assert inspect.iscoroutinefunction(getattr(Backend, name)) == \
        inspect.iscoroutinefunction(getattr(cls, name))
    # Every parameter of the interface is there, of the same kind and default; a
    # transport may add keyword-only parameters with defaults after them.
    for param in wanted.parameters.values():
        assert param.name in got.parameters, f"{cls.__name__}.{name} lacks {param.name}"
        mine = got.parameters[param.name]
        assert (mine.kind, mine.default) == (param.kind, param.default), param.name
    for extra in set(got.parameters) - set(wanted.parameters):
        assert got.parameters[extra].kind is inspect.Parameter.KEYWORD_ONLY
        assert got.parameters[extra].default is not inspect.Parameter.empty


async def test_api_client_edit_and_delete_with_conversation_id(server, server_api) -> None:
    api: ApiClient = server_api("alice")
    assert isinstance(api, Backend)
    cid, mid = str(uuid.uuid4()), str(uuid.uuid4())
    await api.put_conversation(cid, "backend", ["bob"], False)
    sent = await api.put_message(cid, mid, "first")
    edited = await api.patch_message(mid, "second", sent.version, conversation_id=cid)
    assert (edited.id, edited.body, edited.version) == (mid, "second", sent.version + 1)
    # API v1 routes by message id alone: the keyword does not change the request.
    again = await api.patch_message(mid, "third", None, conversation_id="elsewhere")
    assert (again.conversation_id, again.body) == (cid, "third")
    gone = await api.delete_message(mid, conversation_id=cid)
    assert gone.deleted and gone.body == ""
    with pytest.raises(PermanentError):  # a tombstone is not edited (409)
        await api.patch_message(mid, "fourth", None, conversation_id=cid)
