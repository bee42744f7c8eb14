"""CPU time to the first frame, by phase: a start compared on a loaded machine.

    python -m benchmarks.first_frame_cpu [--size full|smoke] [--runs 10]
        [--tree NAME=DIR ...] [--no-static] [--profile DIR]

Starts, in alternation and as benchmark 1 does (tmux at 120x40, the same virtualenv, the
same isolated user directory and copy of the big cache), the bare Textual app, chat-tui's
screen from fixed text (``static_screen_app.py``) and ``chat-tui``, each with
``benchmarks/first_frame_hook`` first on ``PYTHONPATH``: its ``sitecustomize`` records
``time.process_time()`` (user + system, every thread) at ``textual.app`` imported,
``App.__init__``, ``App._process_messages`` and the first frame (for chat-tui: with the
body shown). Each program is quit with ctrl+q once it has settled, as a user would, so the
cache keeps its clean stamp. ``--tree NAME=DIR`` adds ``chat-tui`` run from another
checkout's ``chat_tui`` (``DIR`` first on ``PYTHONPATH``): a change is judged against the
code without it, in the same alternating rounds. Prints the median of each phase (ms of
CPU), the total's minimum and each program's ratio to the bare app's median.

Wall times on a shared 2-core machine move by 2x with the load; CPU time moves less, but
still grows with it, so only programs of the same rounds are compared (benchmarks/NOTES.md,
"CPU time to the first frame"). ``--profile DIR`` adds one pyinstrument profile per program
to the first frame (``DIR/<program>.txt``), after the timed rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks import bench_app
from benchmarks.common import DATA_DIR, ROOT, median
from benchmarks.run import SIZES, Context
from benchmarks.tmux_timing import pane_pids

HOOK = ROOT / "benchmarks" / "first_frame_hook"
PHASES = (("to textual.app", None, "imported"), ("to App.__init__", "imported", "init"),
          ("App.__init__", "init", "init_done"), ("to the run", "init_done", "run"),
          ("run to the first frame", "run", "frame"),
          ("textual.app to the frame", "imported", "frame"), ("total", None, "frame"))
"""``(label, from mark, to mark)`` of the phases printed (``None``: the process start)."""
SETTLE_S = 1.0
"""Seconds a program runs after its first frame before ctrl+q (the cache opens then)."""


def _start(command: list[str], env: dict[str, str], out: Path, timeout: float = 60.0) -> dict:
    """Run ``command`` in a fresh tmux session until the hook wrote its line to ``out``,
    quit it with ctrl+q after :data:`SETTLE_S` and wait for it to exit; the line's marks."""
    session = f"ffcpu-{uuid.uuid4().hex[:8]}"
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40",
                    f"env {exports} {shlex.join(command)}"], check=True)
    try:
        deadline = time.monotonic() + timeout
        while not (out.exists() and out.read_text(encoding="utf-8").endswith("\n")):
            if time.monotonic() > deadline:
                screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                        capture_output=True, text=True).stdout
                raise TimeoutError(f"{command[-1]}: no first frame; screen:\n{screen}")
            time.sleep(0.01)
        marks = json.loads(out.read_text(encoding="utf-8"))
        time.sleep(SETTLE_S)
        pids = pane_pids(session)
        subprocess.run(["tmux", "send-keys", "-t", session, "C-q"], capture_output=True)
        deadline = time.monotonic() + 20
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.02)
        return marks
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        out.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _phase(marks: dict, start: str | None, end: str) -> float:
    return (marks[end] - (marks[start] if start else 0.0)) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=DIR",
                        help="also run chat-tui from the checkout DIR, shown as NAME")
    parser.add_argument("--no-static", action="store_true",
                        help="leave the static screen out")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="write one pyinstrument profile per program to DIR")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="chat-tui-ffcpu-"))
    try:
        home = bench_app.app_home(Context(SIZES[args.size], workdir, args.data_dir))
        bench_app._byte_compile_app()
        chat_tui = shutil.which("chat-tui", path=str(Path(sys.executable).parent)) or "chat-tui"
        programs: list[tuple[str, list[str], str]] = [
            ("bare", [sys.executable, str(bench_app.BARE_APP)], str(ROOT))]
        if not args.no_static:
            programs.append(("static", [sys.executable, str(bench_app.STATIC_SCREEN_APP),
                                        str(home["screen"])], str(ROOT)))
        programs.append(("chat-tui", [chat_tui], str(ROOT)))
        for spec in args.tree:
            name, _, tree = spec.partition("=")
            subprocess.run([sys.executable, "-m", "compileall", "-q",
                            str(Path(tree) / "chat_tui")], check=True, capture_output=True)
            programs.append((name, [chat_tui], str(Path(tree).resolve())))

        def start(name: str, command: list[str], path: str, profile: Path | None = None):
            out = workdir / f"{name}.jsonl"
            env = {**home["env"], "PYTHONPATH": f"{HOOK}:{path}", "FIRST_FRAME_OUT": str(out)}
            if profile is not None:
                env["FIRST_FRAME_PROFILE"] = str(profile)
            marks = _start(command, env, out)
            if command[0] == chat_tui and not Path(str(home["cache"]) + ".clean").exists():
                # the next start would check the whole file instead of reading it
                raise RuntimeError(f"{name} left the cache without its clean stamp")
            return marks

        results: dict[str, list[dict]] = {name: [] for name, _, _ in programs}
        for round_ in range(args.runs + 1):  # the first round warms up, not counted
            for name, command, path in programs:
                marks = start(name, command, path)
                if round_:
                    results[name].append(marks)
        load = os.getloadavg()
        bare = median([_phase(m, None, "frame") for m in results["bare"]])
        print(f"{args.runs} alternating rounds, load average {load[0]:.1f} "
              f"{load[1]:.1f} {load[2]:.1f}; CPU ms, medians")
        print(f"{'phase':24s}" + "".join(f"{name:>12s}" for name, _, _ in programs))
        for label, first, last in PHASES:
            cells = [median([_phase(m, first, last) for m in results[name]])
                     for name, _, _ in programs]
            print(f"{label:24s}" + "".join(f"{c:12.1f}" for c in cells))
        print(f"{'total, minimum':24s}" + "".join(
            f"{min(_phase(m, None, 'frame') for m in results[name]):12.1f}"
            for name, _, _ in programs))
        print(f"{'ratio to bare':24s}" + "".join(
            f"{median([_phase(m, None, 'frame') for m in results[name]]) / bare:12.3f}"
            for name, _, _ in programs))
        print(f"{'modules':24s}" + "".join(f"{results[name][0]['modules']:12d}"
                                           for name, _, _ in programs))
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            for name, command, path in programs:
                start(name, command, path, args.profile / f"{name}.txt")
            print(f"profiles in {args.profile}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
