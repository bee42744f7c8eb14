"""Writing config.toml from the app (chat_tui.config.config_edit): the model part
(providers, default model) and the theme, each keeping every other line and value of the
file, never writing a key, and writing nothing when the result would be wrong."""

from __future__ import annotations

import tomllib

import pytest

from chat_tui.config import config_file, load_account_defaults, load_settings
from chat_tui.config.config_edit import load_theme, save_model_settings, save_theme
from chat_tui.config.providers import Provider, load_model_config
from tests.support.config import write_config

OTHER = ('# my chat-tui settings\nassistant = "model"\ndefault_model = "old"\n\n'
         '[account]\nserver = "https://chat.example.org"  # the work server\n\n'
         '[[providers]]\nname = "gone"\nbase_url = "http://127.0.0.1:9/v1"\n\n'
         '[sync]\nretention_days = 5\n\n[cache]\nkey = "file"\n')


def test_model_settings_replace_providers_and_keep_everything_else():
    path = write_config(OTHER)
    providers = [Provider("ollama", "http://127.0.0.1:11434/v1", timeout=30.0),
                 Provider("openai", "https://api.openai.com/v1", api_key_env="OPENAI_API_KEY"),
                 Provider("work", "https://llm.example.org/v1", api_key_keyring="work")]
    save_model_settings(providers, "gpt-4o-mini", "openai")
    text = path.read_text(encoding="utf-8")
    config = load_model_config()
    assert config.providers == tuple(providers)
    assert (config.default_model, config.default_provider) == ("gpt-4o-mini", "openai")
    assert config.assistant == "model"
    assert load_settings().retention_days == 5
    assert load_account_defaults() == (None, "https://chat.example.org")
    assert tomllib.loads(text)["cache"] == {"key": "file"}
    assert "# my chat-tui settings" in text and "# the work server" in text
    assert "gone" not in text and '"old"' not in text
    # no provider and no default model: the keys go away, the rest stays
    save_model_settings([], None)
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert "providers" not in data and "default_model" not in data
    assert data["sync"] == {"retention_days": 5} and data["assistant"] == "model"


def test_model_settings_on_a_missing_file_and_never_a_key():
    save_model_settings([Provider("p", "http://127.0.0.1:8/v1", api_key_keyring="p")], "m")
    text = config_file().read_text(encoding="utf-8")
    assert tomllib.loads(text) == {"default_model": "m", "providers": [
        {"name": "p", "base_url": "http://127.0.0.1:8/v1", "api_key_keyring": "p",
         "timeout": 60}]}
    assert "sk-" not in text and "api_key =" not in text


@pytest.mark.parametrize(("providers", "default_provider", "error"), [
    ([Provider("a", "http://h/v1"), Provider("a", "http://i/v1")], None, "used twice"),
    ([Provider("a", "http://h/v1")], "b", "entry is named 'b'"),
])
def test_model_settings_that_would_not_load_write_nothing(providers, default_provider, error):
    path = write_config(OTHER)
    with pytest.raises(ValueError, match=error):
        save_model_settings(providers, "m", default_provider)
    assert path.read_text(encoding="utf-8") == OTHER
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]


def test_an_invalid_file_is_not_touched():
    path = write_config("default_model = \n")
    with pytest.raises(ValueError, match="not valid TOML"):
        save_model_settings([], "m")
    with pytest.raises(ValueError, match="not valid TOML"):
        save_theme("nord")
    assert path.read_text(encoding="utf-8") == "default_model = \n"
    assert load_theme() is None


def test_theme_is_kept_in_the_ui_table():
    assert load_theme() is None
    path = write_config(OTHER)
    save_theme("nord")
    assert load_theme() == "nord"
    save_theme("gruvbox")
    text = path.read_text(encoding="utf-8")
    assert load_theme() == "gruvbox" and text.count("theme =") == 1
    data = tomllib.loads(text)
    assert data["ui"] == {"theme": "gruvbox"} and data["sync"] == {"retention_days": 5}
    assert text.startswith(OTHER.rstrip("\n"))
    # a [ui] table in the middle of the file is edited in place
    path = write_config('[ui]\n# mine\n\n[sync]\nretention_days = 1\n')
    save_theme("dracula")
    assert tomllib.loads(path.read_text(encoding="utf-8")) == {
        "ui": {"theme": "dracula"}, "sync": {"retention_days": 1}}
    assert "# mine" in path.read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="empty"):
        save_theme(" ")
