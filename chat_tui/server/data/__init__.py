"""The server's data access, one module per resource over one peewee ``Database``.

:class:`ServerDB` holds one repository per resource, sharing the username cache:
``users`` (:mod:`.users`), ``conversations`` (:mod:`.conversations`), ``messages``
(:mod:`.messages`, read markers included), ``sync`` (:mod:`.sync`), ``assistant_jobs``
(:mod:`.assistant_jobs`: the assistant's work, leases, replies and regenerations, one
module each), ``memberships`` (:mod:`.memberships`: leave, add and remove
members) and ``imports`` (:mod:`.imports`). Rows become wire objects in
:mod:`.shape` only. Writers report a :class:`Write`; routes pick the HTTP status.
"""

from __future__ import annotations

from peewee import Database

from chat_tui.server.data.assistant_jobs import AssistantJobs
from chat_tui.server.data.base import Names, Principal, Write, normalize_username
from chat_tui.server.data.conversations import Conversations
from chat_tui.server.data.imports import Imports
from chat_tui.server.data.memberships import Memberships
from chat_tui.server.data.messages import Messages
from chat_tui.server.data.sync import Sync
from chat_tui.server.data.users import Users


class ServerDB:
    """The server's database (thread safe): one repository per resource.

    Args:
        db: an open, migrated peewee database (``chat_tui.server.db.open_and_migrate``).
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        names = Names()
        self.users = Users(db, names)
        self.conversations = Conversations(db, names)
        self.messages = Messages(db, names)
        self.sync = Sync(db, names, self.conversations)
        self.assistant_jobs = AssistantJobs(db, names, self.users)
        self.imports = Imports(db, names)
        self.memberships = Memberships(db, names, self.conversations)


__all__ = ["Names", "Principal", "ServerDB", "Write", "normalize_username"]
