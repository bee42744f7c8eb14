"""Conversations: create, list, and their wire shape for one caller (docs/api.md,
Conversation, ``PUT /v1/conversations/{cid}``, ``GET /v1/conversations``)."""

from __future__ import annotations

from peewee import chunked, fn

from chat_tui.server.data import shape
from chat_tui.server.data.base import Principal, Repository, Write, as_utc, normalize_username
from chat_tui.server.db import (
    bump_counter,
    read_transaction,
    utcnow,
    wake_on_commit,
    write_transaction,
)
from chat_tui.server.errors import conflict, validation
from chat_tui.server.models import Conversation as ConversationRow
from chat_tui.server.models import Member, Message, User
from chat_tui.wire.limits import ASSISTANT_USERNAME, MAX_TITLE_CHARS
from chat_tui.wire.models import Conversation, ConversationList


class Conversations(Repository):
    """The conversations of the server, as their members see them."""

    def views(self, user_id: str, convs: list[ConversationRow]) -> list[Conversation]:
        """docs/api.md, Conversation, of each row of ``convs`` for the caller ``user_id``
        (its ``unread_count``), in the same order. Batched: 3 queries per 500
        conversations (members, unread counts, last messages)."""
        if not convs:
            return []
        ids = [c.id for c in convs]
        members: dict[str, list[str]] = {cid: [] for cid in ids}
        last: dict[int, Message] = {}
        unread: dict[str, int] = {}
        for batch in chunked(ids, 500):
            rows = list(
                Member.select(Member.conversation, Member.user)
                .where(Member.conversation.in_(batch))
                .tuples()
            )
            names = self.names.of_many(uid for _, uid in rows)
            for cid, uid in rows:
                members[cid].append(names[uid])
            caller = Member.alias()
            query = (
                Message.select(Message.conversation, fn.COUNT(Message.id))
                .join(
                    caller,
                    on=((caller.conversation == Message.conversation) & (caller.user == user_id)),
                )
                .where(
                    Message.conversation.in_(batch)
                    & (Message.seq > caller.read_seq)
                    & (Message.author != user_id)
                    & (Message.deleted == False)  # noqa: E712 (peewee expression)
                )
                .group_by(Message.conversation)
                .tuples()
            )
            unread.update(dict(query))
        seqs = [c.last_seq for c in convs if c.last_seq is not None]
        for batch in chunked(seqs, 500):
            for m in Message.select().where(Message.seq.in_(batch)):
                last[m.seq] = m
        out = []
        for c in convs:
            last_message = last.get(c.last_seq) if c.last_seq is not None else None
            out.append(
                Conversation.construct(
                    id=c.id,
                    title=c.title,
                    creator=self.names.of(c.creator_id),
                    members=tuple(sorted(members[c.id])),
                    assistant=bool(c.assistant),
                    created_at=as_utc(c.created_at),
                    updated_at=as_utc(c.updated_at),
                    last_message=shape.message(last_message, self.names) if last_message else None,
                    unread_count=unread.get(c.id, 0),
                    model=c.model,
                    system_prompt=c.system_prompt,
                )
            )
        return out

    def put(
        self,
        p: Principal,
        cid: str,
        title: str,
        members: list[str],
        assistant: bool,
        model: str | None = None,
        system_prompt: str | None = None,
    ) -> Write:
        """docs/api.md ``PUT /v1/conversations/{cid}``: create it (``created``) with the
        assistant's ``model`` and ``system_prompt`` (None or "": the server's), or the
        existing one unchanged when the caller is its creator.

        Raises ApiError 422 (title out of 1..200 characters after trimming, a malformed or
        unknown member, ``"assistant"`` named without the flag), 404 (it exists and the
        caller is not a member), 409 (it exists and the caller is not its creator).
        """
        title = title.strip()
        if not 1 <= len(title) <= MAX_TITLE_CHARS:
            raise validation(f"title: must be 1 to {MAX_TITLE_CHARS} characters")
        wanted: set[str] = set()
        for name in members:
            try:
                wanted.add(normalize_username(name))
            except ValueError as exc:
                raise validation(f"members: {exc}") from None
        if ASSISTANT_USERNAME in wanted and not assistant:
            raise validation('members: add the assistant with "assistant": true')
        wanted.discard(ASSISTANT_USERNAME)
        wanted.discard(p.username)
        with write_transaction(self.db):
            existing = ConversationRow.get_or_none(ConversationRow.id == cid)
            if existing is not None:
                self.membership(p.user_id, cid)
                if existing.creator_id != p.user_id:
                    raise conflict(
                        "this conversation id belongs to a conversation of another member"
                    )
                return Write(self.views(p.user_id, [existing])[0])
            users = list(
                User.select(User.id, User.username).where(
                    User.username.in_(list(wanted)) & (User.is_system == False)  # noqa: E712
                )
            )
            unknown = wanted - {u.username for u in users}
            if unknown:
                raise validation(f"members: unknown usernames: {', '.join(sorted(unknown))}")
            member_ids = {p.user_id} | {u.id for u in users}
            if assistant:
                member_ids.add(User.get(User.username == ASSISTANT_USERNAME).id)
            seq = bump_counter()
            now = utcnow()
            conv = ConversationRow.create(
                id=cid,
                title=title,
                creator=p.user_id,
                assistant=assistant,
                created_at=now,
                updated_at=now,
                model=model or None,
                system_prompt=system_prompt or None,
            )
            Member.insert_many(
                [{"conversation": cid, "user": uid, "change_seq": seq} for uid in member_ids]
            ).execute()
            view = self.views(p.user_id, [conv])[0]
            wake_on_commit(member_ids)
        return Write(view, created=True, affected=member_ids)

    def update(self, p: Principal, cid: str, changes: dict[str, str | None]) -> Write:
        """docs/api.md ``PATCH /v1/conversations/{cid}``: set the fields named in
        ``changes`` (``title``, trimmed; ``model`` and ``system_prompt``, None or "" for
        the server's own), last write wins per field. Any member may; nothing to change
        (the same values) leaves the conversation as it is, so a repeat is harmless.

        Raises ApiError 422 (a title out of 1..200 characters after trimming, or null),
        404 (not a member, or no such conversation).
        """
        updates: dict[str, str | None] = {}
        if "title" in changes:
            title = (changes["title"] or "").strip()
            if not 1 <= len(title) <= MAX_TITLE_CHARS:
                raise validation(f"title: must be 1 to {MAX_TITLE_CHARS} characters")
            updates["title"] = title
        for name in ("model", "system_prompt"):
            if name in changes:
                updates[name] = changes[name] or None
        with write_transaction(self.db):
            self.membership(p.user_id, cid)
            conv = ConversationRow.get_by_id(cid)
            updates = {k: v for k, v in updates.items() if getattr(conv, k) != v}
            if not updates:
                return Write(self.views(p.user_id, [conv])[0])
            seq = bump_counter()
            affected = self.touch(cid, seq, None, **updates)
            conv = ConversationRow.get_by_id(cid)
            return Write(self.views(p.user_id, [conv])[0], affected=affected)

    def list_for(self, p: Principal) -> ConversationList:
        """docs/api.md ``GET /v1/conversations``: the caller's, most recently updated first."""
        with read_transaction(self.db):
            convs = list(
                ConversationRow.select()
                .join(Member, on=(Member.conversation == ConversationRow.id))
                .where(Member.user == p.user_id)
                .order_by(ConversationRow.updated_at.desc(), ConversationRow.id)
            )
            return ConversationList.construct(conversations=tuple(self.views(p.user_id, convs)))
