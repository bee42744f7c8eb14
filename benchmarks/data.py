"""Benchmark data: real chitchat conversations, a server database and client caches.

Everything generated is kept under ``benchmarks/data/`` (git-ignored) and reused by later
runs, keyed by its size, so only the first run pays for it.

- :func:`chitchat_records`: the chitchat dataset (PyPI ``chitchat-dataset``) as
  ``chat-tui-server import`` records, through ``benchmarks/chitchat_to_jsonl.py``.
- :func:`server_db`: a server database loaded with ``chat-tui-server import`` from the
  converter's JSONL (the reader account ``bench`` is a member of every conversation).
- :func:`encrypted_cache`: that client cache encrypted by ``cache encrypt``'s machinery
  (the same content, a SQLCipher file with a raw key), for the encryption on/off pairs;
  :func:`plain_export`: the plain file written by the same export, for sizes.
- :func:`client_cache`: a client cache file (``chat_tui.store.Cache``) of ``total``
  messages in ``conversations`` conversations, written through the store's own sync apply
  path (``Cache.apply_sync``, one transaction per response of about 5,000 messages, as
  the engine's database worker does) from the chitchat messages repeated in order with new
  ids. Conversation 0 (the most recent, and the last one open) has ``big`` messages,
  conversation 1 has ``small``; the others share the rest.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import DATA_DIR, checkpoint

NAMESPACE = uuid.UUID("6a1f3c52-77a4-4c0e-9d1e-0c5be2a9f001")
READER = "bench"
APPLY_BATCH = 5000  # messages per Cache.apply_sync call (one transaction)

_SAMPLE = [
    "hi there, how is your week going?", "pretty good! just got back from a hike",
    "oh nice, where did you go?", "up the ridge trail north of town, about ten miles",
    "that sounds amazing. I have been stuck inside studying all week",
    "what are you studying?", "organic chemistry, final is on friday",
    "good luck! I hated that class", "thanks, I will need it",
]


def dataset_source() -> str:
    """``"chitchat-dataset"`` when the package is installed, else ``"synthetic sample"``."""
    try:
        import chitchat_dataset  # noqa: F401
    except ImportError:
        return "synthetic sample"
    return "chitchat-dataset"


def _dataset_input(data_dir: Path) -> Path | None:
    """None (the installed dataset) or a small dataset-shaped JSON file when the optional
    ``chitchat-dataset`` package is missing (CI smoke runs without the ``bench`` extra)."""
    if dataset_source() == "chitchat-dataset":
        return None
    path = data_dir / "sample-dataset.json"
    if not path.exists():
        data = {}
        for c in range(60):
            turns = [[{"text": _SAMPLE[(c + i) % len(_SAMPLE)], "sender": f"{(c + i) % 2:08x}-a",
                       "timestamp": f"2019-05-01T10:{i:02d}:00Z"}] for i in range(len(_SAMPLE))]
            data[str(uuid.uuid5(NAMESPACE, f"sample/{c}"))] = {"messages": turns}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))
    return path


def chitchat_records(limit: int | None = None, data_dir: Path = DATA_DIR) -> list[dict]:
    """The dataset as import records (``{"id", "title", "members", "messages": [{"id",
    "author", "body", "created_at"}]}``), the reader ``bench`` in every conversation."""
    from benchmarks import chitchat_to_jsonl as conv

    data = conv.load_dataset(_dataset_input(data_dir))
    return list(conv.convert(data, reader=READER, limit=limit))


def chitchat_jsonl(limit: int | None, data_dir: Path = DATA_DIR) -> Path:
    """The converter's JSONL for the first ``limit`` conversations (None: all), cached."""
    name = f"chitchat-{limit or 'all'}.jsonl"
    path = data_dir / name
    if path.exists():
        return path
    data_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(Path(__file__).with_name("chitchat_to_jsonl.py")),
           "--reader", READER, "--out", str(path) + ".tmp"]
    if limit:
        cmd += ["--limit", str(limit)]
    source = _dataset_input(data_dir)
    if source is not None:
        cmd += ["--input", str(source)]
    subprocess.run(cmd, check=True, capture_output=True)
    Path(str(path) + ".tmp").rename(path)
    return path


