"""The server's operations on its database, one method per use case (docs/api.md routes).

Every method is synchronous and blocking: the async routes run them in a worker thread
(``anyio.to_thread``) so the event loop never waits on the database. Writers run inside
``db.write_transaction`` (serialised), stamp their changes with the global change counter and
return the ids of the users whose devices must be woken (``affected``) so the route can notify
long-polls *after* the commit.

Wire shapes (dicts ready for JSON) are built here: :meth:`Store.message_json`,
:meth:`Store.conversation_json`, read markers as ``{"conversation_id", "username",
"message_id", "seq"}``.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from peewee import JOIN, Database, chunked, fn

from chat_tui.server import security
from chat_tui.server.db import (
    ASSISTANT_USERNAME,
    bump_counter,
    current_cursor,
    read_transaction,
    utcnow,
    write_transaction,
)
from chat_tui.server.errors import ApiError, conflict, not_found, validation
from chat_tui.server.models import Conversation, Device, Member, Message, User

#: docs/api.md, Conventions: usernames.
USERNAME_RE = re.compile(r"^[a-z0-9_.-]{1,64}$")
#: docs/api.md, Limits.
MAX_BODY_BYTES = 65_536
MAX_TITLE_CHARS = 200
#: docs/api.md, ``/v1/sync``: newest messages per conversation in one sync response.
SYNC_PAGE = 50


def format_time(value: dt.datetime | None) -> str | None:
    """RFC 3339 UTC with microseconds and ``Z`` (docs/api.md, Conventions); None stays None."""
    if value is None:
        return None
    if isinstance(value, str):  # SQLite may hand back text for unusual stored values
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalize_username(name: str) -> str:
    """Case-fold ``name`` and check it against ``[a-z0-9_.-]{1,64}``; ValueError otherwise."""
    folded = name.strip().lower()
    if not USERNAME_RE.match(folded):
        raise ValueError(f"invalid username {name!r}: use 1 to 64 of a-z, 0-9, '_', '.', '-'")
    return folded


def check_body(body: str) -> None:
    """Enforce the message body limit: 1..65,536 UTF-8 bytes (413 too long, 422 empty)."""
    size = len(body.encode("utf-8"))
    if size > MAX_BODY_BYTES:
        raise ApiError(
            413, "too_large", f"body is {size} bytes; the limit is {MAX_BODY_BYTES} bytes"
        )
    if size == 0:
        raise validation("body: must not be empty")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: user id, username and the device (token) in use."""

    user_id: str
    username: str
    device_id: str


@dataclass
class WriteResult:
    """What a writer returns: HTTP ``status``, JSON ``data``, users to wake (``affected``)."""

    status: int
    data: dict
    affected: set[str] = field(default_factory=set)
    #: Set when a new user message lands in an assistant conversation: (cid, mid).
    assistant_job: tuple[str, str] | None = None


