"""The wire models of ``chat_tui.wire`` (docs/api.md, Objects): the JSON the server writes
and what the client accepts, from the same definitions."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest
from pydantic import ValidationError

from chat_tui.wire import limits
from chat_tui.wire.models import Conversation, Message, SyncResponse

MESSAGE = {
    "id": "5f0c", "conversation_id": "9a1e", "author": "alice", "body": "hello",
    "created_at": "2026-11-22T14:02:07.123456Z", "edited_at": None, "seq": 1042,
    "version": 1, "deleted": False, "streaming": False, "error": False, "model": None,
    "stopped": False,
}


def test_a_message_round_trips_exactly():
    parsed = Message.parse(MESSAGE)
    assert parsed.created_at == dt.datetime(2026, 11, 22, 14, 2, 7, 123456, tzinfo=dt.UTC)
    assert json.loads(parsed.to_json()) == MESSAGE


def test_times_are_written_with_microseconds_and_z_from_naive_utc_rows():
    row_time = dt.datetime(2026, 1, 2, 3, 4, 5)  # the server's storage: naive UTC
    built = Message.construct(**{**Message.parse(MESSAGE).__dict__, "created_at": row_time})
    assert json.loads(built.to_json())["created_at"] == "2026-01-02T03:04:05.000000Z"


@pytest.mark.parametrize("change", [
    {"seq": True}, {"seq": "1"}, {"body": 5}, {"deleted": 0},
    {"created_at": "2026-11-22T14:02:07"}, {"created_at": 1_700_000_000}, {"id": None},
])
def test_a_wrong_field_is_refused(change):
    with pytest.raises(ValidationError):
        Message.parse({**MESSAGE, **change})


def test_missing_optional_flags_and_extra_fields_are_accepted():
    lean = {k: v for k, v in MESSAGE.items()
            if k not in ("streaming", "error", "model", "stopped")}
    parsed = Message.parse({**lean, "reactions": []})
    assert parsed.streaming is False and parsed.error is False
    assert parsed.stopped is False and parsed.model is None  # an older server


def test_a_sync_answer_keeps_an_integer_cursor_as_text():
    conv = {"id": "9a1e", "title": "t", "creator": "alice", "members": ["alice"],
            "assistant": False, "created_at": MESSAGE["created_at"],
            "updated_at": MESSAGE["created_at"], "last_message": MESSAGE, "unread_count": 0}
    answer = SyncResponse.parse({"cursor": 7, "initial": True, "read_markers": [],
                                 "conversations": [{"conversation": conv, "messages": [MESSAGE],
                                                    "limited": False}]})
    assert answer.cursor == "7" and answer.conversations[0].removed is False
    assert isinstance(answer.conversations[0].conversation, Conversation)


def test_the_limits_load_without_pydantic():
    code = "import sys, chat_tui.wire; print('pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_body_size_error_matches_the_api():
    assert limits.body_size_error("x") is None
    assert limits.body_size_error("é" * (limits.MAX_BODY_BYTES // 2)) is None
    assert limits.body_size_error("x" * (limits.MAX_BODY_BYTES + 1))[:2] == (413, "too_large")
    assert limits.body_size_error("")[:2] == (422, "validation")


def test_the_client_engine_loads_the_models_on_its_first_answer_only():
    """An engine that starts offline never parses an answer, so it never pays for pydantic
    (memory benchmark 6 runs the app offline)."""
    code = ("import sys, chat_tui.sync.engine, chat_tui.api; print('pydantic' in sys.modules); "
            "chat_tui.api.Message; print('pydantic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "True"]
