"""The assistant's side of the database, one part per job (the behaviour is described in
:mod:`chat_tui.server.assistant`):

- :mod:`.assistant_work`: what the assistant owes (unanswered messages, regenerated
  replies waiting, the conversations with either);
- :mod:`.assistant_leases`: the leases that give each conversation's replies to exactly
  one server process;
- :mod:`.assistant_replies`: what a reply sees and its writes;
- :mod:`.regenerations`: a regenerated reply asked for.

:class:`AssistantJobs` holds one of each over one database.
"""

from __future__ import annotations

from peewee import Database

from chat_tui.server.data.assistant_leases import AssistantLeases, LeaseLost
from chat_tui.server.data.assistant_replies import AssistantReplies
from chat_tui.server.data.assistant_work import REPLY_NAMESPACE, AssistantWork, reply_id_for
from chat_tui.server.data.base import Names
from chat_tui.server.data.regenerations import Regenerations
from chat_tui.server.data.users import Users

__all__ = ["REPLY_NAMESPACE", "AssistantJobs", "LeaseLost", "reply_id_for"]


class AssistantJobs:
    """The assistant's data access over ``db``: ``work`` (:class:`AssistantWork`),
    ``leases`` (:class:`AssistantLeases`), ``replies`` (:class:`AssistantReplies`) and
    ``regenerations`` (:class:`Regenerations`)."""

    def __init__(self, db: Database, names: Names, users: Users) -> None:
        self.db = db
        self.work = AssistantWork(db, names, users)
        self.leases = AssistantLeases(db, names, self.work)
        self.replies = AssistantReplies(db, names, users, self.leases)
        self.regenerations = Regenerations(db, names, users)
