"""Bulk import of whole conversations into the database (``chat-tui-server import``;
the file format and its checks are in :mod:`chat_tui.server.importer`)."""

from __future__ import annotations

import uuid

from peewee import chunked

from chat_tui.server.data.base import Repository
from chat_tui.server.db import bump_counter, utcnow, write_transaction
from chat_tui.server.models import Conversation, Member, Message, User


class Imports(Repository):
    """Writes of imported conversations, users and messages."""

    def _bulk_insert(self, model: type, fields: list, rows: list[tuple]) -> None:
        """``INSERT`` many rows with one prepared statement (``executemany``).

        Portable (the database's own quoting and parameter style); values go through each
        field's ``db_value`` exactly as peewee's own inserts do. Used by import, where
        one prepared statement for a whole batch is much faster than one peewee query per row.
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
                existing_members = self.member_ids(cid)
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
                    Message.stopped,
                ],
                [(*row, row[-1], 1, False, False, False, False) for row in rows],
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
            self.touch(cid, last, None, **updates)
            return len(rows)
