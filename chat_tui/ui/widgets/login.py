"""The login-needed banner: a lasting line under the title bar while the server refuses
this device's token (sync rule 3l), saying what to run; hidden once a login resumed the
engine. It reads nothing itself: the chat screen shows and hides it
(:class:`~chat_tui.ui.screens.chat_login.LoginWatch`)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from chat_tui.ui.safe_text import inert_line

__all__ = ["LoginBanner", "login_text"]


def login_text(reason: str, server_url: str, username: str) -> str:
    """The banner sentence, e.g. "Login needed - login required: token revoked. Run
    `chat-tui login http://host:8000 --username alice` in a terminal: the app resumes by
    itself. Unsent messages wait in the outbox." ``reason`` is the
    engine's text (made inert). Without a server URL (the local account, whose embedded
    server logs it in at each start) it says to start chat-tui again."""
    if not server_url:  # the local account: its embedded server logs it in at start
        return (f"Login needed - {inert_line(reason, 120)}. Quit and start chat-tui again: "
                "the local account logs in by itself. Unsent messages wait in the outbox.")
    command = f"chat-tui login {inert_line(server_url, 200)}"
    if username:
        command += f" --username {inert_line(username, 64)}"
    return (f"Login needed - {inert_line(reason, 120)}. Run `{command}` in a terminal: "
            "the app resumes by itself. Unsent messages wait in the outbox.")


class LoginBanner(Static):
    """Shown while a login is needed (:meth:`show_needed`), hidden otherwise."""

    DEFAULT_CSS = """
    LoginBanner {
        height: auto;
        padding: 0 1;
        background: $error-muted;
        color: $text;
        text-style: bold;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(Text(""), markup=False, id=id)
        self._text = ""
        self.display = False

    def show_needed(self, text: str | None) -> None:
        """Show ``text`` (a :func:`login_text` sentence), or hide when None."""
        self.display = text is not None
        self._text = text or ""
        self.update(Text("\u26a0 " + self._text) if text else Text(""))

    def plain_text(self) -> str:
        """What the banner says ("" while hidden)."""
        return self._text if self.display else ""
