"""The Matrix invites of the account (docs/sync.md, Matrix): each pending invite with its
room's name and who sent it; ``a`` or Enter accepts (joins: the room arrives as a
conversation with the next sync), ``x`` declines, Esc closes. The list comes from the
cache (``Engine.invites``), so it shows offline; answering needs the homeserver."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from chat_tui.ui.safe_text import inert_line

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.sync.engine import Engine

__all__ = ["InvitesScreen", "invite_line"]


def invite_line(invite: dict[str, str], width: int = 60) -> Text:
    """One invite as inert text: the room's name (or its id) and who invited."""
    name = invite.get("name") or invite.get("room_id", "")
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(inert_line(name, width - 4) or "(unnamed room)", style="bold")
    inviter = invite.get("inviter", "")
    if inviter:
        line.append(f"  from {inert_line(inviter, width)}", style="dim")
    return line


class InvitesScreen(ModalScreen[None]):
    """The pending invites of ``engine``'s Matrix account; answers through
    :meth:`Engine.answer_invite` (an error is a toast, the invite stays listed)."""

    DEFAULT_CSS = """
    InvitesScreen {
        align: center middle;
        background: $background 60%;
    }
    #invites-box {
        width: 64;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    #invites-list {
        height: auto;
        max-height: 12;
    }
    """

    BINDINGS = [
        Binding("a", "answer(True)", "Accept"),
        Binding("x", "answer(False)", "Decline"),
        Binding("escape", "close", "Close"),
    ]

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self._engine = engine
        self._invites: list[dict[str, str]] = []

    def compose(self):  # noqa: D102 - Textual hook
        with Vertical(id="invites-box") as box:
            box.border_title = "Invites"
            yield OptionList(id="invites-list", markup=False)
            yield Static("", markup=False, id="invites-empty")
            yield Static(Text("a / Enter: accept  \u00b7  x: decline  \u00b7  Esc: close"),
                         markup=False, id="invites-keys")

    def on_mount(self) -> None:  # noqa: D102 - Textual hook
        self.reload()
        self.query_one("#invites-list", OptionList).focus()

    def reload(self) -> None:
        """Read the invites from the cache again and show them."""
        self._invites = self._engine.invites()
        options = self.query_one("#invites-list", OptionList)
        options.clear_options()
        options.add_options([Option(invite_line(i), id=i["room_id"]) for i in self._invites])
        if self._invites:
            options.highlighted = 0
        self.query_one("#invites-empty", Static).update(
            "" if self._invites else "No invites waiting.")

    def action_answer(self, accept: bool) -> None:
        """Accept or decline the highlighted invite."""
        options = self.query_one("#invites-list", OptionList)
        index = options.highlighted
        if index is None or not 0 <= index < len(self._invites):
            return
        self._answer(self._invites[index], accept)

    @work(exclusive=True, group="invite", exit_on_error=False)
    async def _answer(self, invite: dict[str, str], accept: bool) -> None:
        from chat_tui.api import ApiError

        name = invite.get("name") or invite["room_id"]
        try:
            await self._engine.answer_invite(invite["room_id"], accept)
        except ApiError as exc:
            self.app.notify(f"Could not {'accept' if accept else 'decline'} {name}: "
                            f"{exc.reason}", severity="error", timeout=10)
            return
        self.app.notify(f"Joined {name}: it appears with the next sync" if accept
                        else f"Declined {name}", timeout=5)
        self.reload()

    def action_close(self) -> None:
        """Close the list."""
        self.dismiss(None)

    def on_option_list_option_selected(self, event: Any) -> None:
        """Enter on an invite accepts it, as ``a`` does."""
        event.stop()
        self.action_answer(True)
