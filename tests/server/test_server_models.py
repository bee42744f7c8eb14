"""The assistant's providers and ``GET /v1/models`` (docs/api.md, Models): the embedded
server answers with the configured provider and model, lists every provider's models with
the default flagged, keeps the lists a short time, reports a failing provider and a missing
key. Real processes: the model servers of tests/support/model_server.py, the embedded
server in a thread."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from chat_tui.server.settings import AssistantSettings, ProviderSettings
from tests.support.embedded import (
    embedded_client,
    finished_replies,
    new_assistant_conversation,
    send_text,
)
from tests.support.model_server import ModelServer


@pytest.fixture
def models_a() -> Iterator[ModelServer]:
    with ModelServer(["small", "large"], delay=0.01, api_key="sk-a") as server:
        yield server


@pytest.fixture
def models_b() -> Iterator[ModelServer]:
    with ModelServer(["other"], delay=0.01) as server:
        yield server


def ask(client: httpx.Client, text: str) -> dict:
    """Send ``text`` to a new assistant conversation; the finished reply."""
    cid = new_assistant_conversation(client)
    send_text(client, cid, text)
    return finished_replies(client, cid)[0]


def test_replies_come_from_the_configured_provider_and_model(tmp_path, models_a, models_b):
    settings = AssistantSettings(kind="openai", model="large", providers=[
        ProviderSettings("a", models_a.url, "sk-a", None, 10),
        ProviderSettings("b", models_b.url, None, None, 10)])
    with embedded_client(tmp_path / "server.db", settings) as client:
        reply = ask(client, "hello model")
        assert reply["body"] == "saw 1: me: hello model" and not reply["error"]
        assert [r["model"] for r in models_a.requests] == ["large"]
        assert models_b.requests == []


def test_models_list_every_provider_default_flagged_and_cached(
        tmp_path, models_a, models_b):
    settings = AssistantSettings(kind="openai", model=None, models_ttl=60, providers=[
        ProviderSettings("a", models_a.url, "sk-a", None, 10),
        ProviderSettings("b", models_b.url, None, None, 10),
        ProviderSettings("down", "http://127.0.0.1:9/v1", None, None, 2)])
    with embedded_client(tmp_path / "server.db", settings) as client:
        assert httpx.get(client.base_url.join("/v1/models")).status_code == 401
        answer = client.get("/v1/models")
        assert answer.status_code == 200
        body = answer.json()
        assert body["default"] == "small"  # no default_model: the first one listed
        assert body["models"] == [
            {"id": "small", "provider": "a", "default": True},
            {"id": "large", "provider": "a", "default": False},
            {"id": "other", "provider": "b", "default": False},
        ]
        assert [p["provider"] for p in body["problems"]] == ["down"]
        assert "could not be reached" in body["problems"][0]["message"]
        asked = models_a.counts["models"]
        assert client.get("/v1/models").json()["models"] == body["models"]
        assert models_a.counts["models"] == asked  # served from the server's cache
        # the reply uses the provider's first model when none is configured
        ask(client, "which model?")
        assert models_a.requests[-1]["model"] == "small"


def test_missing_key_is_stated_in_the_reply_and_the_model_list(tmp_path, models_a):
    problem = "the environment variable MY_KEY (the key of provider a) is not set"
    settings = AssistantSettings(kind="openai", model="small", providers=[
        ProviderSettings("a", models_a.url, None, problem, 10)])
    with embedded_client(tmp_path / "server.db", settings) as client:
        reply = ask(client, "hi")
        assert reply["error"] and problem in reply["body"]
        body = client.get("/v1/models").json()
        assert body["models"] == [] and body["problems"] == [
            {"provider": "a", "message": problem}]
        assert models_a.requests == []


def test_wrong_key_ends_in_an_error_reply_naming_the_status(tmp_path, models_a):
    settings = AssistantSettings(kind="openai", model="small", providers=[
        ProviderSettings("a", models_a.url, "sk-wrong", None, 10)])
    with embedded_client(tmp_path / "server.db", settings) as client:
        reply = ask(client, "hi")
        assert reply["error"] and "HTTP 401" in reply["body"]
        assert "sk-wrong" not in reply["body"]


def test_echo_offers_its_one_model_and_adds_its_note(tmp_path):
    settings = AssistantSettings(kind="echo", echo_delay=0, echo_note="Configure a model.")
    with embedded_client(tmp_path / "server.db", settings) as client:
        assert client.get("/v1/models").json() == {
            "models": [{"id": "echo", "provider": "built-in", "default": True}],
            "default": "echo", "problems": []}
        reply = ask(client, "one two")
        assert reply["body"].endswith("You wrote: one two\n\nConfigure a model.")


def test_serve_takes_a_providers_file(server_factory, api_factory, tmp_path, models_a,
                                      models_b, monkeypatch):
    monkeypatch.setenv("A_KEY", "sk-a")
    providers = tmp_path / "providers.toml"
    providers.write_text(
        'default_model = "other"\ndefault_provider = "b"\n\n'
        f'[[providers]]\nname = "a"\nbase_url = "{models_a.url}"\napi_key_env = "A_KEY"\n\n'
        f'[[providers]]\nname = "b"\nbase_url = "{models_b.url}"\ntimeout = 5\n',
        encoding="utf-8")
    server = server_factory.start(extra_args=("--providers", str(providers)))
    server.add_user("alice", "alice-pw")
    alice = api_factory(server, "alice", "alice-pw")
    body = alice.request("GET", "/v1/models").json()
    assert body["default"] == "other" and body["problems"] == []
    assert [(m["id"], m["provider"], m["default"]) for m in body["models"]] == [
        ("other", "b", True), ("small", "a", False), ("large", "a", False)]
    cid = alice.create_conversation([], assistant=True)
    alice.send(cid, "via the file")
    deadline = time.monotonic() + 20
    while not models_b.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r["model"] for r in models_b.requests] == ["other"]


@pytest.mark.parametrize(("text", "error"), [
    ("", "no [[providers]] table"),
    ('[[providers]]\nname = "a"\nbase_url = "http://h/v1"\napi_key_env = "UNSET_KEY_X"\n',
     "UNSET_KEY_X is not set"),
    ('[[providers]]\nname = "a"\nbase_url = "nope"\n', "base_url"),
    ('default_provider = "z"\n[[providers]]\nname = "a"\nbase_url = "http://h/v1"\n',
     "no provider is named 'z'"),
])
def test_serve_refuses_a_bad_providers_file_before_listening(tmp_path, text, error):
    import subprocess
    import sys

    providers = tmp_path / "providers.toml"
    providers.write_text(text, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "chat_tui.server", "serve", "--port", "0", "--db",
         str(tmp_path / "x.db"), "--providers", str(providers)],
        capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and error in done.stderr
