"""One message on screen: author, time, markers, own-message state, body.

Bodies are untrusted text: they are made inert with
:mod:`chat_tui.ui.safe_text` and only ever placed in :class:`rich.text.Text` objects.
Assistant replies render as Markdown (Rich's renderer, code blocks highlighted) once
:func:`enable_markdown` has run; before that (the first frame, which must not import the
Markdown stack) they show as plain text and are upgraded in place. The Markdown stack
(``rich.markdown``, markdown-it, Pygments: ~50 ms, ~1.5-3 MB) is imported by the first
assistant reply rendered after that, never when none is on screen.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.text import Text
from textual.widgets import Static

from chat_tui.ui.clock import Clock, format_day, format_time
from chat_tui.ui.safe_text import inert, inert_line

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.store import MessageView

__all__ = [
    "ASSISTANT",
    "CachedAnswer",
    "MessageItem",
    "STATE_BADGES",
    "enable_markdown",
    "markdown_enabled",
    "render_message",
]

ASSISTANT = "assistant"
"""Username of the built-in assistant (docs/api.md: members include "assistant")."""

STATE_BADGES: dict[str, tuple[str, str]] = {
    # state: (label, Rich style) for our own messages
    "queued": ("\u25f7 queued", "yellow"),
    "sending": ("\u2191 sending", "cyan"),
    "sent": ("\u2713 sent", "green dim"),
    "read": ("\u2713\u2713 read", "green"),
    "failed": ("\u2717 failed", "bold red"),
    "blocked": ("\u23f8 blocked behind a failed action", "red"),
    "expired": ("\u231b expired", "magenta"),
}

_AUTHOR_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "bright_red", "bright_cyan")

_markdown_allowed = False
_markdown_cls: Any = None


def enable_markdown() -> None:
    """Let assistant replies render as Markdown from now on.

    Called after the first frame (off the first-frame path). Imports
    nothing itself: Rich's Markdown renderer is imported by the first assistant reply
    rendered afterwards (:func:`markdown_class`), so a screen without one never pays for it.
    """
    global _markdown_allowed
    _markdown_allowed = True


def markdown_enabled() -> bool:
    """True once :func:`enable_markdown` has run."""
    return _markdown_allowed


def markdown_class() -> Any:
    """``rich.markdown.Markdown``, imported on first use (about 50 ms the first time)."""
    global _markdown_cls
    if _markdown_cls is None:
        from rich.markdown import Markdown

        _markdown_cls = Markdown
    return _markdown_cls


def author_style(author: str, mine: bool) -> str:
    """A stable Rich style for ``author`` (bold, colour from a hash; ours is plain bold)."""
    if mine:
        return "bold"
    if author == ASSISTANT:
        return "bold bright_magenta"
    return "bold " + _AUTHOR_COLOURS[zlib.crc32(author.encode()) % len(_AUTHOR_COLOURS)]


def render_header(view: MessageView, clock: Clock) -> Text:
    """The first line of a message: author, time, the model of an assistant reply,
    edited/deleted/stopped markers, state badge."""
    header = Text(no_wrap=True, overflow="ellipsis")
    header.append(inert_line(view.author, 40) or "?", style=author_style(view.author, view.mine))
    when = format_time(view.created_at, clock)
    if when:
        header.append("  " + when, style="dim")
    if view.edited and not view.deleted:
        header.append("  (edited)", style="dim italic")
    if view.deleted:
        header.append("  (deleted)", style="dim italic")
    if view.model and view.author == ASSISTANT:
        header.append("  " + inert_line(view.model, 40), style="magenta")
    if view.streaming:
        header.append("  \u2026 writing", style="italic bright_magenta")
    if view.stopped:
        header.append("  \u23f9 stopped", style="yellow")
    if view.error:
        header.append("  \u2717 reply failed", style="bold red")
    if view.mine and view.state:
        label, style = STATE_BADGES.get(view.state, (view.state, "dim"))
        header.append("  " + label, style=style)
    return header


def render_problem(view: MessageView) -> Text | None:
    """For a failed or expired own message: the server's reason and the keys that act on
    it (retry, send anyway, discard); None otherwise."""
    if not view.mine or view.state not in ("failed", "expired"):
        return None
    line = Text(overflow="fold")
    if view.state == "failed":
        line.append(inert_line(view.failure_reason or "the server refused it", 200), style="red")
        line.append("  \u00b7 ctrl+r retry \u00b7 x discard", style="dim")
    else:
        line.append("not sent in time", style="magenta")
        line.append("  \u00b7 a send anyway \u00b7 x discard", style="dim")
    return line


def render_body(view: MessageView) -> RenderableType:
    """The body: inert text, or Markdown for assistant replies (when enabled)."""
    if view.deleted:
        return Text("message deleted", style="dim italic")
    body = inert(view.body)
    if view.author == ASSISTANT and _markdown_allowed:
        # Markdown source is inert text: no control character survives into the output,
        # hyperlinks are shown as text (no OSC 8 sequences with untrusted targets).
        if view.streaming:
            body += " \u258d"
        return markdown_class()(body, code_theme="monokai", hyperlinks=False)
    text = Text(body)
    if view.streaming:
        text.append(" \u258d", style="bright_magenta")
    return text


def render_message(view: MessageView, clock: Clock) -> RenderableType:
    """Header (and problem line) and body of ``view`` as one Rich renderable."""
    problem = render_problem(view)
    if problem is None:
        return Group(render_header(view, clock), render_body(view))
    return Group(render_header(view, clock), problem, render_body(view))


class MessageItem(Static):
    """A message in the list. ``view`` is the store's ``MessageView`` shown right now."""

    DEFAULT_CSS = """
    MessageItem { height: auto; }
    """

    def __init__(self, view: MessageView, clock: Clock) -> None:
        self.view = view
        self._clock = clock
        self._markdown = markdown_enabled()
        super().__init__(render_message(view, clock), markup=False, classes=self._classes_for(view))

    @staticmethod
    def _classes_for(view: MessageView) -> str:
        classes = ["-mine" if view.mine else "-theirs"]
        if view.author == ASSISTANT:
            classes.append("-assistant")
        if view.mine and view.state:
            classes.append(f"-state-{view.state}")
        if view.deleted:
            classes.append("-deleted")
        return " ".join(classes)

    def show(self, view: MessageView, *, force: bool = False) -> None:
        """Re-render with a newer ``view`` of the same message (no-op when unchanged)."""
        upgrade = self._markdown != markdown_enabled() and view.author == ASSISTANT
        if view == self.view and not force and not upgrade:
            return
        self.view = view
        self._markdown = markdown_enabled()
        self.set_classes(self._classes_for(view) + (" -selected" if self.has_class("-selected") else ""))
        self.update(render_message(view, self._clock))


class CachedAnswer(Static):
    """An earlier assistant answer shown below a question asked while offline.

    Labelled "cached answer from <date> by <model>" (the model when the reply names it); it is
    UI state only, never stored as a message.
    """

    DEFAULT_CSS = """
    CachedAnswer {
        margin: 0 0 1 4;
        padding: 0 1;
        border: round $secondary;
        border-title-color: $text-secondary;
        border-subtitle-color: $text-muted;
        color: $text-muted;
    }
    """

    def __init__(self, question_id: str, answer: MessageView, clock: Clock) -> None:
        self.question_id = question_id
        self.answer = answer
        super().__init__(render_body(answer), markup=False, classes="cached-answer")
        model = f" by {inert_line(answer.model, 40)}" if answer.model else ""
        self.border_title = (f"cached answer from {format_day(answer.created_at, clock)}"
                             f"{model}")
        self.border_subtitle = "offline: your question waits in the outbox"

    def rerender(self) -> None:
        """Render the answer again (e.g. once Markdown is available)."""
        self.update(render_body(self.answer))
