"""``chat-tui-server import FILE.jsonl``: load conversations from JSON Lines .

One conversation a line::

    {"id": uuid, "title": str, "members": [username], "assistant"?: bool,
     "messages": [{"id": uuid, "author": username, "body": str, "created_at": RFC 3339}]}

Authors and members become users without a password when missing (they cannot log in until
``add-user`` gives them one), original timestamps are kept, and re-importing the same file
changes nothing (conversations and messages are matched by id). A bad line is reported with
its line number and skipped; every good line is still imported, each in its own transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from chat_tui.server.data.base import normalize_username
from chat_tui.server.data.imports import Imports
from chat_tui.wire.limits import MAX_BODY_BYTES, MAX_TITLE_CHARS, text_error


class ImportLineError(ValueError):
    """A line of the import file that cannot be imported; the message says why."""


def _uuid(value: object, what: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ImportLineError(f"{what}: not a UUID: {value!r}") from None


def _time(value: object, what: str) -> dt.datetime:
    if not isinstance(value, str):
        raise ImportLineError(f"{what}: expected an RFC 3339 string")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ImportLineError(f"{what}: not an RFC 3339 time: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).replace(tzinfo=None)


def parse_line(text: str) -> dict:
    """Validate one JSON line; returns the normalised record for ``Imports.import_conversation``.

    Raises :class:`ImportLineError` with a readable reason.
    """
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportLineError(f"not valid JSON ({exc.msg})") from None
    if not isinstance(raw, dict):
        raise ImportLineError("expected a JSON object")
    title = raw.get("title")
    if not isinstance(title, str) or not 1 <= len(title.strip()) <= MAX_TITLE_CHARS:
        raise ImportLineError(f"title: must be a string of 1 to {MAX_TITLE_CHARS} characters")
    if (reason := text_error(title)) is not None:
        raise ImportLineError(f"title: {reason}")
    members_raw = raw.get("members", [])
    messages_raw = raw.get("messages", [])
    if not isinstance(members_raw, list) or not isinstance(messages_raw, list):
        raise ImportLineError("members and messages must be lists")
    try:
        members = list(dict.fromkeys(normalize_username(str(m)) for m in members_raw))
    except ValueError as exc:
        raise ImportLineError(f"members: {exc}") from None
    messages = []
    seen: set[str] = set()
    for i, m in enumerate(messages_raw):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise ImportLineError(f"{where}: expected an object")
        mid = _uuid(m.get("id"), f"{where}.id")
        if mid in seen:
            raise ImportLineError(f"{where}.id: duplicate id {mid}")
        seen.add(mid)
        try:
            author = normalize_username(str(m.get("author", "")))
        except ValueError as exc:
            raise ImportLineError(f"{where}.author: {exc}") from None
        body = m.get("body")
        if not isinstance(body, str) or not body:
            raise ImportLineError(f"{where}.body: must be a non-empty string")
        if (reason := text_error(body)) is not None:
            raise ImportLineError(f"{where}.body: {reason}")
        if len(body.encode("utf-8")) > MAX_BODY_BYTES:
            raise ImportLineError(f"{where}.body: longer than {MAX_BODY_BYTES} bytes")
        messages.append(
            {
                "id": mid,
                "author": author,
                "body": body,
                "created_at": _time(m.get("created_at"), f"{where}.created_at"),
            }
        )
    if not members and not messages:
        raise ImportLineError("a conversation needs members or messages")
    return {
        "id": _uuid(raw.get("id"), "id"),
        "title": title.strip(),
        "members": members,
        "assistant": bool(raw.get("assistant", False)),
        "messages": messages,
    }


@dataclass
class ImportReport:
    """Outcome of an import: counts, and ``errors`` as ``(line number, reason)``."""

    lines: int = 0
    conversations_changed: int = 0
    messages_added: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def iter_lines(stream: IO[str]) -> Iterator[tuple[int, str]]:
    """Non-blank lines of ``stream`` with 1-based line numbers."""
    for number, line in enumerate(stream, start=1):
        if line.strip():
            yield number, line


def import_file(imports: Imports, path: Path) -> ImportReport:
    """Import every line of ``path`` through ``imports``; see the module doc for the rules.

    Raises OSError when ``path`` cannot be read; a bad line is reported, not raised.
    """
    report = ImportReport()
    with path.open(encoding="utf-8") as stream:
        for number, line in iter_lines(stream):
            report.lines += 1
            try:
                record = parse_line(line)
                added = imports.import_conversation(record)
            except ValueError as exc:
                report.errors.append((number, str(exc)))
                continue
            report.messages_added += added
            if added:
                report.conversations_changed += 1
    return report
