"""The chat screen's actions on the open conversation as a whole (sync rules 9 and 11):
open its menu (:mod:`chat_tui.ui.screens.conversation_menu`, imported on first use) and
apply what the user changed there, or leave it after a confirmation. Every change is a
queued engine action: it shows at once and works offline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.ui.screens.conversation_menu import MenuResult

__all__ = ["ConversationMenuActions"]


class ConversationMenuActions:
    """Mixin of :class:`~chat_tui.ui.screens.chat.ChatScreen`: the conversation menu and
    leaving a conversation. Uses the screen's ``current_conversation``, ``store``,
    ``app`` and ``engine_call``."""

    current_conversation: Any
    store: Any
    app: Any

    def action_conversation_menu(self) -> None:
        """Open the menu of the open conversation; apply what the user changed."""
        view = self.current_conversation
        if view is None:
            self.app.notify("Open a conversation first.")
            return
        me = self.store.me
        cid = view.id
        creator = self.engine_call(  # type: ignore[attr-defined]
            "Not opened", lambda e: e.store.creator_of(cid))
        if creator is None:
            return  # the engine is not there yet (the call said so)

        def chosen(result: MenuResult | None) -> None:
            if result is None:
                return
            if result.leave:
                self.action_leave_conversation()
                return
            call = self.engine_call  # type: ignore[attr-defined]
            if result.changes:
                call("Not changed", lambda e: e.update_conversation(cid, **result.changes))
            for name in result.add:
                call(f"{name} not added", lambda e, n=name: e.add_member(cid, n))
            for name in result.remove:
                call(f"{name} not removed", lambda e, n=name: e.remove_member(cid, n))

        from chat_tui.ui.screens.conversation_menu import ConversationMenuScreen

        self.app.push_screen(ConversationMenuScreen(
            view, me, creator == me, store=self.store,
            refresh_models=getattr(self.app, "refresh_model_list", None),
            matrix=getattr(self.app, "is_matrix", False)), chosen)

    def action_leave_conversation(self) -> None:
        """Leave (delete from my list) the open conversation, once confirmed; with no one
        else in it, it is gone for everyone."""
        from chat_tui.ui.screens.confirm import ConfirmScreen

        view = self.current_conversation
        if view is None:
            self.app.notify("Open a conversation first.")
            return
        cid = view.id
        others = [m for m in view.members if m not in (self.store.me, "assistant")]
        question = ("Leave this conversation? It stays for the others."
                    if others else "Delete this conversation for good?")

        def answered(yes: bool | None) -> None:
            if yes:
                self.engine_call("Not left",  # type: ignore[attr-defined]
                                 lambda e: e.leave_conversation(cid))

        self.app.push_screen(ConfirmScreen(question, view.title, action="Leave"), answered)