def server_db(limit: int | None, workdir: Path, data_dir: Path = DATA_DIR) -> tuple[Path, dict]:
    """A server database with the first ``limit`` chitchat conversations imported by
    ``chat-tui-server import`` (cached as ``server-<limit>.db``). Returns ``(path, info)``;
    ``info``: ``conversations``, ``messages``, ``import_s`` (seconds, when built now)."""
    path = data_dir / f"server-{limit or 'all'}.db"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        return path, json.loads(meta.read_text())
    jsonl = chitchat_jsonl(limit, data_dir)
    tmp = path.with_suffix(".tmp.db")
    for suffix in ("", "-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    from benchmarks.common import isolated_env

    env = isolated_env(workdir / "import-env")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "chat_tui.server", "import", "--db", str(tmp),
                    str(jsonl)], check=True, capture_output=True, env=env)
    elapsed = time.perf_counter() - t0
    checkpoint(tmp)
    conversations = messages = 0
    with jsonl.open(encoding="utf-8") as f:
        for line in f:
            conversations += 1
            messages += len(json.loads(line)["messages"])
    tmp.rename(path)
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    info = {"conversations": conversations, "messages": messages, "import_s": round(elapsed, 1),
            "built_by": "benchmarks/chitchat_to_jsonl.py + chat-tui-server import"}
    meta.write_text(json.dumps(info))
    return path, info


def message_stream(data_dir: Path = DATA_DIR) -> Iterator[tuple[str, str]]:
    """Endless ``(author, body)`` pairs: the chitchat messages in dataset order, repeated."""
    records = chitchat_records(None, data_dir)
    while True:
        for rec in records:
            for m in rec["messages"]:
                yield m["author"], m["body"]


def bodies(n: int, data_dir: Path = DATA_DIR) -> list[str]:
    """The first ``n`` chitchat message bodies (repeated when ``n`` exceeds the dataset)."""
    out = []
    for _, body in message_stream(data_dir):
        out.append(body)
        if len(out) == n:
            return out
    return out


def conversation_sizes(total: int, conversations: int, big: int, small: int) -> list[int]:
    """Messages per conversation: ``[big, small, rest spread evenly]``, summing to ``total``."""
    rest = total - big - small
    others = conversations - 2
    if others < 1 or rest < others:
        raise ValueError("too few messages for that many conversations")
    base, extra = divmod(rest, others)
    return [big, small] + [base + (1 if i < extra else 0) for i in range(others)]


