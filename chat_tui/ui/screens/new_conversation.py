"""New-conversation dialog: a title, and either the assistant or a list of members; with
the assistant, its model and system prompt (sync rule 9: both travel with the queued
create, so they work offline too).

The model is chosen with the model picker
(:class:`~chat_tui.ui.screens.model_picker.ModelField`), fed by the model list kept in the
cache; left alone it is the server's default model (the configured default in the local
mode). The system prompt is optional and multi-line; empty is the server's own.

Member names are checked against the server before anything is created (docs/sync.md,
sync rule 3o): while the server can be asked, the dialog asks it (``Engine.unknown_members``
through :func:`server_member_check`), names the unknown ones and stays open, creating
nothing; when it cannot be asked (offline, working offline, a login needed, no answer) the
dialog closes as usual and the create is queued, marked unchecked.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static, TextArea

from chat_tui.ui.safe_text import inert_line
from chat_tui.ui.screens.model_picker import ModelField
from chat_tui.wire.limits import MAX_SYSTEM_PROMPT_CHARS

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.store import Cache

__all__ = ["MemberCheck", "NewConversation", "NewConversationScreen", "parse_members",
           "server_member_check"]

log = logging.getLogger(__name__)

USERNAME = re.compile(r"[a-z0-9_.-]{1,64}")  # docs/api.md, "Conventions"
#: A Matrix user id (``@localpart:server``) or a localpart on the account's homeserver.
MATRIX_USER = re.compile(r"@?[a-z0-9._=/+-]{1,255}(:[a-z0-9.\[\]:-]{1,255})?")


@dataclass(frozen=True)
class NewConversation:
    """What the dialog returns: ``title`` (1..200 chars), ``members`` (usernames),
    ``assistant``; ``checked`` is True when the server confirmed every member name (sync
    rule 3o), False when there was nothing to check or the server could not be asked.
    ``model`` and ``system_prompt`` (at most 16,000 characters) are the assistant's (None:
    the server's default model, its own prompt; always None without the assistant)."""

    title: str
    members: tuple[str, ...]
    assistant: bool
    checked: bool = False
    model: str | None = None
    system_prompt: str | None = None


MemberCheck = Callable[[tuple[str, ...]], Awaitable["list[str] | None"]]
"""Asks the server which of the usernames it does not know: the unknown ones (``[]`` when
all are known), or None when the server cannot be asked now."""


def server_member_check(chat: Any) -> MemberCheck:
    """The :data:`MemberCheck` of the chat screen ``chat`` (its ``engine``,
    ``connectivity`` and ``login_needed``): ``Engine.unknown_members`` while the engine
    runs, is online and needs no login; None (not asked) otherwise, and when the question
    fails (``chat_tui.api.ApiError``, a timeout: logged)."""

    async def check(names: tuple[str, ...]) -> list[str] | None:
        engine = chat.engine
        if engine is None or chat.connectivity != "online" or chat.login_needed is not None:
            return None
        try:
            return await engine.unknown_members(names)
        except Exception:  # noqa: BLE001 - not checked: the create is queued as offline
            log.info("member names not checked", exc_info=True)
            return None

    return check


def parse_members(raw: str, *, matrix: bool = False) -> tuple[str, ...]:
    """Usernames from comma/space separated ``raw``, case-folded, de-duplicated; with
    ``matrix``, Matrix user ids (``@bob:example.org``) or localparts of the account's
    homeserver (``bob``), kept as given but case-folded.

    Raises ``ValueError`` naming the first invalid username (docs/api.md: usernames are
    ``[a-z0-9_.-]{1,64}``, case-folded to lower).
    """
    names: list[str] = []
    for part in re.split(r"[,\s]+", raw.strip()):
        if not part:
            continue
        name = part.lower() if matrix and ":" in part else part.lstrip("@").lower()
        if not (MATRIX_USER if matrix else USERNAME).fullmatch(name):
            raise ValueError(f"not a valid username: {part[:64]!r}")
        if name not in names:
            names.append(name)
    return tuple(names)


