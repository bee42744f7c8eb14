"""Model providers in config.toml (chat_tui.config.providers): reading and checking the
``[[providers]]`` tables, finding keys (environment, keyring, 0600 file) without ever
writing one to the file, adding a provider while keeping the rest of the file, and the
setup lines the echo shows. Tests run with a keyring that refuses everything, so keys go
to the 0600 file fallback."""

from __future__ import annotations

import tomllib

import pytest

from chat_tui.config import config_file, load_settings
from chat_tui.config.providers import (
    ModelConfig,
    Provider,
    add_provider,
    load_model_config,
    local_model_url,
    probe_models,
    provider_key,
    setup_hint,
    store_provider_key,
)
from tests.support.config import write_config
from tests.support.model_server import ModelServer


def test_no_file_means_no_provider():
    config = load_model_config()
    assert config.providers == () and config.provider() is None
    assert config.assistant == "model"


def test_providers_default_model_and_default_provider_are_read():
    write_config('default_model = "gpt-4o-mini"\ndefault_provider = "openai"\n\n'
          '[[providers]]\nname = "ollama"\nbase_url = "http://127.0.0.1:11434/v1/"\n\n'
          '[[providers]]\nname = "openai"\nbase_url = "https://api.openai.com/v1"\n'
          'api_key_env = "OPENAI_API_KEY"\ntimeout = 30\n\n[sync]\nretention_days = 5\n')
    config = load_model_config()
    assert config.providers == (
        Provider("ollama", "http://127.0.0.1:11434/v1"),
        Provider("openai", "https://api.openai.com/v1", api_key_env="OPENAI_API_KEY",
                 timeout=30.0))
    assert config.default_model == "gpt-4o-mini"
    assert config.provider().name == "openai"
    assert load_settings().retention_days == 5  # the [sync] table still reads


@pytest.mark.parametrize(("text", "error"), [
    ('[[providers]]\nname = "x"\n', "base_url is missing"),
    ('[[providers]]\nname = "x"\nbase_url = "ftp://h"\n', "not an http(s) URL"),
    ('[[providers]]\nname = "x"\nbase_url = "http://h"\napi_key = "sk-123"\n',
     "unknown key 'api_key'"),
    ('[[providers]]\nname = "x"\nbase_url = "http://h"\napi_key_env = "A"\n'
     'api_key_keyring = "b"\n', "not both"),
    ('[[providers]]\nname = "x"\nbase_url = "http://h"\ntimeout = 0\n', "timeout"),
    ('[[providers]]\nname = "x"\nbase_url = "http://h"\n'
     '[[providers]]\nname = "x"\nbase_url = "http://i"\n', "used twice"),
    ('default_provider = "nope"\n[[providers]]\nname = "x"\nbase_url = "http://h"\n',
     "no [[providers]] entry is named 'nope'"),
    ('assistant = "gpt"\n', "assistant"),
    ('[providers]\nname = "x"\n', "[[providers]]"),
    ('[[providers]]\nname = "a b"\nbase_url = "http://h"\n', "name"),
    ("default_model = [\n", "not valid TOML"),
])
def test_bad_provider_config_is_a_clear_error(text, error):
    write_config(text)
    with pytest.raises(ValueError) as raised:
        load_model_config()
    assert error in str(raised.value)


def test_key_from_the_environment_or_a_clear_lookup_error():
    provider = Provider("openai", "https://api.openai.com/v1", api_key_env="MY_KEY")
    assert provider_key(provider, {"MY_KEY": " sk-env "}) == "sk-env"
    with pytest.raises(LookupError) as raised:
        provider_key(provider, {})
    assert "MY_KEY" in str(raised.value) and "not set" in str(raised.value)
    assert provider_key(Provider("ollama", "http://h"), {}) is None


def test_keyring_entry_falls_back_to_a_0600_file_never_the_config():
    provider = Provider("openai", "https://api.openai.com/v1", api_key_keyring="openai")
    with pytest.raises(LookupError) as raised:
        provider_key(provider, {})
    assert "chat-tui models --set-key openai" in str(raised.value)
    assert store_provider_key("openai", "sk-secret\n") == "file"  # the test keyring refuses
    assert provider_key(provider, {}) == "sk-secret"
    key_file = config_file().parent / "keys" / "openai"
    assert key_file.stat().st_mode & 0o777 == 0o600
    add_provider(provider)
    assert "sk-secret" not in config_file().read_text()
    with pytest.raises(ValueError):
        store_provider_key("openai", "  ")
    with pytest.raises(ValueError):
        store_provider_key("../x", "k")


def test_add_provider_keeps_the_file_and_sets_the_default_model_once():
    write_config('# my settings\n[sync]\nretention_days = 7\n')
    add_provider(Provider("ollama", "http://127.0.0.1:11434/v1"), default_model="llama3.2")
    text = config_file().read_text()
    assert text.startswith('# my settings\ndefault_model = "llama3.2"\n')
    config = load_model_config()
    assert config.default_model == "llama3.2" and config.provider().name == "ollama"
    assert load_settings().retention_days == 7
    add_provider(Provider("openai", "https://api.openai.com/v1", api_key_env="OPENAI_API_KEY"),
                 default_model="gpt-4o-mini")
    config = load_model_config()
    assert [p.name for p in config.providers] == ["ollama", "openai"]
    assert config.default_model == "llama3.2"  # an existing default is kept
    with pytest.raises(ValueError, match="configured already"):
        add_provider(Provider("ollama", "http://other/v1"))
    assert not config_file().with_name("config.toml.tmp").exists()


def test_add_provider_to_a_file_with_providers_makes_the_new_one_the_default():
    write_config('[[providers]]\nname = "a"\nbase_url = "http://a/v1"\n')
    add_provider(Provider("b", "http://b/v1"), default_model="m")
    config = load_model_config()
    assert config.default_model == "m" and config.provider().name == "b"


def test_setup_hint_lines_are_valid_config():
    hint = setup_hint()
    assert str(config_file()) in hint and "api_key_env" in hint
    blocks = [b for b in hint.split("\n\n") if b.startswith("    ")]
    text = "\n".join("\n".join(line[4:] for line in b.splitlines()) for b in blocks[:1])
    assert tomllib.loads(text)["providers"][0]["base_url"] == "http://127.0.0.1:11434/v1"
    write_config(text)
    assert load_model_config().provider().name == "ollama"


def test_probe_lists_models_of_a_live_server_and_fails_clearly():
    with ModelServer(["m1", "m2"], api_key="sk-p") as server:
        assert probe_models(server.url, "sk-p") == ["m1", "m2"]
        with pytest.raises(ConnectionError, match="HTTP 401"):
            probe_models(server.url)
        url = server.url
    with pytest.raises(ConnectionError, match="did not answer"):
        probe_models(url, timeout=0.5)
    assert local_model_url({}) == "http://127.0.0.1:11434/v1"
    assert local_model_url({"CHAT_TUI_LOCAL_MODEL_URL": "http://x/v1/"}) == "http://x/v1"


def test_model_config_provider_without_default_is_the_first():
    config = ModelConfig(providers=(Provider("a", "http://a"), Provider("b", "http://b")))
    assert config.provider().name == "a"
