"""``chat-tui models``: the account's server's models (``GET /v1/models``), saved in the
cache and shown offline; the local mode's list from config.toml; adopting a local model
server (``--use-local``) and storing a provider key (``--set-key``); ``chat-tui stop``
ending a streaming reply. Real subprocesses, a real server, real model servers."""

from __future__ import annotations

import json

import pytest

from chat_tui.config import config_file
from chat_tui.config.providers import load_model_config
from tests.support.cli import cli, login
from tests.support.model_server import ModelServer


@pytest.fixture
def model() -> ModelServer:
    with ModelServer(["m1", "m2"], delay=0.01, api_key="sk-server") as server:
        yield server


def test_models_of_the_server_are_saved_and_shown_offline(server_factory, model,
                                                          monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-server")
    server = server_factory.start_with_model(model.url, "m2", users={"alice": "alice-pw"})
    login(server.url)
    done = cli("models", "--json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert listed["models"] == [{"id": "m1", "provider": "default", "default": False},
                                {"id": "m2", "provider": "default", "default": True}]
    assert listed["default"] == "m2" and listed["offline"] is False
    text = cli("models")
    assert text.returncode == 0 and text.stdout.splitlines() == ["  m1     default",
                                                                  "* m2     default"]
    server.stop()
    offline = cli("models", "--json")
    assert offline.returncode == 0, offline.stderr
    shown = json.loads(offline.stdout)
    assert shown["models"] == listed["models"] and shown["offline"] is True
    assert shown["saved_at"].endswith("Z")
    plain = cli("models")
    assert "offline: the list saved" in plain.stderr and "* m2" in plain.stdout


def test_unreachable_server_without_a_saved_list_exits_2(server_factory):
    server = server_factory.start(users={"alice": "alice-pw"})
    login(server.url)
    server.stop()
    done = cli("models")
    assert done.returncode == 2 and "cannot list the models" in done.stderr


def test_local_mode_lists_the_configured_providers(model, monkeypatch):
    monkeypatch.setenv("MODEL_KEY", "sk-server")
    config_file().parent.mkdir(parents=True, exist_ok=True)
    config_file().write_text(f'[[providers]]\nname = "lab"\nbase_url = "{model.url}"\n'
                             'api_key_env = "MODEL_KEY"\n', encoding="utf-8")
    done = cli("models", "--json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert [(m["id"], m["provider"], m["default"]) for m in listed["models"]] == [
        ("m1", "lab", True), ("m2", "lab", False)]
    monkeypatch.delenv("MODEL_KEY")
    missing = json.loads(cli("models", "--json").stdout)
    assert missing["models"] == [] and "MODEL_KEY" in missing["problems"][0]["message"]


def test_use_local_adds_the_local_model_server_to_config(monkeypatch, unused_port):
    monkeypatch.setenv("CHAT_TUI_LOCAL_MODEL_URL", f"http://127.0.0.1:{unused_port}/v1")
    refused = cli("models", "--use-local")
    assert refused.returncode == 2 and "no local model server" in refused.stderr
    assert not config_file().exists()
    with ModelServer(["llama3.2", "qwen"]) as local:
        monkeypatch.setenv("CHAT_TUI_LOCAL_MODEL_URL", local.url)
        done = cli("models", "--use-local")
        assert done.returncode == 0, done.stderr
        assert "default model llama3.2" in done.stdout
        config = load_model_config()
        assert config.provider().base_url == local.url and config.provider().name == "local"
        assert config.default_model == "llama3.2"
        again = cli("models", "--use-local")
        assert again.returncode == 1 and "configured already" in again.stderr
        listed = cli("models")
        assert listed.stdout.splitlines()[0].startswith("* llama3.2")


def test_set_key_keeps_the_key_out_of_output_and_config():
    done = cli("models", "--set-key", "openai", stdin="sk-very-secret\n")
    assert done.returncode == 0, done.stderr
    assert "sk-very-secret" not in done.stdout + done.stderr
    assert "0600 key file" in done.stdout
    key_file = config_file().parent / "keys" / "openai"
    assert key_file.read_text() == "sk-very-secret"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert not config_file().exists()
    empty = cli("models", "--set-key", "openai", stdin="\n")
    assert empty.returncode == 1 and "empty" in empty.stderr


def test_stop_ends_the_streaming_reply_of_a_conversation(server_factory, monkeypatch):
    import time

    import httpx

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with ModelServer(["slow"], delay=0.3) as model:
        server = server_factory.start_with_model(model.url, "slow", users={"alice": "alice-pw"})
        login(server.url)
        assert cli("new", "Ask", "--assistant").returncode == 0
        assert cli("send", "--conversation", "Ask",
                   " ".join(f"w{i}" for i in range(40))).returncode == 0
        assert cli("sync", "--once").returncode == 0
        token = server.login("alice", "alice-pw")["access_token"]
        headers = {"authorization": f"Bearer {token}"}

        def reply() -> dict | None:
            convs = httpx.get(f"{server.url}/v1/conversations", headers=headers).json()
            cid = convs["conversations"][0]["id"]
            page = httpx.get(f"{server.url}/v1/conversations/{cid}/messages",
                             headers=headers).json()["messages"]
            return next((m for m in page if m["author"] == "assistant"), None)

        deadline = time.monotonic() + 20
        while not (reply() or {}).get("body") and time.monotonic() < deadline:
            time.sleep(0.1)
        done = cli("stop", "--conversation", "Ask")
        assert done.returncode == 0, done.stderr
        stopped = reply()
        assert done.stdout.split() == [stopped["id"]]
        assert stopped["stopped"] and stopped["body"] and not stopped["streaming"]
        again = cli("stop", "--conversation", "Ask")
        assert again.returncode == 0 and again.stdout == ""
        assert "no reply is being written" in again.stderr
        server.stop()
        offline = cli("stop", "--conversation", "Ask")
        assert offline.returncode == 2 and "cannot reach the server" in offline.stderr
