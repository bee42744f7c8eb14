"""Shared pieces of the benchmarks: machine facts, statistics, a server subprocess, users.

Nothing here is timed itself. Every server the benchmarks use is a real
``chat-tui-server serve`` subprocess on loopback (``--rate-limit 0``), with its log and
data directories inside the run's temporary directory.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

#: Repository root (the benchmarks run from a checkout).
ROOT = Path(__file__).resolve().parent.parent
#: Where generated data (JSONL, server databases, client caches) is kept between runs.
DATA_DIR = ROOT / "benchmarks" / "data"

_LISTENING = re.compile(r"chat-tui-server listening on (http://\S+)")


# ---------------------------------------------------------------------- machine, statistics


def machine_info() -> dict:
    """Facts about this machine: ``platform``, ``python``, ``cpu`` (model from
    /proc/cpuinfo), ``cores`` (int), ``ram_gb`` (float), ``load_avg`` (1/5/15 min at the
    time of the call)."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": ram_gb,
        "load_avg": load,
    }


def now_iso() -> str:
    """The current UTC time, RFC 3339 to the second."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def median(values: Sequence[float]) -> float | None:
    """Median of ``values``, or None when empty."""
    return statistics.median(values) if values else None


def percentile(values: Iterable[float], p: float) -> float | None:
    """Nearest-rank ``p``-th percentile (0 < p <= 100) of ``values``, or None when empty."""
    data = sorted(values)
    if not data:
        return None
    rank = max(1, math.ceil(p / 100 * len(data)))
    return data[rank - 1]


def ms(seconds: float | None) -> float | None:
    """Seconds to milliseconds, rounded to 0.1 ms (None stays None)."""
    return None if seconds is None else round(seconds * 1000, 1)


def latency_stats(values: list[float]) -> dict:
    """p50, p90, p99, max and mean of ``values`` (seconds), each in ms."""
    return {"p50_ms": ms(percentile(values, 50)), "p90_ms": ms(percentile(values, 90)),
            "p99_ms": ms(percentile(values, 99)), "max_ms": ms(max(values)),
            "mean_ms": ms(sum(values) / len(values))}


def ratio(value: float | None, baseline: float | None) -> float | None:
    """``value / baseline`` rounded to 3 digits, or None when either is missing or zero."""
    if not value or not baseline:
        return None
    return round(value / baseline, 3)


#: The goal of the encryption on/off pairs: encryption costs at most this many % of a ratio.
ENCRYPTION_GOAL_PCT = 5.0


def encryption_pair(off: dict, on: dict, *, higher_is_better: bool = False,
                    note: str = "") -> dict:
    """The ``encryption`` entry of a benchmark result: the same measurement with the cache
    plain (``off``) and encrypted (``on``), each ``{"value": str, "ratio": float}``, and
    ``cost_pct``, what encryption costs on the ratio in % (``on / off - 1`` where a lower
    ratio is better, ``off / on - 1`` where a higher one is: a throughput), ``met`` when
    it is at most :data:`ENCRYPTION_GOAL_PCT`, and ``note`` (how the pair was made)."""
    a, b = off.get("ratio"), on.get("ratio")
    cost = None
    if a and b:
        cost = round(((a / b) if higher_is_better else (b / a)) * 100 - 100, 1)
    return {"off": off, "on": on, "cost_pct": cost,
            "goal": f"<= {ENCRYPTION_GOAL_PCT:g}% on the ratio",
            "met": bool(cost is not None and cost <= ENCRYPTION_GOAL_PCT), "note": note}


#: Run in a fresh interpreter by :func:`sqlcipher_build`: imports nothing but
#: ``sqlcipher3`` (no ``ssl``, no ``hashlib``), so a ``libcrypto`` in the process's maps
#: was loaded by the extension itself.
_SQLCIPHER_PROBE = """
import json
from sqlcipher3 import dbapi2
con = dbapi2.connect(":memory:")
con.execute("PRAGMA key = \\"x'" + "00" * 32 + "'\\"")
maps = open("/proc/self/maps").read()
print(json.dumps({
    "cipher_version": con.execute("PRAGMA cipher_version").fetchone()[0],
    "crypto": con.execute("PRAGMA cipher_provider_version").fetchone()[0],
    "system_libcrypto": "libcrypto.so" in maps}))