def client_cache(total: int, conversations: int, big: int, small: int,
                 data_dir: Path = DATA_DIR) -> tuple[Path, dict]:
    """A client cache file (see module doc), cached as
    ``cache-v<schema>-<total>-<conversations>-<big>-<small>.db``.

    Returns ``(path, info)``; ``info``: ``messages``, ``conversations``, ``big_id``,
    ``small_id``, ``big_newest_body``, ``small_newest_body``, ``body_bytes`` (UTF-8 bytes of
    all bodies), ``me``, ``build_s`` and ``built_by``.
    """
    from chat_tui.api.wire import Conversation, Message, SyncConversation, SyncResponse
    from chat_tui.store import SCHEMA_VERSION, Cache

    # The schema version is part of the name: a cache written by an older store is rebuilt,
    # never measured as it is nor migrated inside a timed run.
    path = data_dir / f"cache-v{SCHEMA_VERSION}-{total}-{conversations}-{big}-{small}.db"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        return path, json.loads(meta.read_text())
    tmp = path.with_suffix(".tmp.db")
    for suffix in ("", "-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    sizes = conversation_sizes(total, conversations, big, small)
    store = Cache(tmp, READER, user_id=str(uuid.uuid5(NAMESPACE, "user/bench")),
                  server_url="http://127.0.0.1:9")
    store.open()
    t0 = time.perf_counter()
    stream = message_stream(data_dir)
    now = time.time()
    seq = 0
    body_bytes = 0
    ids: list[str] = []
    newest: list[str] = []
    batch: list[SyncConversation] = []
    in_batch = 0

    def flush() -> None:
        nonlocal batch, in_batch
        if batch:
            store.apply_sync(SyncResponse(str(seq), False, tuple(batch), ()))
        batch, in_batch = [], 0

    for k, n in enumerate(sizes):
        cid = str(uuid.uuid5(NAMESPACE, f"conv/{k}"))
        ids.append(cid)
        updated = now - 60 * k  # conversation 0 is the most recent
        msgs: list[Message] = []
        authors: list[str] = []
        title = ""
        for j in range(n):
            author, body = next(stream)
            if j == 0:
                title = _title(body, k)
            if author not in authors:
                authors.append(author)
            seq += 1
            body_bytes += len(body.encode("utf-8"))
            created = datetime.fromtimestamp(updated - (n - j), UTC)
            msgs.append(Message(str(uuid.uuid5(NAMESPACE, f"msg/{k}/{j}")), cid, author, body,
                                created, None, seq, 1, False, False, False))
            if len(msgs) + in_batch >= APPLY_BATCH or j == n - 1:
                members = tuple(sorted({*authors, READER}))
                conv = Conversation(cid, title,
                                    authors[0], members, False,
                                    datetime.fromtimestamp(updated - n - 1, UTC),
                                    datetime.fromtimestamp(updated, UTC), None, 0)
                batch.append(SyncConversation(conv, tuple(msgs), False, False))
                in_batch += len(msgs)
                msgs = []
                if in_batch >= APPLY_BATCH:
                    flush()
        newest.append(body)
    flush()
    store.set_last_conversation(ids[0])
    store.close()
    build_s = time.perf_counter() - t0
    checkpoint(tmp)
    tmp.rename(path)
    info = {
        "messages": total, "conversations": conversations, "big_id": ids[0],
        "small_id": ids[1], "big_messages": big, "small_messages": small,
        "big_newest_body": newest[0], "small_newest_body": newest[1],
        "body_bytes": body_bytes, "me": READER, "build_s": round(build_s, 1),
        "built_by": "Cache.apply_sync (the engine's sync apply path), "
                    f"{APPLY_BATCH} messages per transaction",
    }
    meta.write_text(json.dumps(info))
    return path, info


def _title(first_body: str, k: int) -> str:
    words = " ".join(first_body.split())[:60]
    return words or f"Chat {k}"


def encrypted_cache(plain: Path, data_dir: Path = DATA_DIR) -> tuple[Path, bytes]:
    """The client cache ``plain`` encrypted at rest (sync rule D6) by ``chat-tui cache
    encrypt``'s machinery (:func:`chat_tui.store.rewrite.rewrite_cache`: ``sqlcipher_export``
    into a new file, checked, swapped in) with a fresh raw key, cached next to it as
    ``<name>-enc.db`` with its key in ``<name>-enc.key`` (hex; benchmark data, not a
    secret). Returns ``(path, key)``; the copy is rebuilt when ``plain`` is newer."""
    from chat_tui.store.cipher import new_key
    from chat_tui.store.rewrite import rewrite_cache

    path = data_dir / f"{plain.stem}-enc.db"
    key_path = path.with_suffix(".key")
    if (path.exists() and key_path.exists()
            and path.stat().st_mtime_ns >= plain.stat().st_mtime_ns):
        return path, bytes.fromhex(key_path.read_text(encoding="ascii").strip())
    tmp = data_dir / f"{plain.stem}-enc.tmp.db"
    for suffix in ("", "-wal", "-shm", ".rewrite"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    shutil.copyfile(plain, tmp)
    key = new_key()
    rewrite_cache(tmp, None, key)
    key_path.write_text(key.hex(), encoding="ascii")
    tmp.rename(path)
    return path, key


def plain_export(plain: Path, workdir: Path) -> Path:
    """``plain`` written again as a plain file by the same ``sqlcipher_export`` that
    :func:`encrypted_cache` uses (same page layout, no encryption), in ``workdir``: what
    the encrypted copy's size is compared with (benchmark 7)."""
    from chat_tui.store.rewrite import rewrite_cache

    path = workdir / f"{plain.stem}-export.db"
    shutil.copyfile(plain, path)
    rewrite_cache(path, None, None)
    return path
