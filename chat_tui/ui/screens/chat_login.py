"""Auth as a state (sync rule 3l): while the engine is paused for a login, the chat
screen shows a lasting :class:`~chat_tui.ui.widgets.login.LoginBanner` and watches the
account's saved token (keyring or 0600 file, ``chat_tui.config.load_token``) every
:attr:`LoginWatch.POLL` seconds; a token other than the one refused, saved by
``chat-tui login`` in another terminal, goes to the engine (``Engine.set_token``), which
lifts the pause and resumes sending by itself.
"""

from __future__ import annotations

import asyncio
import logging

from textual.timer import Timer

from chat_tui.ui.widgets.login import LoginBanner, login_text

__all__ = ["LoginWatch"]

log = logging.getLogger(__name__)

_UNSET = object()


class LoginWatch:
    """Mixin of :class:`~chat_tui.ui.screens.chat.ChatScreen`: the login-needed state.

    State: ``login_needed`` (the engine's reason while paused for a login, else None).
    """

    POLL = 1.0
    """Seconds between two reads of the saved token while a login is needed (one keyring
    look-up or one small file read, in a thread)."""

    login_needed: str | None = None
    _login_banner: LoginBanner | None = None
    _login_timer: Timer | None = None
    _refused_token: object = _UNSET
    _token_check_running = False

    def login_state(self, active: bool, reason: str) -> None:
        """The engine paused (``active``) or resumed for a login: show or hide the banner
        and start or stop watching the saved token."""
        if not self._ready():
            return
        if active:
            self.login_needed = reason
            banner = self._login_banner
            if banner is None:
                banner = self._login_banner = LoginBanner(id="login-needed")
                self.mount(banner, after=self.query_one("#titlebar"))
            store = self.store
            banner.show_needed(login_text(reason, store.server_url, store.me))
            self._update_skeleton()
            if self._login_timer is None:
                self._refused_token = _UNSET
                self._login_timer = self.set_interval(self.POLL, self._check_login)
                self._check_login()
        else:
            was = self.login_needed is not None
            self.login_needed = None
            if self._login_banner is not None:
                self._login_banner.show_needed(None)
            self._update_skeleton()
            if self._login_timer is not None:
                self._login_timer.stop()
                self._login_timer = None
            if was:
                self.app.notify("Logged in again - sending resumes.")

    def _check_login(self) -> None:
        if self._token_check_running or self.login_needed is None:
            return
        self._token_check_running = True
        self.run_worker(self._read_token(), group="login", exit_on_error=False)

    async def _read_token(self) -> None:
        try:
            token = await asyncio.to_thread(self._saved_token)
        except Exception:  # noqa: BLE001 - a broken keyring must not end the app
            log.warning("could not read the saved token", exc_info=True)
            return
        finally:
            self._token_check_running = False
        if self._refused_token is _UNSET:
            self._refused_token = token  # what was saved when the login was asked for
            return
        engine = self.engine
        if token and token != self._refused_token and engine is not None \
                and self.login_needed is not None:
            log.info("a new login was saved: resuming")
            engine.set_token(token)

    def _saved_token(self) -> str | None:
        """The account's saved token (keyring or file), or None; runs in a thread."""
        from chat_tui.config import Account, load_token

        store = self.store
        if not store.server_url:
            return None
        return load_token(Account(store.server_url, store.me, store.user_id))
