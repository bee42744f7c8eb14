"""Configuration layer of the chat-tui client: settings, accounts and secrets.

This is the leftmost client layer (``config -> store -> api -> sync -> ui``); it
imports nothing from the others. Public names:

- :class:`Settings`: tunables of the engine (retention, outbox limits, backoff, polling).
- :class:`Account`: one logged-in user on one server, and where its cache file lives.
- :func:`load_accounts`, :func:`save_account`, :func:`remove_account`, :func:`pick_account`;
  :func:`account_choice` / :func:`load_account_defaults`: the ``[account]`` table of
  ``config.toml`` (the default server and user).
- :func:`store_token`, :func:`load_token`, :func:`delete_token`: the login token, in the OS
  keyring when one works, else in a 0600 file in the user config dir.
"""

from chat_tui.config.accounts import (
    Account,
    AccountError,
    account_choice,
    load_accounts,
    pick_account,
    remove_account,
    save_account,
    server_slug,
)
from chat_tui.config.paths import config_dir, data_dir, log_dir
from chat_tui.config.secrets import delete_token, load_token, store_token, token_backend
from chat_tui.config.settings import (
    Settings,
    config_file,
    load_account_defaults,
    load_settings,
)

__all__ = [
    "Account",
    "AccountError",
    "Settings",
    "account_choice",
    "config_dir",
    "config_file",
    "data_dir",
    "delete_token",
    "load_account_defaults",
    "load_accounts",
    "load_settings",
    "load_token",
    "log_dir",
    "pick_account",
    "remove_account",
    "save_account",
    "server_slug",
    "store_token",
    "token_backend",
]
