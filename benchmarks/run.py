#!/usr/bin/env python3
"""Run every chat-tui benchmark and write ``results.json`` and ``results.md``.

Usage::

    python -m benchmarks [--size smoke|full] [--only NAME ...] [--merge RESULTS_JSON]
                         [--out DIR] [--data-dir DIR] [--update-readme]
    python benchmarks/run.py --size full

``--size full`` is the targets' sizes (a 1,000,000-message cache in 10,000 conversations,
1,000 messages for the outbox and latency benchmarks, 200 long-polling clients and 20
senders for 60 s); ``--size smoke`` is a tiny run for CI (well-formed results, no meaning).
``--load-duration S`` overrides the load benchmark's duration; ``--update-readme`` also
writes the table into README.md's Performance section (between its benchmark markers) and
the encryption on/off table into its "Encrypted cache performance" section
(``--update-readme encryption``: only that one); ``--matrix`` adds benchmarks 3 and 4 of a
Matrix account against a real Synapse (``benchmarks/bench_matrix.py``);
benchmark 5 (``server_load``) runs chat-tui-server on SQLite, Synapse and chat-tui-server on
PostgreSQL with one and two processes (the second row of its number; PostgreSQL needs its
server binaries, else that row says "not measured");
``--only NAME --merge benchmarks/results.json`` re-runs one benchmark after a fix and keeps
the others from the earlier run (each says which run it is from). Generated data is cached in
``--data-dir`` (default ``benchmarks/data/``, git-ignored). Results go to ``--out``
(default ``benchmarks/``). Each benchmark gives a ``value``, a ``baseline`` measured in the
same run, their ``ratio`` and whether its target was ``met``; a benchmark that cannot run
here says ``status: not measured`` with the reason, and one that crashed says
``status: error``. Benchmarks 1, 2, 3, 6 and 7 also run with the cache encrypted
(SQLCipher, a raw key) in the same run, alternating with the plain cache: their
``encryption`` entry has both measurements, both ratios and ``cost_pct``, what encryption
costs on the ratio (goal: at most 5%), shown in a second table. Exit status 0 when every benchmark ran (met or not), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):  # python benchmarks/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import data as bdata  # noqa: E402
from benchmarks.common import DATA_DIR, ROOT, copy_db, machine_info, now_iso  # noqa: E402


@dataclass(frozen=True)
class Size:
    """The knobs of one benchmark size (counts; durations in seconds)."""

    name: str
    server_conversations: int | None  # chitchat conversations imported (None: all 7,168)
    cache_messages: int
    cache_conversations: int
    big_conversation: int
    small_conversation: int
    drain_messages: int
    latency_messages: int
    load_pollers: int
    load_senders: int
    load_duration: float
    runs: int  # repetitions of each timing (medians are reported)
    settle: float  # seconds the app runs after its first frame before its peak RSS is read


SIZES = {
    "smoke": Size("smoke", 30, 3_000, 30, 1_000, 100, 50, 30, 6, 2, 2.0, 2, 0.3),
    "full": Size("full", None, 1_000_000, 10_000, 100_000, 100, 1_000, 1_000, 200, 20, 60.0, 5,
                 2.0),
}

#: Benchmarks in target order: (key, target number, module).
BENCHMARKS = [
    ("cold_start", 1, "benchmarks.bench_app"),
    ("open_conversation", 2, "benchmarks.bench_app"),
    ("outbox_drain", 3, "benchmarks.bench_outbox"),
    ("sync_latency", 4, "benchmarks.bench_sync"),
    ("server_load", 5, "benchmarks.bench_load"),
    ("memory", 6, "benchmarks.bench_app"),
    ("cache_size", 7, "benchmarks.bench_cache"),
]

#: Benchmarks 3 and 4 of a Matrix account against a real Synapse, each with its bare-httpx
#: baseline against the same Synapse (``--matrix`` adds them to the run).
MATRIX_BENCHMARKS = [
    ("outbox_drain_matrix", 3, "benchmarks.bench_matrix"),
    ("sync_latency_matrix", 4, "benchmarks.bench_matrix"),
]


class Context:
    """What every benchmark gets: ``size`` (:class:`Size`), ``workdir`` (a temporary
    directory removed at the end), ``data_dir``, ``bodies`` (chitchat message bodies),
    the cached server database and client cache (built on first use)."""

    def __init__(self, size: Size, workdir: Path, data_dir: Path):
        self.size = size
        self.workdir = workdir
        self.data_dir = data_dir
        self.data_info: dict = {"source": bdata.dataset_source()}
        self._server: tuple[Path, dict] | None = None
        self._cache: tuple[Path, dict] | None = None
        self._encrypted: tuple[Path, bytes] | None = None
        self.bodies = bdata.bodies(max(size.drain_messages, size.latency_messages) + 2000,
                                   data_dir)
        self.shared: dict = {}  # results shared between benchmarks of one module

    def server_db(self) -> tuple[Path, dict]:
        """The imported chitchat server database (cached) and its info."""
        if self._server is None:
            self._server = bdata.server_db(self.size.server_conversations, self.workdir,
                                           self.data_dir)
            self.data_info["server"] = self._server[1]
        return self._server

    def fresh_server_db(self, name: str) -> Path:
        """A private copy of the server database for one benchmark."""
        src, _ = self.server_db()
        return copy_db(src, self.workdir / f"server-{name}.db")

    def cache(self) -> tuple[Path, dict]:
        """The big client cache (cached) and its info (see ``benchmarks.data``)."""
        if self._cache is None:
            s = self.size
            self._cache = bdata.client_cache(s.cache_messages, s.cache_conversations,
                                             s.big_conversation, s.small_conversation,
                                             self.data_dir)
            self.data_info["cache"] = {k: v for k, v in self._cache[1].items()
                                       if not k.endswith("_body")}
        return self._cache


    def encrypted_cache(self) -> tuple[Path, bytes]:
        """The big client cache encrypted (:func:`benchmarks.data.encrypted_cache`: the
        same content, a SQLCipher file) and its raw key; made on first use, kept in
        ``data_dir``."""
        if self._encrypted is None:
            path, _ = self.cache()
            t0 = time.perf_counter()
            self._encrypted = bdata.encrypted_cache(path, self.data_dir)
            self.data_info["encrypted_cache"] = {
                "made_by": "chat_tui.store.rewrite.rewrite_cache (cache encrypt's "
                           "sqlcipher_export, checked and swapped in), raw 256-bit key",
                "seconds": round(time.perf_counter() - t0, 1)}
        return self._encrypted


def run_one(key: str, number: int, module_name: str, ctx: Context) -> dict:
    """Run one benchmark; never raises (a crash becomes ``status: error``)."""
    import importlib

    t0 = time.perf_counter()
    try:
        module = importlib.import_module(module_name)
        runner = getattr(module, f"run_{key}", None) or module.run
        result = runner(ctx)
        result.setdefault("status", "measured")
    except Exception as exc:  # reported in the results, the other benchmarks still run
        result = {"status": "error", "reason": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc(limit=8), "met": None}
    result["number"] = number
    result["seconds"] = round(time.perf_counter() - t0, 1)
    for field_name in ("title", "target", "value", "baseline", "ratio", "met", "metrics"):
        result.setdefault(field_name, None)
    return result


def _cell(value: object) -> str:
    if value is None:
        return "–"
    return str(value).replace("|", "\\|")


def render_markdown(results: dict) -> str:
    """The Markdown table of ``results`` (the shape written to results.json)."""
    m = results["machine"]
    lines = [
        f"Run {results['date']} at size `{results['size']}` on {m['cpu']} "
        f"({m['cores']} cores, {m['ram_gb']} GB RAM), {m['platform']}, Python {m['python']}; "
        f"load average at start {m['load_avg']}, a machine shared with other jobs, so "
        "figures are medians and every timing has a baseline from the same run.",
        "",
        "| # | benchmark | chat-tui | baseline | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, _, _ in BENCHMARKS + MATRIX_BENCHMARKS:
        r = results["benchmarks"].get(key)
        if r is None:
            continue
        # A benchmark's further rows (benchmark 5's PostgreSQL pair) follow its own,
        # unless it crashed before making them.
        for row in [r, *(r.get("more_rows") or ())]:
            if row["status"] != "measured":
                met = f"not measured: {row.get('reason', '')}"
                value = row.get("value") or "–"
            else:
                met = "yes" if row["met"] else "**no**"
                value = row["value"]
            lines.append(
                f"| {row['number']} | {_cell(row['title'] or key)} | {_cell(value)} | "
                f"{_cell(row['baseline'])} | {_cell(row['ratio'])} | "
                f"{_cell(row['target'])} | {_cell(met)} |")
    earlier: dict[tuple[str, str], list[str]] = {}
    for r in results["benchmarks"].values():
        if r.get("run"):
            run = (r["run"]["date"], str(r["run"]["load_avg"]))
            earlier.setdefault(run, []).append(str(r["number"]))
    for (date, load), numbers in sorted(earlier.items()):
        lines += ["", f"Benchmark{'s' if len(numbers) > 1 else ''} {', '.join(sorted(numbers))} "
                      f"from an earlier run at the same size: {date}, load average at start "
                      f"{load}."]
    d = results["data"]
    lines += ["", f"Data: {d.get('source')}."]
    if "server" in d:
        s = d["server"]
        lines.append(f"Server database: {s['conversations']:,} chitchat conversations, "
                     f"{s['messages']:,} messages, loaded by {s['built_by']}.")
    if "cache" in d:
        c = d["cache"]
        lines.append(f"Client cache: {c['messages']:,} messages in {c['conversations']:,} "
                     f"conversations (chitchat messages repeated with new ids; the last open "
                     f"one has {c['big_messages']:,}), written through {c['built_by']}.")
    lines.append("")
    return "\n".join(lines)


def render_encryption(results: dict) -> str:
    """The Markdown table of the encryption on/off pairs of ``results`` (the benchmarks
    whose result has an ``encryption`` entry, :func:`benchmarks.common.encryption_pair`),
    or "" when there is none."""
    rows = [(key, results["benchmarks"][key]) for key, _, _ in BENCHMARKS
            if key in results["benchmarks"]
            and results["benchmarks"][key].get("encryption")]
    if not rows:
        return ""
    m = results["machine"]
    lines = [
        f"Encryption off and on in the same run ({results['date']}, size `{results['size']}`, "
        f"load average {m['load_avg']} at start, {m.get('load_avg_end')} at the end): each "
        "benchmark's ratio with the cache plain and with the same cache encrypted "
        "(SQLCipher 4, raw 256-bit key), measured in alternating rounds, and what "
        "encryption costs on the ratio. Goal: at most 5%.",
        "",
        "| # | benchmark | encryption off | ratio off | encryption on | ratio on | cost | "
        "met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    notes = []
    for key, r in rows:
        e = r["encryption"]
        cost = "–" if e["cost_pct"] is None else f"{e['cost_pct']:+.1f}%"
        lines.append(
            f"| {r['number']} | {_cell(r['title'] or key)} | {_cell(e['off']['value'])} | "
            f"{_cell(e['off']['ratio'])} | {_cell(e['on']['value'])} | "
            f"{_cell(e['on']['ratio'])} | {cost} | {'yes' if e['met'] else '**no**'} |")
        if e.get("note"):
            notes.append(f"{r['number']}: {e['note']}.")
        if r.get("run"):
            notes.append(f"{r['number']}: from an earlier run, {r['run']['date']}.")
    lines += ["", "How each pair was made: " + " ".join(notes)]
    made = results.get("data", {}).get("encrypted_cache")
    if made:
        lines.append(f"The encrypted cache: {made['made_by']}.")
    lines.append("")
    return "\n".join(lines)


def merge_earlier(results: dict, earlier: dict) -> None:
    """Fill ``results["benchmarks"]`` with the benchmarks it lacks from ``earlier`` (a
    results.json of the same size), each marked with the run it comes from (``run``:
    ``date`` and ``load_avg``), and the data descriptions it lacks.

    Raises:
        ValueError: ``earlier`` was run at another size.
    """
    if earlier.get("size") != results["size"]:
        raise ValueError(f"cannot merge a {earlier.get('size')!r} run into a "
                         f"{results['size']!r} run")
    for key, r in earlier.get("benchmarks", {}).items():
        if key not in results["benchmarks"]:
            r.setdefault("run", {"date": earlier["date"],
                                 "load_avg": earlier["machine"]["load_avg"]})
            results["benchmarks"][key] = r
    for key, value in earlier.get("data", {}).items():
        results["data"].setdefault(key, value)


README_START = "<!-- benchmarks:start (written by python -m benchmarks --update-readme) -->"
README_END = "<!-- benchmarks:end -->"
#: The markers of README's "Encrypted cache performance" table (:func:`render_encryption`).
README_ENC_START = ("<!-- encryption-benchmarks:start (written by python -m benchmarks "
                    "--update-readme) -->")
README_ENC_END = "<!-- encryption-benchmarks:end -->"


def update_readme(readme: Path, table: str, start: str = README_START,
                  end: str = README_END) -> None:
    """Replace the text between the markers ``start`` and ``end`` of ``readme`` (default:
    the benchmark table's) with ``table``.

    Raises:
        ValueError: the markers are missing (nothing is written then).
    """
    text = readme.read_text(encoding="utf-8")
    if start not in text or end not in text:
        raise ValueError(f"{readme} has no markers {start!r}")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{table.strip()}\n{end}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--matrix", action="store_true",
                        help="also run benchmarks 3 and 4 against a real Synapse")
    parser.add_argument("--only", nargs="+",
                        choices=[k for k, _, _ in BENCHMARKS + MATRIX_BENCHMARKS],
                        metavar="NAME", help="run only these benchmarks")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="directory for results.json and results.md")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR,
                        help="cache of generated data (default benchmarks/data)")
    parser.add_argument("--load-duration", type=float, help="seconds of the load benchmark")
    parser.add_argument("--update-readme", nargs="?", const="all",
                        choices=["all", "encryption"],
                        help="also put the tables into README.md: both (all, the default) "
                             "or only the encryption on/off table (encryption)")
    parser.add_argument("--merge", type=Path, metavar="RESULTS_JSON",
                        help="with --only: take the other benchmarks from this earlier "
                             "results.json of the same size (each keeps its own run's date "
                             "and load, shown under the table)")
    args = parser.parse_args(argv)
    # SIGTERM (timeout, a cancelled job) stops like Ctrl-C: the finally blocks and exit
    # stacks stop the servers and the Synapse started here (in sessions of their own).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    size = SIZES[args.size]
    if args.load_duration:
        size = Size(**{**asdict(size), "load_duration": args.load_duration})
    machine = machine_info()
    workdir = Path(tempfile.mkdtemp(prefix="chat-tui-bench-"))
    results = {"size": size.name, "date": now_iso(), "machine": machine,
               "sizes": asdict(size), "benchmarks": {}}
    ctx = None
    try:
        ctx = Context(size, workdir, args.data_dir)
        extra = MATRIX_BENCHMARKS if args.matrix or (
            args.only and set(args.only) & {k for k, _, _ in MATRIX_BENCHMARKS}) else []
        for key, number, module in BENCHMARKS + extra:
            if args.only and key not in args.only:
                continue
            print(f"[{key}] running…", file=sys.stderr, flush=True)
            r = run_one(key, number, module, ctx)
            results["benchmarks"][key] = r
            print(f"[{key}] {r['status']}: {r.get('value') or r.get('reason')} "
                  f"(ratio {r['ratio']}, met {r['met']}, {r['seconds']} s)",
                  file=sys.stderr, flush=True)
        results["data"] = ctx.data_info
        if args.merge:
            merge_earlier(results, json.loads(args.merge.read_text(encoding="utf-8")))
        results["machine"]["load_avg_end"] = machine_info()["load_avg"]
    finally:
        matrix = sys.modules.get("benchmarks.bench_matrix")
        if matrix is not None and ctx is not None:
            matrix.close(ctx)
        shutil.rmtree(workdir, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    encryption = render_encryption(results)
    (args.out / "results.md").write_text(render_markdown(results)
                                         + (f"\n{encryption}" if encryption else ""))
    print(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}", file=sys.stderr)
    if args.update_readme == "all":
        update_readme(ROOT / "README.md", render_markdown(results))
    if args.update_readme and encryption:
        update_readme(ROOT / "README.md", encryption, README_ENC_START, README_ENC_END)
    return 0 if all(r["status"] != "error" for r in results["benchmarks"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
