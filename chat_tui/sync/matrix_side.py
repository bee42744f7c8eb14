"""What the engine adds for a Matrix account (docs/sync.md, Matrix rules M3, M4): the
durable id store the Matrix backend reads and writes through the database worker
(:class:`CacheIds`), the invites and encrypted rooms kept in the cache after each sync
(:meth:`CacheIds.after_sync`), published as ``InvitesChanged`` and
``ConversationsChanged``, and the engine's backend choice and Matrix actions
(:class:`MatrixAccount`, a part of :class:`chat_tui.sync.engine.Engine`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from peewee import DatabaseError

from chat_tui.api.backends import MATRIX, make_backend
from chat_tui.sync.events import ConversationsChanged, InvitesChanged

if TYPE_CHECKING:
    from chat_tui.api.backend import Backend
    from chat_tui.config import Settings
    from chat_tui.store import Cache
    from chat_tui.sync.bus import EventBus
    from chat_tui.sync.gate import Gate
    from chat_tui.sync.puller import Puller
    from chat_tui.sync.worker import DbWorker

log = logging.getLogger(__name__)


class CacheIds:
    """A :class:`chat_tui.api.matrix.core.IdStore` on the account's cache (rule M4).
    Lookups run on the database worker (sync rule D3); what is learned is written there
    without waiting, queued before the write of the answer that taught it."""

    def __init__(self, store: Cache, worker: DbWorker, bus: EventBus):
        self._store = store
        self._worker = worker
        self._bus = bus
        self._invites: list[dict[str, str]] | None = None

    async def lookup_event(self, mid: str) -> tuple[str, str, int] | None:
        """``(room id, event id, seq)`` of message ``mid`` from the cache, or None."""
        return await self._worker.run(self._store.remote_event, mid)

    async def lookup_message(self, event_id: str) -> str | None:
        """The message id of ``event_id`` from the cache, or None."""
        return await self._worker.run(self._store.remote_message_id, event_id)

    async def lookup_room(self, cid: str) -> str | None:
        """The room id of conversation ``cid`` from the cache, or None."""
        return await self._worker.run(self._store.remote_room, cid)

    async def lookup_conversation(self, room_id: str) -> str | None:
        """The conversation id of ``room_id`` from the cache, or None."""
        return await self._worker.run(self._store.remote_conversation_id, room_id)

    async def lookup_places(self, cid: str, event_ids: list[str]) -> tuple[int, dict[str, int]]:
        """The highest seq of conversation ``cid``'s cached messages and the seq kept for
        each known event of ``event_ids``, from the cache (rule M5)."""
        return await self._worker.run(self._store.remote_places, cid, event_ids)

    def learned(self, rooms: dict[str, tuple[str, bool]],
                events: dict[str, tuple[str, str, int]]) -> None:
        """Write ``rooms`` and ``events`` on the worker (a failed write is logged: the
        ids are learned again from the server); a room that turned out encrypted
        publishes ``ConversationsChanged`` so the app marks it (rule M3)."""
        rooms, events = dict(rooms), dict(events)
        store, bus = self._store, self._bus
        encrypted = tuple(cid for cid, (_room, enc) in rooms.items() if enc)

        def save() -> None:
            try:
                store.save_remote_ids(rooms, events)
            except DatabaseError as exc:
                log.warning("could not keep %d Matrix id(s): %s", len(rooms) + len(events),
                            exc)
                return
            if encrypted:
                bus.emit(ConversationsChanged(encrypted))

        self._worker.submit(save)

    async def after_sync(self, api: Any) -> None:
        """Keep the backend's pending invites (``api.invites``) in the cache when they
        changed, and publish them (``InvitesChanged``)."""
        invites = sorted(({"room_id": i.room_id, "inviter": i.inviter, "name": i.name}
                          for i in getattr(api, "invites", {}).values()),
                         key=lambda row: row["room_id"])
        if self._invites is None:
            self._invites = await self._worker.run(self._store.invites)
        if invites == self._invites:
            return
        await self._save(invites)

    async def drop_invite(self, room_id: str) -> None:
        """Forget the invite to ``room_id`` (answered) and publish the rest."""
        invites = await self._worker.run(self._store.invites)
        await self._save([i for i in invites if i["room_id"] != room_id])

    async def _save(self, invites: list[dict[str, str]]) -> None:
        await self._worker.run(self._store.save_invites, invites)
        self._invites = invites
        self._bus.emit(InvitesChanged(tuple(invites)))


class MatrixAccount:
    """The engine's part that knows the kind of server (a base of
    :class:`chat_tui.sync.engine.Engine`, which sets the attributes below)."""

    kind: str
    base_url: str
    store: Cache
    settings: Settings
    _user_id: str
    _token: str | None
    _api: Backend | None
    _matrix: CacheIds | None
    _gate: Gate
    _worker: DbWorker
    _bus: EventBus
    _puller: Puller

    async def open(self) -> None:  # the engine's
        raise NotImplementedError

    @property
    def is_matrix(self) -> bool:
        """True for a Matrix account: no assistant, models, stop or regenerate; invites
        and encrypted rooms (docs/sync.md, Matrix)."""
        return self.kind == MATRIX

    def _backend(self) -> Backend:
        """A new client of this account's server (:func:`chat_tui.api.backends.make_backend`);
        a Matrix client keeps its ids in the cache (rule M4) and starts with the pending
        invites the cache holds."""
        if self.is_matrix and self._matrix is None:
            self._matrix = CacheIds(self.store, self._worker, self._bus)
            self._puller.after_sync = self._matrix.after_sync
            self._puller.seq_is_order = False  # rules S5, M5
        api = make_backend(self.kind, self.base_url, self._token, user_id=self._user_id,
                           ids=self._matrix, timeout=self.settings.request_timeout,
                           probe_timeout=self.settings.probe_timeout)
        if self.is_matrix and self.store.is_open:
            # A delta sync names only new invites: the pending ones come from the cache.
            from chat_tui.api.matrix import Invite

            self.store.ensure_open()
            for row in self.store.invites():
                api.invites[row["room_id"]] = Invite(  # type: ignore[attr-defined]
                    row["room_id"], row.get("inviter", ""), row.get("name", ""))
        return api

    def invites(self) -> list[dict[str, str]]:
        """A Matrix account's pending invites as of the last sync, from the cache:
        ``[{"room_id", "inviter", "name"}]`` (empty for a chat-tui account)."""
        self.store.ensure_open()
        return self.store.invites()

    def encrypted_conversations(self) -> set[str]:
        """The conversations that are encrypted Matrix rooms, shown as such and never
        written to (rule M3)."""
        self.store.ensure_open()
        return self.store.encrypted_conversations()

    def _refuse_encrypted(self, conversation_id: str) -> None:
        """Rule M3: nothing is queued for an encrypted Matrix room.

        Raises:
            StoreError: ``conversation_id`` is an encrypted room.
        """
        if self.is_matrix and conversation_id in self.store.encrypted_conversations():
            from chat_tui.store import StoreError

            raise StoreError("this room is end-to-end encrypted, which chat-tui does not "
                             "support yet: nothing was sent")

    async def answer_invite(self, room_id: str, accept: bool) -> None:
        """Accept (join) or decline (leave) the invite to ``room_id``; an accepted room
        arrives as a conversation with the next sync. Publishes ``InvitesChanged``.

        Raises:
            chat_tui.api.ApiError: not a Matrix account (PermanentError), working offline
            or unreachable (TransientError), or the homeserver refused.
        """
        from chat_tui.api import PermanentError, TransientError

        if not self.is_matrix:
            raise PermanentError("invites are a Matrix feature", 501, "unsupported")
        if self._gate.work_offline:
            raise TransientError("working offline", reached_server=False)
        await self.open()
        api: Any = self._api or self._backend()  # a MatrixClient
        try:
            await (api.join(room_id) if accept else api.decline(room_id))
            api.invites.pop(room_id, None)
            assert self._matrix is not None
            await self._matrix.drop_invite(room_id)
        finally:
            if api is not self._api:
                await api.aclose()



__all__ = ["CacheIds", "MatrixAccount"]
