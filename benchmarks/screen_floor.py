"""What drawing chat-tui's screen with Textual costs, part by part (target 1).

    python -m benchmarks.screen_floor [--size full|smoke] [--runs 5]

Starts, in alternation and exactly as benchmark 1 does (tmux at 120x40, the same
virtualenv, the clock stopped by the same message text): the bare Textual app, chat-tui's
screen drawn from fixed text (``benchmarks/static_screen_app.py``) whole and with parts
left out, and ``chat-tui`` itself on the same cache. Prints each one's median start and
its ratio to the bare app's. Not part of ``python -m benchmarks``: it answers "how much of
chat-tui's cold start is Textual drawing this screen at all", for benchmarks/NOTES.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks import bench_app
from benchmarks.common import DATA_DIR, median, ratio
from benchmarks.run import SIZES, Context
from benchmarks.tmux_timing import run_until_text

VARIANTS: list[tuple[str, tuple[str, ...]]] = [
    ("screen, all parts", ()),
    ("  without the Footer", ("--no-footer",)),
    ("  without the composer (TextArea)", ("--no-composer",)),
    ("  without composer and Footer", ("--no-composer", "--no-footer")),
    ("  ... and messages in one Static", ("--no-composer", "--no-footer", "--one-static")),
    ("  ... and no stylesheet", ("--no-composer", "--no-footer", "--one-static",
                                 "--no-stylesheet")),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="chat-tui-floor-"))
    try:
        home = bench_app.app_home(Context(SIZES[args.size], workdir, DATA_DIR))
        bench_app._byte_compile_app()
        chat_tui = shutil.which("chat-tui", path=str(Path(sys.executable).parent)) or "chat-tui"
        screen = [sys.executable, str(bench_app.STATIC_SCREEN_APP), str(home["screen"])]
        programs = [("bare Textual app", [sys.executable, str(bench_app.BARE_APP)],
                     bench_app.BARE_TEXT)]
        programs += [(name, screen + list(opts), home["probe"]) for name, opts in VARIANTS]
        programs.append(("chat-tui", [chat_tui], home["probe"]))
        times: dict[str, list[float]] = {name: [] for name, _, _ in programs}
        for round_ in range(args.runs + 1):  # the first round warms up, not counted
            for name, command, text in programs:
                elapsed, _ = run_until_text(command, text, env=home["env"],
                                            on_ready=bench_app._quit)
                if round_:
                    times[name].append(elapsed)
        bare = median(times["bare Textual app"])
        for name, _, _ in programs:
            m = median(times[name])
            print(f"{name:40s} {m * 1000:6.0f} ms   ratio {ratio(m, bare)}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