"""


def sqlcipher_build() -> dict:
    """Which ``sqlcipher3`` the encrypted runs use, read in a fresh interpreter:
    ``{"sqlcipher3": version, "cipher_version": SQLCipher's, "crypto": its crypto library
    (``PRAGMA cipher_provider_version``), "system_libcrypto": bool, "summary": str}``.

    ``system_libcrypto`` is True when the extension loads the system's shared
    ``libcrypto`` (``sqlcipher3`` built from its sdist) and False when OpenSSL is linked
    into the extension (the PyPI wheel): the two differ by ~4 MB of resident memory
    (benchmarks/NOTES.md). Returns ``{"error": str}`` when ``sqlcipher3`` cannot be loaded.
    """
    import json
    from importlib import metadata

    proc = subprocess.run([sys.executable, "-c", _SQLCIPHER_PROBE], capture_output=True,
                          text=True, timeout=60)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    info["sqlcipher3"] = metadata.version("sqlcipher3")
    linked = ("the system's shared libcrypto" if info["system_libcrypto"]
              else "its own copy linked into the extension")
    info["summary"] = (f"sqlcipher3 {info['sqlcipher3']} (SQLCipher {info['cipher_version']}, "
                       f"{info['crypto']}: {linked})")
    return info


# ---------------------------------------------------------------------- processes


def rss_kb(pid: int) -> tuple[int | None, int | None]:
    """``(VmRSS, VmHWM)`` of a process in KiB from /proc (HWM: peak resident set)."""
    rss = hwm = None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


def isolated_env(base: Path) -> dict[str, str]:
    """The environment for a child process with its XDG directories under ``base`` and no
    real keyring (tokens go to 0600 files), so nothing touches the user's own files."""
    env = dict(os.environ)
    for name in ("DATA", "CONFIG", "CACHE", "STATE"):
        path = base / name.lower()
        path.mkdir(parents=True, exist_ok=True)
        env[f"XDG_{name}_HOME"] = str(path)
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    env["CHAT_TUI_RETENTION_DAYS"] = "0"  # chitchat timestamps are years old
    return env


