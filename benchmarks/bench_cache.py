"""Benchmark 7: cache bytes per message on disk, FTS index included (target 7).

Measured on the big client cache of the run (see :func:`benchmarks.data.client_cache`):
the SQLite file's pages after a WAL checkpoint (``page_count * page_size``) divided by the
number of messages, against the mean UTF-8 bytes of their bodies. Target: under
``3 x body bytes + 150`` bytes. When SQLite has the ``dbstat`` table, bytes per table and
index are listed too (where the space goes).

Alone, for one cache size (built with the current store, kept in ``--data-dir``)::

    python -m benchmarks.bench_cache --messages 100000 --conversations 1000 --big 10000

With the cache encrypted (``cache encrypt``'s copy of the same cache) the same figures are
read through SQLCipher with the raw key and compared with the plain file written by the
same export (the encryption pair of the results).

Bytes per message hardly depend on the size: schema v4 gave 266 B at 100,000 messages
(1,000 conversations) and 265 B at 1,000,000 (10,000 conversations).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any


def _connect(path: Path, key: bytes | None) -> Any:
    """A read-only connection to the cache ``path`` (``sqlcipher3`` with the raw ``key`` of
    an encrypted one)."""
    if key is None:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    from chat_tui.store.cipher import open_raw_connection

    return open_raw_connection(path, key, readonly=True)


def breakdown(path: Path, key: bytes | None = None) -> dict[str, int]:
    """Bytes per table/index of the SQLite file ``path`` (encrypted with ``key`` when
    given; empty when ``dbstat`` is missing)."""
    from chat_tui.store.cipher import database_errors

    con = _connect(path, key)
    try:
        rows = con.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name "
                           "ORDER BY 2 DESC").fetchall()
    except database_errors():
        return {}
    finally:
        con.close()
    return {name: int(size) for name, size in rows}


def measure(path: Path, messages: int, body_bytes: int, key: bytes | None = None) -> dict:
    """Figures for one cache file (encrypted with the raw ``key`` when given):
    ``file_bytes``, ``bytes_per_message``, ``body_bytes_per_message``, ``limit`` (3 x body
    + 150) and ``by_object``."""
    con = _connect(path, key)
    try:
        pages = int(con.execute("PRAGMA page_count").fetchone()[0])
        page_size = int(con.execute("PRAGMA page_size").fetchone()[0])
        freelist = int(con.execute("PRAGMA freelist_count").fetchone()[0])
    finally:
        con.close()
    file_bytes = pages * page_size
    per_msg = file_bytes / messages
    body = body_bytes / messages
    return {
        "file_bytes": file_bytes, "free_pages": freelist, "messages": messages,
        "bytes_per_message": round(per_msg, 1), "body_bytes_per_message": round(body, 1),
        "limit_bytes_per_message": round(3 * body + 150, 1),
        "by_object": breakdown(path, key),
    }


def run(ctx) -> dict:
    """Run the benchmark; ``ctx`` is :class:`benchmarks.run.Context`. The encryption pair
    compares the encrypted copy (``Context.encrypted_cache``) with the plain file written
    by the same export (:func:`benchmarks.data.plain_export`: the same page layout), so
    the difference is encryption's alone (SQLCipher keeps 80 bytes of each 4,096-byte
    page for its IV and HMAC)."""
    from benchmarks.common import encryption_pair
    from benchmarks.data import plain_export

    path, info = ctx.cache()
    m = measure(path, info["messages"], info["body_bytes"])
    per, limit = m["bytes_per_message"], m["limit_bytes_per_message"]
    enc_path, key = ctx.encrypted_cache()
    enc = measure(enc_path, info["messages"], info["body_bytes"], key)
    export = plain_export(path, ctx.workdir)
    same_layout = measure(export, info["messages"], info["body_bytes"])
    export.unlink()
    return {
        "encryption": encryption_pair(
            {"value": f"{same_layout['bytes_per_message']:.0f} B/message",
             "ratio": round(same_layout["bytes_per_message"] / limit, 3)},
            {"value": f"{enc['bytes_per_message']:.0f} B/message",
             "ratio": round(enc["bytes_per_message"] / limit, 3)},
            note=f"both written by `cache encrypt`'s sqlcipher_export (the plain file as "
                 f"the store built it: {per:.0f} B/message)"),
        "title": f"Cache size on disk, FTS included ({info['messages']:,} messages)",
        "target": "< 3 x body bytes + 150 B per message",
        "value": f"{per:.0f} B/message",
        "baseline": f"{m['body_bytes_per_message']:.0f} B of body; limit {limit:.0f} B",
        "ratio": round(per / limit, 3),
        "met": per < limit,
        "metrics": {**m, "encrypted": {k: v for k, v in enc.items() if k != "by_object"},
                    "plain_export": {k: v for k, v in same_layout.items()
                                     if k != "by_object"},
                    "encrypted_by_object": enc["by_object"]},
    }


def main(argv: list[str] | None = None) -> int:
    """Build (or reuse) one client cache and print its figures as JSON, bytes per object
    per message included. Returns the exit status (0)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--conversations", type=int, default=1_000)
    parser.add_argument("--big", type=int, default=10_000, help="messages of conversation 0")
    parser.add_argument("--small", type=int, default=100, help="messages of conversation 1")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    if __package__ in (None, ""):
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks import data as bdata
    from benchmarks.common import DATA_DIR

    path, info = bdata.client_cache(args.messages, args.conversations, args.big, args.small,
                                    args.data_dir or DATA_DIR)
    m = measure(path, info["messages"], info["body_bytes"])
    m["by_object_per_message"] = {name: round(size / info["messages"], 1)
                                  for name, size in m.pop("by_object").items()
                                  if size / info["messages"] >= 0.1}
    m["cache"] = str(path)
    print(json.dumps(m, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
