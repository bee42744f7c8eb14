#!/usr/bin/env python3
"""Turn the ``chitchat-dataset`` conversations into ``chat-tui-server import`` JSON Lines.

The chitchat dataset (PyPI ``chitchat-dataset``, MIT; install with
``pip install -e '.[bench]'``) holds 7,168 real human conversations, 258k messages, as
``{conv_id: {"messages": [[{"text", "timestamp", "sender"}, ...], ...], ...}}`` (a list of
turns, each a list of messages). Each output line is one conversation::

    {"id", "title", "members": [username], "messages": [{"id", "author", "body", "created_at"}]}

- senders (UUIDs) become stable readable usernames ``user-<first 8 hex>``;
- the title is the start of the first message, shortened on a word boundary;
- ``--reader NAME`` adds one account to every conversation (give it a password with
  ``chat-tui-server add-user NAME`` to browse them all);
- ``--limit N`` keeps the first N conversations; ``--repeat K`` writes K copies of each with
  new deterministic ids (benchmark sizes); the output is identical run after run, so
  importing it twice changes nothing.

Usage::

    python benchmarks/chitchat_to_jsonl.py --reader demo --out benchmarks/data/chitchat.jsonl
    chat-tui-server import benchmarks/data/chitchat.jsonl
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

#: Namespace of the ids derived here (copies, messages).
NAMESPACE = uuid.UUID("0b7c0f39-3d4e-4a5e-8c11-2f1f6f2b9c57")
TITLE_CHARS = 60


def load_dataset(path: Path | None = None) -> dict:
    """The chitchat dataset as a dict: ``path`` (same JSON shape) or the installed package's."""
    if path is None:
        try:
            import chitchat_dataset
        except ImportError:
            sys.exit("chitchat-dataset is not installed: pip install -e '.[bench]'")
        path = Path(chitchat_dataset._PATH)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def username_for(sender: str) -> str:
    """A stable readable username for a chitchat sender UUID: ``user-<first 8 hex>``."""
    hexdigits = re.sub(r"[^0-9a-f]", "", sender.lower())
    return f"user-{hexdigits[:8] or 'unknown'}"


def title_from(text: str, fallback: str) -> str:
    """A short title from the first message: at most 60 characters, cut on a word."""
    words = " ".join(text.split())
    if not words:
        return fallback
    if len(words) <= TITLE_CHARS:
        return words
    cut = words[: TITLE_CHARS - 1].rsplit(" ", 1)[0] or words[: TITLE_CHARS - 1]
    return cut.rstrip(" ,.;:!?") + "…"


def convert(
    data: dict, *, reader: str | None = None, limit: int | None = None, repeat: int = 1
) -> Iterator[dict]:
    """Yield import records (see module doc) for the dataset ``data``."""
    items = list(data.items())
    if limit is not None:
        items = items[:limit]
    for copy in range(repeat):
        for conv_id, conv in items:
            cid = conv_id if copy == 0 else str(uuid.uuid5(NAMESPACE, f"{conv_id}#{copy}"))
            cid = str(uuid.UUID(cid)) if _is_uuid(cid) else str(uuid.uuid5(NAMESPACE, cid))
            messages = []
            members: list[str] = []
            index = 0
            for turn in conv.get("messages", []):
                for m in turn:
                    body = (m.get("text") or "").strip()
                    if not body:
                        continue
                    author = username_for(m.get("sender", ""))
                    if author not in members:
                        members.append(author)
                    messages.append(
                        {
                            "id": str(uuid.uuid5(NAMESPACE, f"{cid}/{index}")),
                            "author": author,
                            "body": body,
                            "created_at": m["timestamp"],
                        }
                    )
                    index += 1
            if not messages:
                continue
            if reader and reader not in members:
                members.append(reader)
            yield {
                "id": cid,
                "title": title_from(messages[0]["body"], f"Chat {cid[:8]}"),
                "members": members,
                "messages": messages,
            }


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def write_jsonl(records: Iterator[dict], out: IO[str]) -> int:
    """Write one JSON object a line; returns the number of lines written."""
    count = 0
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reader", metavar="NAME", help="add this account to every conversation")
    parser.add_argument("--limit", type=int, metavar="N", help="first N conversations only")
    parser.add_argument("--repeat", type=int, default=1, metavar="K", help="K copies (new ids)")
    parser.add_argument("--out", type=Path, metavar="FILE", help="output file (default: stdout)")
    parser.add_argument(
        "--input",
        type=Path,
        metavar="FILE",
        help="a JSON file shaped like the dataset (default: the installed chitchat-dataset)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1 or (args.limit is not None and args.limit < 0):
        parser.error("--repeat must be >= 1 and --limit >= 0")
    if args.reader:
        args.reader = args.reader.strip().lower()
        if not re.fullmatch(r"[a-z0-9_.-]{1,64}", args.reader):
            parser.error("--reader must match [a-z0-9_.-]{1,64}")
    records = convert(
        load_dataset(args.input), reader=args.reader, limit=args.limit, repeat=args.repeat
    )
    if args.out is None:
        count = write_jsonl(records, sys.stdout)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("w", encoding="utf-8") as f:
            count = write_jsonl(records, f)
    print(f"wrote {count} conversations", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
