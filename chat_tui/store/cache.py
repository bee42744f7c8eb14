"""The account cache: one SQLite file, its read API for the UI and its write API for the
engine (docs/engine.md has the read API, docs/sync.md the rules each write implements).

:class:`Cache` is composed of one part per job, each in its own module:

- :mod:`~chat_tui.store.cachefile`: the file's lifecycle, write transactions (sync rule
  D1), durability settings, the clean stamp and recovery of an unreadable file (D4);
- :mod:`~chat_tui.store.reads`: the UI's read model (conversations, message windows,
  backfill state, search);
- :mod:`~chat_tui.store.ui_state`: drafts and UI state kept across runs;
- :mod:`~chat_tui.store.outbox_queue`: the outbox's per-conversation queues (due heads,
  blocked actions, counts, problems, expiry);
- :mod:`~chat_tui.store.outbox`: the user's changes (send, edit, delete, read, create);
- :mod:`~chat_tui.store.outbox_answers`: the user's answers to waiting actions (retry,
  send anyway, discard, editing a refused create);
- :mod:`~chat_tui.store.outbox_conversation`: changes of a conversation's title, model and
  system prompt;
- :mod:`~chat_tui.store.outbox_replies`: regenerating an assistant reply;
- :mod:`~chat_tui.store.acks`: the drain's bookkeeping (``sending``, attempt outcomes,
  acknowledgements);
- :mod:`~chat_tui.store.apply`: sync responses, backfill pages and gaps;
- :mod:`~chat_tui.store.retention`: retention, the ``410`` reset and export;
- :mod:`~chat_tui.store.remote_ids`: a Matrix account's ids and invites.
"""

from __future__ import annotations

from chat_tui.store.acks import DrainAcks
from chat_tui.store.apply import SyncApply
from chat_tui.store.outbox import OutboxChanges
from chat_tui.store.outbox_answers import OutboxAnswers
from chat_tui.store.outbox_conversation import ConversationChanges
from chat_tui.store.outbox_queue import OutboxQueue
from chat_tui.store.outbox_replies import ReplyChanges
from chat_tui.store.reads import ReadModel
from chat_tui.store.remote_ids import RemoteIds
from chat_tui.store.retention import Retention
from chat_tui.store.ui_state import SavedUIState


class Cache(ReadModel, SavedUIState, OutboxQueue, OutboxChanges, OutboxAnswers,
            ConversationChanges, ReplyChanges, DrainAcks, SyncApply, Retention, RemoteIds):
    """The cache of one account, in the SQLite file ``path``.

    Create with ``Cache(path, me, user_id=..., server_url=...)`` and call :meth:`open`
    (the engine does it on its worker thread: it may migrate). ``me`` is the account's
    username (docs/api.md). Holds no state of its own: every method comes from one of the
    parts listed in this module's docstring, which share the file, its models and its
    write lock through :class:`~chat_tui.store.cachefile.CacheFile`.

    Raises (from :meth:`open`):
        SchemaTooNew: the file comes from a newer version.
    """


__all__ = ["Cache"]