class Store:
    """All database use cases of the server over one peewee ``Database`` (thread safe).

    Usernames are immutable, so ``user id -> username`` is cached in memory.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._names: dict[str, str] = {}
        self._names_lock = threading.Lock()

    # ------------------------------------------------------------------ users, auth

    def username_of(self, user_id: str) -> str:
        """Username of ``user_id`` (cached; users are never renamed)."""
        name = self._names.get(user_id)
        if name is None:
            name = User.get_by_id(user_id).username
            with self._names_lock:
                self._names[user_id] = name
        return name

    def _usernames(self, user_ids: Iterable[str]) -> dict[str, str]:
        missing = [u for u in set(user_ids) if u not in self._names]
        for batch in chunked(missing, 500):
            for uid, name in User.select(User.id, User.username).where(User.id.in_(batch)).tuples():
                with self._names_lock:
                    self._names[uid] = name
        return self._names

    def create_user(self, username: str, password: str | None) -> str:
        """Create a user (``password`` None: cannot log in); returns its id.

        Raises ValueError on an invalid, reserved or taken username.
        """
        name = normalize_username(username)
        if name == ASSISTANT_USERNAME:
            raise ValueError(f"{name!r} is reserved for the assistant")
        hashed = security.hash_password(password) if password is not None else None
        with write_transaction(self.db):
            if User.select().where(User.username == name).exists():
                raise ValueError(f"user {name!r} already exists")
            user_id = str(uuid.uuid4())
            User.create(id=user_id, username=name, password_hash=hashed, created_at=utcnow())
        return user_id

    def set_password(self, username: str, password: str) -> str:
        """Set (or reset) the password of an existing user, creating the user when missing.

        Returns the user id. Existing device tokens stay valid. Raises ValueError on an
        invalid or reserved username.
        """
        name = normalize_username(username)
        if name == ASSISTANT_USERNAME:
            raise ValueError(f"{name!r} is reserved for the assistant")
        hashed = security.hash_password(password)
        with write_transaction(self.db):
            user = User.get_or_none(User.username == name)
            if user is None:
                user_id = str(uuid.uuid4())
                User.create(id=user_id, username=name, password_hash=hashed, created_at=utcnow())
                return user_id
            User.update(password_hash=hashed).where(User.id == user.id).execute()
            return user.id

    def login(self, username: str, password: str, device_name: str) -> dict:
        """docs/api.md ``POST /v1/login``: a new device and token, or ApiError 401."""
        try:
            name = normalize_username(username)
        except ValueError:
            name = None
        self.db.connect(reuse_if_open=True)
        user = User.get_or_none(User.username == name) if name else None
        ok = security.verify_password(password, user.password_hash if user else None)
        if not ok or user is None or user.is_system:
            raise ApiError(401, "unauthorized", "wrong username or password")
        token = security.new_token()
        device_id = str(uuid.uuid4())
        with write_transaction(self.db):
            Device.create(
                id=device_id,
                user=user.id,
                name=device_name[:200],
                token_hash=security.token_hash(token),
                created_at=utcnow(),
            )
        return {
            "user_id": user.id,
            "access_token": token,
            "device_id": device_id,
            "username": user.username,
        }

    def authenticate(self, token: str) -> Principal:
        """The caller of a bearer token; ApiError 401 when unknown or revoked."""
        self.db.connect(reuse_if_open=True)
        row = (
            Device.select(Device.id, Device.user, Device.revoked_at)
            .where(Device.token_hash == security.token_hash(token))
            .first()
        )
        if row is None or row.revoked_at is not None:
            raise ApiError(401, "unauthorized", "missing, unknown or revoked access token")
        user_id = row.user_id
        return Principal(user_id=user_id, username=self.username_of(user_id), device_id=row.id)

    def logout(self, principal: Principal) -> None:
        """docs/api.md ``POST /v1/logout``: revoke the calling device's token."""
        with write_transaction(self.db):
            Device.update(revoked_at=utcnow()).where(
                (Device.id == principal.device_id) & Device.revoked_at.is_null()
            ).execute()

    # ------------------------------------------------------------------ JSON shapes

    def message_json(self, m: Message) -> dict:
        """docs/api.md, Message."""
        return {
            "id": m.id,
            "conversation_id": m.conversation_id,
            "author": self.username_of(m.author_id),
            "body": m.body,
            "created_at": format_time(m.created_at),
            "edited_at": format_time(m.edited_at),
            "seq": m.seq,
            "version": m.version,
            "deleted": bool(m.deleted),
            "streaming": bool(m.streaming),
            "error": bool(m.error),
        }

    def conversations_json(self, user_id: str, convs: list[Conversation]) -> list[dict]:
        """docs/api.md, Conversation, for the caller ``user_id``; batched (3 queries per 500)."""
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
            names = self._usernames(uid for _, uid in rows)
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
                {
                    "id": c.id,
                    "title": c.title,
                    "creator": self.username_of(c.creator_id),
                    "members": sorted(members[c.id]),
                    "assistant": bool(c.assistant),
                    "created_at": format_time(c.created_at),
                    "updated_at": format_time(c.updated_at),
                    "last_message": self.message_json(last_message) if last_message else None,
                    "unread_count": unread.get(c.id, 0),
                }
            )
        return out

    def marker_json(self, member: Member) -> dict:
        """docs/api.md, ReadMarker."""
        return {
            "conversation_id": member.conversation_id,
            "username": self.username_of(member.user_id),
            "message_id": member.read_message_id,
            "seq": member.read_seq,
        }

    # ------------------------------------------------------------------ helpers

    def _membership(self, user_id: str, cid: str) -> Member:
        member = Member.get_or_none((Member.conversation == cid) & (Member.user == user_id))
        if member is None:
            raise not_found("conversation not found")
        return member

    def _member_ids(self, cid: str) -> set[str]:
        return {
            uid for (uid,) in Member.select(Member.user).where(Member.conversation == cid).tuples()
        }

    def _touch(self, cid: str, seq: int, now: dt.datetime | None, **conv_updates) -> set[str]:
        """Stamp a change of conversation ``cid`` (members' change_seq, updated_at)."""
        if now is not None:
            conv_updates["updated_at"] = now
        if conv_updates:
            Conversation.update(**conv_updates).where(Conversation.id == cid).execute()
        Member.update(change_seq=seq).where(Member.conversation == cid).execute()
        return self._member_ids(cid)

    # ------------------------------------------------------------------ conversations

    def put_conversation(
        self, p: Principal, cid: str, title: str, members: list[str], assistant: bool
    ) -> WriteResult:
        """docs/api.md ``PUT /v1/conversations/{cid}``: 201 created, 200 existing (creator)."""
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
            existing = Conversation.get_or_none(Conversation.id == cid)
            if existing is not None:
                is_member = (
                    Member.select()
                    .where((Member.conversation == cid) & (Member.user == p.user_id))
                    .exists()
                )
                if not is_member:
                    raise not_found("conversation not found")
                if existing.creator_id != p.user_id:
                    raise conflict(
                        "this conversation id belongs to a conversation of another member"
                    )
                return WriteResult(200, self.conversations_json(p.user_id, [existing])[0])
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
            conv = Conversation.create(
                id=cid,
                title=title,
                creator=p.user_id,
                assistant=assistant,
                created_at=now,
                updated_at=now,
            )
            Member.insert_many(
                [{"conversation": cid, "user": uid, "change_seq": seq} for uid in member_ids]
            ).execute()
            data = self.conversations_json(p.user_id, [conv])[0]
        return WriteResult(201, data, affected=member_ids)

    def list_conversations(self, p: Principal) -> dict:
        """docs/api.md ``GET /v1/conversations``: the caller's, most recently updated first."""
        with read_transaction(self.db):
            convs = list(
                Conversation.select()
                .join(Member, on=(Member.conversation == Conversation.id))
                .where(Member.user == p.user_id)
                .order_by(Conversation.updated_at.desc(), Conversation.id)
            )
            return {"conversations": self.conversations_json(p.user_id, convs)}

    # ------------------------------------------------------------------ messages

    def messages_page(self, p: Principal, cid: str, before: str | None, limit: int) -> dict:
        """docs/api.md ``GET …/messages``: ``limit`` messages before ``before``, ascending."""
        with read_transaction(self.db):
            self._membership(p.user_id, cid)
            query = Message.select().where(Message.conversation == cid)
            if before is not None:
                anchor = Message.get_or_none((Message.id == before) & (Message.conversation == cid))
                if anchor is None:
                    raise not_found("message `before` not found in this conversation")
                query = query.where(Message.seq < anchor.seq)
            rows = list(query.order_by(Message.seq.desc()).limit(limit + 1))
            has_more = len(rows) > limit
            rows = rows[:limit]
            rows.reverse()
            total = Conversation.get_by_id(cid).message_count
            return {
                "messages": [self.message_json(m) for m in rows],
                "has_more": has_more,
                "total_count": total,
            }

    def put_message(self, p: Principal, cid: str, mid: str, body: str) -> WriteResult:
        """docs/api.md ``PUT …/messages/{mid}``: 201 sent, 200 repeat (unchanged), 409 reuse."""
        check_body(body)
        with write_transaction(self.db):
            self._membership(p.user_id, cid)
            existing = Message.get_or_none(Message.id == mid)
            if existing is not None:
                if existing.author_id == p.user_id and existing.conversation_id == cid:
                    return WriteResult(200, self.message_json(existing))
                raise conflict("this message id is already used by another message")
            seq = bump_counter()
            now = utcnow()
            msg = Message.create(
                id=mid,
                conversation=cid,
                author=p.user_id,
                body=body,
                created_at=now,
                seq=seq,
                change_seq=seq,
                version=1,
            )
            affected = self._touch(
                cid, seq, now, message_count=Conversation.message_count + 1, last_seq=seq
            )
            conv = Conversation.get_by_id(cid)
            job = (cid, mid) if conv.assistant else None
            return WriteResult(201, self.message_json(msg), affected, assistant_job=job)

    def _own_message(self, p: Principal, mid: str) -> Message:
        msg = Message.get_or_none(Message.id == mid)
        if msg is None:
            raise not_found("message not found")
        self._membership(p.user_id, msg.conversation_id)
        if msg.author_id != p.user_id:
            raise ApiError(403, "forbidden", "only the author can edit or delete a message")
        return msg

    def edit_message(self, p: Principal, mid: str, body: str) -> WriteResult:
        """docs/api.md ``PATCH /v1/messages/{mid}``: author only; same body: 200 unchanged."""
        check_body(body)
        with write_transaction(self.db):
            msg = self._own_message(p, mid)
            if msg.deleted:
                raise conflict("the message was deleted; a tombstone cannot be edited")
            if msg.body == body:
                return WriteResult(200, self.message_json(msg))
            seq = bump_counter()
            now = utcnow()
            msg.body = body
            msg.edited_at = now
            msg.version += 1
            msg.change_seq = seq
            msg.save()
            affected = self._touch(msg.conversation_id, seq, now)
            return WriteResult(200, self.message_json(msg), affected)

    def delete_message(self, p: Principal, mid: str) -> WriteResult:
        """docs/api.md ``DELETE /v1/messages/{mid}``: tombstone; deleting again: unchanged."""
        with write_transaction(self.db):
            msg = self._own_message(p, mid)
            if msg.deleted:
                return WriteResult(200, self.message_json(msg))
            seq = bump_counter()
            msg.body = ""
            msg.deleted = True
            msg.streaming = False
            msg.version += 1
            msg.change_seq = seq
            msg.save()
            affected = self._touch(msg.conversation_id, seq, utcnow())
            return WriteResult(200, self.message_json(msg), affected)

    def mark_read(self, p: Principal, cid: str, message_id: str) -> WriteResult:
        """docs/api.md ``POST …/read``: move the caller's read marker forward, never back."""
        with write_transaction(self.db):
            member = self._membership(p.user_id, cid)
            msg = Message.get_or_none((Message.id == message_id) & (Message.conversation == cid))
            if msg is None:
                raise not_found("message not found in this conversation")
            if msg.seq <= member.read_seq:
                return WriteResult(200, self.marker_json(member))
            seq = bump_counter()
            Member.update(read_seq=msg.seq, read_message_id=msg.id, read_change_seq=seq).where(
                (Member.conversation == cid) & (Member.user == p.user_id)
            ).execute()
            affected = self._touch(cid, seq, None)
            member = Member.get((Member.conversation == cid) & (Member.user == p.user_id))
            return WriteResult(200, self.marker_json(member), affected)

    # ------------------------------------------------------------------ sync

    def parse_cursor(self, since: str) -> int:
        """A ``since`` value as an int; ApiError 410 ``cursor_expired`` when unknown."""
        if not (since.isascii() and since.isdigit()) or len(since) > 18:
            raise ApiError(410, "cursor_expired", "the sync cursor is unknown to this server")
        return int(since)

    def has_changes(self, p: Principal, since: int) -> bool:
        """Whether any conversation of the caller changed after ``since`` (one index probe).

        Raises ApiError 410 when ``since`` is newer than the server's newest cursor.
        """
        self.db.connect(reuse_if_open=True)
        if since > current_cursor():
            raise ApiError(410, "cursor_expired", "the sync cursor is unknown to this server")
        return (
            Member.select().where((Member.user == p.user_id) & (Member.change_seq > since)).exists()
        )

    def sync(self, p: Principal, since: int | None) -> dict:
        """docs/api.md ``GET /v1/sync`` (without the long-poll wait, done by the route).

        ``since`` None: the initial sync. Raises ApiError 410 for a cursor newer than the
        server's.
        """
        with read_transaction(self.db):
            cursor = current_cursor()
            if since is not None and since > cursor:
                raise ApiError(410, "cursor_expired", "the sync cursor is unknown to this server")
            members = Member.select(Member.conversation).where(Member.user == p.user_id)
            if since is not None:
                members = members.where((Member.change_seq > since) & (Member.change_seq <= cursor))
            cids = [cid for (cid,) in members.tuples()]
            convs = []
            for batch in chunked(cids, 500):
                convs.extend(Conversation.select().where(Conversation.id.in_(batch)))
            convs.sort(key=lambda c: (c.updated_at, c.id), reverse=True)
            conv_json = self.conversations_json(p.user_id, convs)
            entries = []
            for conv, cj in zip(convs, conv_json, strict=True):
                messages, limited = self._sync_messages(conv.id, since, cursor)
                entries.append(
                    {
                        "conversation": cj,
                        "messages": [self.message_json(m) for m in messages],
                        "limited": limited,
                        "removed": False,
                    }
                )
            markers = []
            for batch in chunked(cids, 500):
                query = Member.select().where(
                    Member.conversation.in_(batch) & Member.read_message_id.is_null(False)
                )
                if since is not None:
                    query = query.where(
                        (Member.read_change_seq > since) & (Member.read_change_seq <= cursor)
                    )
                markers.extend(self.marker_json(m) for m in query)
            return {
                "cursor": str(cursor),
                "initial": since is None,
                "conversations": entries,
                "read_markers": markers,
            }

    def _sync_messages(
        self, cid: str, since: int | None, cursor: int
    ) -> tuple[list[Message], bool]:
        """Messages of ``cid`` for a sync after ``since`` (sync rules in docs/api.md)."""
        low = since if since is not None else 0
        created = list(
            Message.select()
            .where((Message.conversation == cid) & (Message.seq > low) & (Message.seq <= cursor))
            .order_by(Message.seq.desc())
            .limit(SYNC_PAGE + 1)
        )
        limited = len(created) > SYNC_PAGE
        created = created[:SYNC_PAGE]
        result = {m.id: m for m in created}
        if since is not None:
            for m in Message.select().where(
                (Message.conversation == cid)
                & (Message.change_seq > since)
                & (Message.change_seq <= cursor)
                & (Message.seq <= since)
            ):
                result[m.id] = m
        return sorted(result.values(), key=lambda m: m.seq), limited

    # ------------------------------------------------------------------ assistant

    def assistant_user_id(self) -> str:
        """Id of the ``assistant`` system user (created by the migrations)."""
        self.db.connect(reuse_if_open=True)
        return User.get(User.username == ASSISTANT_USERNAME).id

    def assistant_history(self, cid: str, up_to_mid: str, limit: int = 50) -> list[dict] | None:
        """The ``limit`` newest live messages of ``cid`` up to ``up_to_mid`` (inclusive).

        Returns ``[{"author", "body", "assistant": bool}]`` ascending, or None when the source
        message no longer exists or is a tombstone (no reply is written then). Assistant
        replies marked ``error`` are left out.
        """
        with read_transaction(self.db):
            src = Message.get_or_none(Message.id == up_to_mid)
            if src is None or src.deleted:
                return None
            assistant_id = self.assistant_user_id()
            rows = list(
                Message.select()
                .where(
                    (Message.conversation == cid)
                    & (Message.seq <= src.seq)
                    & (Message.deleted == False)  # noqa: E712
                    & (Message.error == False)  # noqa: E712
                )
                .order_by(Message.seq.desc())
                .limit(limit)
            )
            rows.reverse()
            return [
                {
                    "author": self.username_of(m.author_id),
                    "body": m.body,
                    "assistant": m.author_id == assistant_id,
                }
                for m in rows
            ]

    def start_reply(self, cid: str, reply_id: str, source_mid: str) -> WriteResult | None:
        """Create the assistant's (empty, ``streaming``) reply; None when it already exists."""
        with write_transaction(self.db):
            if Message.select().where(Message.id == reply_id).exists():
                return None
            seq = bump_counter()
            now = utcnow()
            msg = Message.create(
                id=reply_id,
                conversation=cid,
                author=self.assistant_user_id(),
                body="",
                created_at=now,
                seq=seq,
                change_seq=seq,
                version=1,
                streaming=True,
                reply_to=source_mid,
            )
            affected = self._touch(
                cid, seq, now, message_count=Conversation.message_count + 1, last_seq=seq
            )
            return WriteResult(201, self.message_json(msg), affected)

    def update_reply(
        self, reply_id: str, body: str, *, streaming: bool, error: bool = False
    ) -> WriteResult | None:
        """Replace the body of an assistant reply (a streamed update or the final one).

        Bumps ``version``. Returns None when the reply was deleted meanwhile.
        """
        body = body.encode("utf-8")[:MAX_BODY_BYTES].decode("utf-8", "ignore")
        with write_transaction(self.db):
            msg = Message.get_or_none(Message.id == reply_id)
            if msg is None or msg.deleted:
                return None
            if msg.body == body and msg.streaming == streaming and msg.error == error:
                return WriteResult(200, self.message_json(msg))
            seq = bump_counter()
            msg.body = body
            msg.streaming = streaming
            msg.error = error
            msg.version += 1
            msg.change_seq = seq
            msg.save()
            affected = self._touch(msg.conversation_id, seq, utcnow())
            return WriteResult(200, self.message_json(msg), affected)

    def interrupt_streaming(self, note: str) -> list[WriteResult]:
        """Close every reply left ``streaming`` (server stopped mid-reply) as an error.

        The partial text is kept and ``note`` appended. Returns one result per reply.
        """
        self.db.connect(reuse_if_open=True)
        results = []
        ids = [
            mid
            for (mid,) in Message.select(Message.id)
            .where(Message.streaming == True)  # noqa: E712
            .tuples()
        ]
        for mid in ids:
            msg = Message.get_by_id(mid)
            body = f"{msg.body}\n\n{note}" if msg.body.strip() else note
            result = self.update_reply(mid, body, streaming=False, error=True)
            if result is not None:
                results.append(result)
        return results

    def unanswered_messages(self) -> list[tuple[str, str]]:
        """``(cid, mid)`` of user messages in assistant conversations still owed a reply.

        Per conversation: live user messages after the one the newest reply answers, that
        have no reply yet, in ``seq`` order. Used at start-up to resume the assistant.
        """
        self.db.connect(reuse_if_open=True)
        assistant_id = self.assistant_user_id()
        jobs: list[tuple[str, str]] = []
        reply = Message.alias()
        for (cid,) in (
            Conversation.select(Conversation.id)
            .where(Conversation.assistant == True)  # noqa: E712
            .tuples()
        ):
            newest = (
                Message.select(Message.reply_to)
                .where(
                    (Message.conversation == cid)
                    & (Message.author == assistant_id)
                    & Message.reply_to.is_null(False)
                )
                .order_by(Message.seq.desc())
                .first()
            )
            after = 0
            if newest is not None:
                source = Message.get_or_none(Message.id == newest.reply_to)
                after = source.seq if source is not None else 0
            pending = (
                Message.select(Message.id)
                .join(reply, JOIN.LEFT_OUTER, on=(reply.reply_to == Message.id))
                .where(
                    (Message.conversation == cid)
                    & (Message.seq > after)
                    & (Message.author != assistant_id)
                    & (Message.deleted == False)  # noqa: E712
                    & reply.id.is_null()
                )
                .order_by(Message.seq)
            )
            jobs.extend((cid, m.id) for m in pending)
        return jobs

    # ------------------------------------------------------------------ import

    def _bulk_insert(self, model: type, fields: list, rows: list[tuple]) -> None:
        """``INSERT`` many rows with one prepared statement (``executemany``).

        Portable (the database's own quoting and parameter style); values go through each
        field's ``db_value`` exactly as peewee's own inserts do. Used by import, where
        building one peewee query per batch dominated the run time.
        """
        if not rows:
            return
        q = self.db.quote
        columns = ", ".join(f"{q[0]}{f.column_name}{q[1]}" for f in fields)
        params = ", ".join([self.db.param] * len(fields))
        table = f"{q[0]}{model._meta.table_name}{q[1]}"
        sql = f"INSERT INTO {table} ({columns}) VALUES ({params})"
        cursor = self.db.cursor()
        cursor.executemany(
            sql, [tuple(f.db_value(v) for f, v in zip(fields, row, strict=True)) for row in rows]
        )

    def import_conversation(self, record: dict) -> int:
        """Import one conversation (``chat-tui-server import``); returns messages added.

        ``record``: ``{"id", "title", "members": [username], "messages": [{"id", "author",
        "body", "created_at"}], "assistant"?: bool}`` already validated by
        ``importer.parse_line``. Authors and members become users without a password when
        missing. Existing conversations and messages (by id) are left exactly as they are, so
        re-importing changes nothing; new messages get ``seq`` in file order and keep their
        ``created_at``. Raises ValueError when an id belongs to another conversation.
        """
        names = set(record["members"]) | {m["author"] for m in record["messages"]}
        with write_transaction(self.db):
            users = {
                u.username: u.id
                for u in User.select(User.id, User.username).where(User.username.in_(list(names)))
            }
            now = utcnow()
            new_users = []
            for name in sorted(names - users.keys()):
                users[name] = str(uuid.uuid4())
                new_users.append(
                    {"id": users[name], "username": name, "password_hash": None, "created_at": now}
                )
            if new_users:
                User.insert_many(new_users).execute()
            cid = record["id"]
            conv = Conversation.get_or_none(Conversation.id == cid)
            msg_ids = [m["id"] for m in record["messages"]]
            known: dict[str, str] = {}
            for batch in chunked(msg_ids, 500):
                known.update(
                    Message.select(Message.id, Message.conversation)
                    .where(Message.id.in_(batch))
                    .tuples()
                )
            foreign = [mid for mid, c in known.items() if c != cid]
            if foreign:
                raise ValueError(f"message id {foreign[0]} belongs to another conversation")
            new_messages = [m for m in record["messages"] if m["id"] not in known]
            member_names = [n for n in record["members"]] + [
                m["author"] for m in record["messages"]
            ]
            member_ids = list(dict.fromkeys(users[n] for n in member_names))
            existing_members = set()
            if conv is not None:
                existing_members = self._member_ids(cid)
            missing_members = [u for u in member_ids if u not in existing_members]
            if conv is not None and not new_messages and not missing_members:
                return 0
            changes = len(new_messages) + 1
            last = bump_counter(changes)
            first = last - changes + 1
            times = [m["created_at"] for m in new_messages]
            if conv is None:
                created = min(times) if times else now
                conv = Conversation.create(
                    id=cid,
                    title=record["title"],
                    creator=users[record["members"][0]] if record["members"] else member_ids[0],
                    assistant=bool(record.get("assistant", False)),
                    created_at=created,
                    updated_at=max(times) if times else created,
                )
            rows = [
                (m["id"], cid, users[m["author"]], m["body"], m["created_at"], first + i)
                for i, m in enumerate(new_messages)
            ]
            self._bulk_insert(
                Message,
                [
                    Message.id,
                    Message.conversation,
                    Message.author,
                    Message.body,
                    Message.created_at,
                    Message.seq,
                    Message.change_seq,
                    Message.version,
                    Message.deleted,
                    Message.streaming,
                    Message.error,
                ],
                [(*row, row[-1], 1, False, False, False) for row in rows],
            )
            if missing_members:
                Member.insert_many(
                    [{"conversation": cid, "user": u, "change_seq": last} for u in missing_members]
                ).execute()
            updates: dict = {"message_count": Conversation.message_count + len(rows)}
            if rows:
                updates["last_seq"] = rows[-1][-1]
                newest = max(times)
                if newest > conv.updated_at:
                    updates["updated_at"] = newest
            self._touch(cid, last, None, **updates)
            return len(rows)