class NewConversationScreen(ModalScreen["NewConversation | None"]):
    """Asks for a title and members or the assistant; Esc cancels, Enter creates.

    ``title``, ``members`` and ``assistant`` fill the fields in (a refused create being
    edited); ``heading`` is the box's title and ``reason`` (the server's refusal) shows
    in the error line from the start. ``check`` (a :data:`MemberCheck`) asks the server
    about the member names before the dialog closes (sync rule 3o): unknown names are
    named in the error line and nothing is returned; Esc still cancels meanwhile.
    ``matrix``: the account is a Matrix account, which has no assistant (the checkbox is
    shown disabled, saying why) and whose members are Matrix user ids.

    ``store`` (the account's cache: the saved model list) and ``refresh_models`` (an async
    callable asking the server for a fresh list) feed the model field, which starts at
    the server's default model. The model and the system prompt are shown while the
    assistant is ticked; ``settings=False`` leaves them out (a refused create being edited
    keeps the ones it had)."""

    DEFAULT_CSS = """
    NewConversationScreen {
        align: center middle;
        background: $background 60%;
    }
    #new-box {
        width: 64;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        overflow-y: auto;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    #new-error {
        height: auto;
    }
    #new-settings {
        height: auto;
    }
    #new-prompt {
        height: 5;
    }
    #new-buttons {
        height: auto;
        align-horizontal: right;
        margin-top: 1;
    }
    #new-buttons Button {
        margin-left: 2;
    }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, *, assistant: bool = True, title: str = "",
                 members: tuple[str, ...] = (), heading: str = "New conversation",
                 reason: str = "", check: MemberCheck | None = None,
                 matrix: bool = False, store: Cache | None = None,
                 refresh_models: Callable[[], Awaitable[Any]] | None = None,
                 settings: bool = True) -> None:
        super().__init__()
        self._matrix = matrix
        self._assistant = assistant and not matrix
        self._settings = settings and not matrix
        self._store = store
        self._refresh_models = refresh_models
        self._initial = (title, ", ".join(members))
        self._heading = heading
        self._reason = reason
        self._check = check
        self.checking = False
        """True while the server is being asked about the member names."""

    def compose(self):  # noqa: D102 - Textual hook
        with Vertical(id="new-box") as box:
            box.border_title = self._heading
            yield Label("Title")
            yield Input(self._initial[0], placeholder="e.g. Weekend plans", id="new-title",
                        max_length=200)
            if self._matrix:
                yield Checkbox("Talk to the assistant (needs a chat-tui server)", False,
                               id="new-assistant", disabled=True)
                yield Label("Members (Matrix user ids, or names on your homeserver)")
            else:
                yield Checkbox("Talk to the assistant", self._assistant, id="new-assistant")
                yield Label("Members (comma separated usernames)")
            yield Input(self._initial[1], placeholder="bob, carol", id="new-members")
            if self._settings:
                with Vertical(id="new-settings") as settings:
                    settings.display = self._assistant
                    yield Label("Model")
                    yield ModelField(self._store, refresh=self._refresh_models,
                                     id="new-model")
                    yield Label("System prompt (optional; empty: the server's own)")
                    yield TextArea("", id="new-prompt", soft_wrap=True,
                                   tab_behavior="focus", show_line_numbers=False)
            yield Static(Text(inert_line(self._reason, 300), style="bold red"), markup=False,
                         id="new-error")
            with Horizontal(id="new-buttons"):
                yield Button("Create", variant="primary", id="new-create")
                yield Button("Cancel", id="new-cancel")

    def on_mount(self) -> None:  # noqa: D102 - Textual hook
        for field in self.query("Input, TextArea"):
            field.cursor_blink = False  # as the composer: less motion, stable screenshots
        self.query_one("#new-title", Input).focus()
        # A box taller than the screen (60x20) starts at its top, the title's label shown.
        self.call_after_refresh(self.query_one("#new-box").scroll_home, animate=False)

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        """The model and the system prompt show while the assistant is ticked."""
        if event.checkbox.id == "new-assistant":
            for box in self.query("#new-settings"):
                box.display = event.value

    def _assistant_settings(self) -> tuple[str | None, str | None]:
        """``(model, system_prompt)`` of the fields (None: the server's own).

        Raises ValueError for a system prompt over its limit (docs/api.md)."""
        if not self._settings:
            return None, None
        model = self.query_one("#new-model", ModelField).value
        prompt = self.query_one("#new-prompt", TextArea).text
        if len(prompt) > MAX_SYSTEM_PROMPT_CHARS:
            raise ValueError(f"The system prompt has {len(prompt):,} characters; at most "
                             f"{MAX_SYSTEM_PROMPT_CHARS:,} fit.")
        return model or None, prompt if prompt.strip() else None

    def _error(self, message: str, style: str = "bold red") -> None:
        self.query_one("#new-error", Static).update(Text(message, style=style))

    def submit(self) -> None:
        """Validate; with members and a ``check``, ask the server about them first
        (:meth:`_check_members`); dismiss with a :class:`NewConversation` or show what is
        wrong."""
        if self.checking:
            return
        title = self.query_one("#new-title", Input).value.strip()
        assistant = self.query_one("#new-assistant", Checkbox).value
        try:
            members = parse_members(self.query_one("#new-members", Input).value,
                                    matrix=self._matrix)
        except ValueError as exc:
            self._error(str(exc))
            return
        if not title:
            title = "Assistant" if assistant and not members else ", ".join(members)[:200]
        if not title:
            self._error("Add members and a title." if self._matrix else
                        "Give a title, pick the assistant, or add members.")
            return
        if not assistant and not members:
            self._error("Add at least one member." if self._matrix else
                        "Add at least one member, or tick the assistant.")
            return
        model = prompt = None
        if assistant:
            try:
                model, prompt = self._assistant_settings()
            except ValueError as exc:
                self._error(str(exc))
                return
        result = NewConversation(title[:200], members, assistant, model=model,
                                 system_prompt=prompt)
        if members and self._check is not None:
            self.checking = True
            self.query_one("#new-create", Button).disabled = True
            self._error("Checking the member names with the server\u2026", style="dim")
            self.run_worker(self._check_members(result), group="members", exclusive=True,
                            exit_on_error=False)
            return
        self.dismiss(result)

    async def _check_members(self, result: NewConversation) -> None:
        """Sync rule 3o: unknown names keep the dialog open, named; known ones (or no
        answer: queued unchecked) close it with ``result``."""
        assert self._check is not None
        try:
            unknown = await self._check(result.members)
        finally:
            self.checking = False
            if self.is_attached:  # not cancelled with the dialog (Esc)
                self.query_one("#new-create", Button).disabled = False
        if unknown:
            plural = "s" if len(unknown) > 1 else ""
            names = inert_line(", ".join(unknown), 200)
            self._error(f"Unknown member{plural}: {names}. Nothing was created - change "
                        "the names, or Esc to cancel.")
            self.query_one("#new-members", Input).focus()
            return
        self.dismiss(replace(result, checked=unknown is not None))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in either field creates."""
        event.stop()
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Create or Cancel."""
        if event.button.id == "new-create":
            self.submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        """Close without creating."""
        self.dismiss(None)
