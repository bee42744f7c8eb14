"""The chat screen's answers to actions that wait for the user (docs/sync.md, outbox
rule 3), whatever their kind: shown in the :class:`~chat_tui.ui.widgets.problems.ProblemPanel`
above the composer with the server's reason, and retried, edited or discarded from there
(ctrl+b, then ``r``/``e``/``x``/``a``), from the command palette, and by ctrl+r / ``x``
when no message is the target.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from chat_tui.ui.widgets.problems import ProblemPanel

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.store import OutboxProblem

__all__ = ["ProblemActions"]

log = logging.getLogger(__name__)


class ProblemActions:
    """Mixin of :class:`~chat_tui.ui.screens.chat.ChatScreen` (before
    :class:`~chat_tui.ui.screens.chat_actions.MessageActions`, whose ``action_retry`` and
    ``action_discard`` it extends to actions that belong to no message)."""

    _problem_panel: ProblemPanel | None = None

    # ------------------------------------------------------------------ showing
    @property
    def problem_panel(self) -> ProblemPanel:
        """The panel (created on first use, mounted when there is something to show)."""
        if self._problem_panel is None:
            self._problem_panel = ProblemPanel(id="problems")
        return self._problem_panel

    def problems_here(self) -> list[OutboxProblem]:
        """The open conversation's failed, blocked and expired actions, in outbox order
        (``Cache.problems``; read markers are not the user's to answer)."""
        cid = self.current_id
        if cid is None:
            return []
        return [p for p in self.store.problems() if p.conversation_id == cid]

    def update_problems(self) -> None:
        """Re-read the open conversation's problems into the panel, mounting it above the
        composer the first time there is one."""
        if not self._ready():
            return
        problems = self.problems_here()
        panel = self.problem_panel
        if not panel.is_attached:
            if not problems:
                return
            chat = self.query_one("#chat")
            if self.composer is not None and self.composer.parent is chat:
                chat.mount(panel, before=self.composer)
            else:
                chat.mount(panel)
        panel.show(problems)
        if not problems and panel.has_focus:
            self.action_focus_composer()

    def _chosen_problem(self) -> OutboxProblem | None:
        panel = self._problem_panel
        if panel is not None and panel.is_attached and panel.problems:
            return panel.selected_problem()
        problems = self.problems_here()
        return problems[0] if problems else None

    def _nothing_here(self) -> None:
        self.app.notify("Nothing waits for you in this conversation: no failed, blocked "
                        "or expired action.")

    # ------------------------------------------------------------------ keys and palette
    def action_focus_problems(self) -> None:
        """Focus the panel of this conversation's failed, blocked or expired actions."""
        self.update_problems()
        panel = self._problem_panel
        if panel is None or not panel.problems:
            self._nothing_here()
            return
        panel.focus()

    def action_retry_problem(self) -> None:
        """Retry the chosen action; for a blocked one, the failed action that blocks it
        (an expired one is sent anyway)."""
        problem = self._chosen_problem()
        if problem is None:
            self._nothing_here()
            return
        if problem.state == "blocked":
            problem = next((p for p in self.problems_here()
                            if p.state in ("failed", "expired")), problem)
        if problem.state == "expired":
            self._send_anyway(problem)
            return
        if problem.state != "failed":
            self.app.notify("This action waits for the one before it; nothing to retry.")
            return
        oid = problem.outbox_id
        self.engine_call("Not retried", lambda e: e.retry_action(oid))
        self.update_problems()

    def action_send_anyway_problem(self) -> None:
        """Send the chosen expired message anyway (outbox rule 6)."""
        problem = self._chosen_problem()
        if problem is None or problem.state != "expired":
            self.app.notify("No expired message selected.")
            return
        self._send_anyway(problem)

    def _send_anyway(self, problem: OutboxProblem) -> None:
        mid = problem.message_id
        if mid is None:
            oid = problem.outbox_id
            self.engine_call("Not sent", lambda e: e.retry_action(oid))
        else:
            self.engine_call("Not sent", lambda e: e.send_anyway(mid))
        self.update_problems()

    def action_discard_problem(self) -> None:
        """Discard the chosen action (``Engine.discard_action``) once the user confirms
        it in a :class:`~chat_tui.ui.screens.confirm.ConfirmScreen` that names what goes
        (a stray ``x`` discards nothing). Any text it held goes back to the composer. A
        discarded conversation create removes the conversation and what waited behind it;
        their text goes to the next conversation's composer as a draft (nothing was sent,
        nothing typed is lost)."""
        from chat_tui.ui.screens.confirm import ConfirmScreen

        problem = self._chosen_problem()
        if problem is None:
            self._nothing_here()
            return
        question, detail = self._discard_question(problem)
        panel = self._problem_panel
        back_to_panel = panel is not None and panel.has_focus

        def answered(yes: bool | None) -> None:
            if yes:
                self._discard_problem(problem)
            elif back_to_panel and panel is not None and panel.is_attached:
                panel.focus()

        self.app.push_screen(ConfirmScreen(question, detail, action="Discard"), answered)

    def _discard_question(self, problem: OutboxProblem) -> tuple[str, str]:
        """The confirmation's question and detail line for discarding ``problem``: what
        is removed (for a conversation create, also the actions waiting behind it) and
        where any text goes."""
        from chat_tui.ui.widgets.problems import describe

        if problem.kind == "create_conversation":
            conv = self.store.get_conversation(problem.conversation_id)
            title = conv.title if conv is not None else ""
            behind = [p for p in self.problems_here()
                      if p.outbox_id != problem.outbox_id and p.kind != "read"]
            what = f'the new conversation "{title}"' if title else "the new conversation"
            if behind:
                sends = sum(p.kind == "send" for p in behind)
                noun = "message" if sends == 1 else "messages"
                parts = [f"{sends} {noun}"] if sends else []
                if len(behind) > sends:
                    rest = len(behind) - sends
                    parts.append(f"{rest} other change" + ("" if rest == 1 else "s"))
                what += f" and the {' and '.join(parts)} waiting behind it"
            return (f"Discard {what}? Nothing of it was sent; any text goes to the "
                    "composer.", describe(problem))
        names = {"send": "this unsent message", "edit": "this unsent edit",
                 "delete": "this unsent delete", "read": "this read marker"}
        what = names.get(problem.kind, "this action")
        tail = " Its text goes to the composer." if problem.kind in ("send", "edit") else ""
        return f"Discard {what}?{tail}", describe(problem)

    def _discard_problem(self, problem: OutboxProblem) -> None:
        oid, cid = problem.outbox_id, problem.conversation_id
        text: Any = self.engine_call("Not discarded", lambda e: e.discard_action(oid))
        if text is None:
            return
        if problem.kind == "create_conversation":
            self._after_create_discarded(cid, text)
            return
        self._text_to_composer(text)
        self.update_problems()

    def _after_create_discarded(self, cid: str, text: str) -> None:
        nxt = next((c.id for c in self.store.list_conversations(limit=2) if c.id != cid), None)
        if text and nxt is not None:
            draft = self.store.get_draft(nxt)
            merged = text if draft is None or not draft.text else draft.text + "\n" + text
            lines = merged.split("\n")  # the cursor after the text: typing goes on from it
            self.store.save_draft(nxt, merged, (len(lines) - 1, len(lines[-1])))
        if self.composer is not None:
            self.composer.set_draft("", None)
        self.refresh_conversations()
        if text and nxt is None and self.composer is not None:
            self.composer.set_draft(text, None)
        self.update_problems()
        self.app.notify("New conversation discarded; nothing was sent."
                        + (" Its text is in the composer." if text else ""))
        self.action_focus_composer()

    def _text_to_composer(self, text: str) -> None:
        composer = self.composer
        if not text or composer is None:
            return
        if not composer.text.strip():
            composer.set_draft(text, None)
        composer.focus()

    def action_edit_problem(self) -> None:
        """Edit the chosen action: a conversation create reopens the new-conversation
        dialog filled in, and is queued again as changed; a message's action goes back to
        the composer (a send: its text, to send again with Enter; an edit: editing the
        message again); a delete or read marker has nothing to edit (says so)."""
        problem = self._chosen_problem()
        if problem is None:
            self._nothing_here()
            return
        if problem.kind == "create_conversation":
            self._edit_create(problem)
            return
        if problem.kind not in ("send", "edit") or problem.message_id is None:
            self.app.notify("This action has no text to edit: retry or discard it.")
            return
        mid, oid, kind = problem.message_id, problem.outbox_id, problem.kind
        text: Any = self.engine_call("Not changed", lambda e: e.discard_action(oid))
        if text is None or self.composer is None:
            return
        if kind == "edit" and self.store.get_message(mid) is not None:
            self.composer.start_editing(mid, text)
        else:
            self._text_to_composer(text)
        self.composer.focus()
        self.update_problems()

    def _edit_create(self, problem: OutboxProblem) -> None:
        from chat_tui.ui.screens.new_conversation import (
            NewConversationScreen,
            server_member_check,
        )

        row = self.store.outbox_row(problem.outbox_id) or {}
        payload = json.loads(row.get("payload") or "{}")
        me = self.store.me
        members = tuple(m for m in payload.get("members", []) if m != me)
        oid = problem.outbox_id

        def changed(result: Any) -> None:
            if result is None:
                return
            self.engine_call("Not changed", lambda e: e.update_create_conversation(
                oid, result.title, result.members, assistant=result.assistant),
                errors=(Exception,))
            self.refresh_conversations()
            self.update_problems()
            self.action_focus_composer()

        self.app.push_screen(NewConversationScreen(
            assistant=bool(payload.get("assistant")), title=payload.get("title", ""),
            members=members, heading="Change the new conversation",
            reason=problem.reason, check=server_member_check(self),
            matrix=getattr(self.app, "is_matrix", False), settings=False), changed)

    # ------------------------------------------------------------------ ctrl+r, x
    def action_retry(self) -> None:
        """Retry a failed message (the selected one, else the first failed one here), else
        this conversation's first waiting action of any kind (a conversation create), else
        a failed assistant reply (the selected one, else the last one here: asked again,
        as regenerate does, sync rule 10)."""
        if self._problem_id(("failed",)) is not None:
            super().action_retry()
        elif self.problems_here():
            self.action_retry_problem()
        elif self.failed_reply() is not None:  # type: ignore[attr-defined]
            self.action_regenerate()  # type: ignore[attr-defined]
        else:
            super().action_retry()

    def action_discard(self) -> None:
        """Discard an unsent message (its text back to the composer), else this
        conversation's first waiting action of any kind."""
        if self._problem_id(("failed", "expired", "queued", "blocked")) is not None:
            super().action_discard()
        elif self.problems_here():
            self.action_discard_problem()
        else:
            super().action_discard()