@dataclass
class ServerProcess:
    """A ``chat-tui-server serve`` subprocess: ``url``, ``pid``, ``db_path``."""

    url: str
    db_path: Path | str
    proc: subprocess.Popen = field(repr=False)
    _peak_kb: int = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def memory(self) -> dict:
        """``{"rss_mb", "peak_rss_mb"}`` of the server process now (MiB, 0.1 precision)."""
        rss, hwm = rss_kb(self.pid)
        return {
            "rss_mb": None if rss is None else round(rss / 1024, 1),
            "peak_rss_mb": None if hwm is None else round(hwm / 1024, 1),
        }

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s. Idempotent."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(db_path: Path | str, workdir: Path, timeout: float = 60.0) -> ServerProcess:
    """Run ``python -m chat_tui.server serve --port 0 --rate-limit 0 --db DB`` (``DB``: a
    SQLite file or a ``postgresql://`` URL) and return once it printed its listening line
    and ``/v1/health`` answers.

    Raises:
        RuntimeError: it exited or did not listen within ``timeout`` seconds.
    """
    env = isolated_env(workdir / "server-env")
    cmd = [sys.executable, "-m", "chat_tui.server", "serve", "--db", str(db_path),
           "--port", "0", "--rate-limit", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env, cwd=workdir)
    found: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            m = _LISTENING.search(line)
            if m:
                found.append(m.group(1))
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not found:
        proc.kill()
        proc.wait(5)
        raise RuntimeError(f"chat-tui-server did not start (exit {proc.poll()})")
    url = found[0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/v1/health", timeout=2).status_code == 200:
                return ServerProcess(url, db_path, proc)
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("chat-tui-server did not answer /v1/health")


def add_users(db_path: Path | str, names: Iterable[str], password: str = "bench-pw") -> None:
    """Give every user in ``names`` the password ``password`` in the server database
    ``db_path`` (a SQLite file, or a ``postgresql://`` URL; creating missing users), with
    the server's own users data (its password hash, tens of ms each)."""
    from chat_tui.server.data import ServerDB
    from chat_tui.server.db import open_and_migrate

    db = open_and_migrate(db_path if "://" in str(db_path) else Path(db_path))
    users = ServerDB(db).users
    for name in names:
        users.set_password(name, password)
    db.close()


def login(url: str, name: str, password: str = "bench-pw") -> dict:
    """``POST /v1/login``; returns ``{"user_id", "access_token", "device_id", "username"}``."""
    r = httpx.post(url + "/v1/login", json={"username": name, "password": password,
                                             "device_name": "bench"}, timeout=30)
    r.raise_for_status()
    return r.json()


def copy_db(src: Path, dst: Path) -> Path:
    """Copy a SQLite file (checkpointed, so no WAL companion is needed) to ``dst``."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst


def checkpoint(path: Path) -> None:
    """Fold the WAL of the SQLite file ``path`` into the main file and truncate it."""
    import sqlite3

    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()


async def timed_drain(engine, title: str, members: list[str], bodies: list[str], *,
                      timeout: float, answer=None) -> tuple[float, object]:
    """Benchmark 3's timed part, for any backend: open ``engine``, queue a conversation
    ``title`` with ``members`` and a send of each of ``bodies`` behind it, then start the
    engine and wait until an ``OutboxChanged`` counts nothing left (at most ``timeout``
    seconds). Returns the seconds from the start to that event and ``answer(cid)`` read
    before the engine stops (the conversation id when ``answer`` is None). Raises
    ``TimeoutError`` when the outbox is not empty in time. Stops the engine."""
    import asyncio
    import uuid

    from chat_tui.sync.events import OutboxChanged

    await engine.open()
    store = engine.store
    cid = str(uuid.uuid4())
    store.enqueue_create_conversation(cid, title, members)
    for body in bodies:
        store.enqueue_send(cid, body)
    done = asyncio.Event()

    def on_event(event: object) -> None:
        if isinstance(event, OutboxChanged) and not any(event.counts.values()):
            done.set()

    engine.subscribe(on_event)
    t0 = time.perf_counter()
    await engine.start()
    try:
        await asyncio.wait_for(done.wait(), timeout)
        elapsed = time.perf_counter() - t0
        return elapsed, (cid if answer is None else answer(cid))
    finally:
        await engine.stop()


async def sync_latencies(sender, receiver, cid: str, bodies: list[str], *, warmup: int,
                         settle: float) -> list[float]:
    """Benchmark 4's timed loop, for any backend: start both engines, wait until each has
    conversation ``cid`` (its initial sync done; at most 60 s), rest ``settle`` seconds,
    then send each of ``bodies`` on ``sender`` one at a time and time it from
    ``Engine.send`` to the receiver's ``MessagesChanged`` naming it (at most 30 s each).
    Returns the seconds of each message after the first ``warmup``. Stops both engines.

    Raises:
        RuntimeError: an initial sync did not bring the conversation in 60 s.
        TimeoutError: a message took more than 30 s.
    """
    import asyncio

    from chat_tui.sync.events import MessagesChanged

    waiting: dict[str, asyncio.Future] = {}

    def on_event(event: object) -> None:
        if isinstance(event, MessagesChanged):
            now = time.perf_counter()
            for mid in event.message_ids:
                fut = waiting.get(mid)
                if fut is not None and not fut.done():
                    fut.set_result(now)

    receiver.subscribe(on_event)
    await sender.start()
    await receiver.start()
    try:
        for engine in (sender, receiver):  # both have the conversation: initial sync done
            deadline = time.monotonic() + 60
            while engine.store.get_conversation(cid) is None:
                if time.monotonic() > deadline:
                    raise RuntimeError("initial sync did not bring the conversation")
                await asyncio.sleep(0.02)
        await asyncio.sleep(settle)
        loop = asyncio.get_running_loop()
        out = []
        for i, body in enumerate(bodies):
            fut = loop.create_future()
            t0 = time.perf_counter()
            mid = sender.send(cid, body)
            waiting[mid] = fut
            t1 = await asyncio.wait_for(fut, 30)
            del waiting[mid]
            if i >= warmup:
                out.append(t1 - t0)
        return out
    finally:
        await sender.stop()
        await receiver.stop()
