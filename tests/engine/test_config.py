"""The config file (``<user config dir>/chat-tui/config.toml``): its ``[account]`` table picks
the server and user that ``chat-tui`` and its headless commands use (a configured server is
used instead of the embedded one), and a bad file is a clear error."""

from __future__ import annotations

import pytest

from chat_tui.config import AccountError, load_settings, pick_account
from tests.support.cli import cli, login
from tests.support.config import write_config


def test_account_table_picks_the_server_and_user_of_the_headless_commands(server):
    login(server.url, "alice")
    login(server.url, "bob")  # the most recent login: the default without a config file
    write_config(f'[account]\nserver = "{server.url}/"\nuser = "alice"\n')
    assert pick_account().username == "alice"
    assert pick_account(user="bob").username == "bob"  # --user wins over the file
    cid = cli("new", "Picked by config.toml").stdout.strip()
    assert cid in cli("--user", "alice", "export", "--format", "json").stdout
    assert cid not in cli("--user", "bob", "export", "--format", "json").stdout


def test_account_table_without_a_login_says_how_to_log_in(server):
    write_config(f'[account]\nserver = "{server.url}"\n')
    with pytest.raises(AccountError, match=f"chat-tui login {server.url}"):
        pick_account()
    done = cli("status")
    assert done.returncode == 1 and f"chat-tui login {server.url}" in done.stderr


def test_app_uses_the_configured_server_not_the_embedded_one(server):
    """``chat-tui`` with an ``[account]`` table and no login stops with the login hint
    instead of silently starting the embedded local server."""
    from chat_tui.launch import local_dir

    write_config(f'[account]\nserver = "{server.url}"\nuser = "carol"\n')
    done = cli()
    assert done.returncode == 1
    assert f"chat-tui login {server.url} --username carol" in done.stderr
    assert not (local_dir() / "server.db").exists()


@pytest.mark.parametrize("text, message", [
    ("[account\n", "not valid TOML"),
    ('[account]\nhost = "x"\n', "unknown key 'host'"),
    ("[account]\nserver = 3\n", "want a non-empty string"),
    ('[account]\nserver = "ftp://x"\n', "not a server URL"),
    ("account = 1\n", "[account] must be a table"),
])
def test_a_bad_config_file_is_a_clear_error(text, message):
    write_config(text)
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        pick_account()
    done = cli("status", "--offline")
    assert done.returncode == 1 and message in done.stderr


def test_sync_table_still_reads_settings():
    write_config('[account]\nuser = "alice"\n\n[sync]\nmax_attempts = 3\n')
    assert load_settings(environ={}).max_attempts == 3
