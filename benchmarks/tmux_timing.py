"""Time how long a terminal program takes to show a given text, driven like a person would.

A program is started inside a detached tmux session of a fixed size; ``capture-pane`` is polled
until the wanted text appears. The clock starts just before ``tmux new-session`` and stops at the
first capture that contains the text, so the figure includes interpreter start, imports and the
first frames, which is what a user waits for.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any


def time_until_text(
    command: list[str],
    text: str,
    *,
    width: int = 120,
    height: int = 40,
    timeout: float = 60.0,
    poll_interval: float = 0.005,
    env: dict[str, str] | None = None,
) -> float:
    """Seconds until ``text`` is on screen; see :func:`run_until_text` for the arguments."""
    return run_until_text(command, text, width=width, height=height, timeout=timeout,
                          poll_interval=poll_interval, env=env)[0]


def pane_pids(session: str) -> list[int]:
    """Pids of the process running in ``session``'s pane and all its descendants (from
    /proc), the pane's own process first."""
    out = subprocess.run(["tmux", "list-panes", "-t", session, "-F", "#{pane_pid}"],
                         capture_output=True, text=True).stdout.split()
    if not out:
        return []
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    pids, todo = [], [int(out[0])]
    while todo:
        pid = todo.pop(0)
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return pids


def run_until_text(
    command: list[str],
    text: str,
    *,
    width: int = 120,
    height: int = 40,
    timeout: float = 60.0,
    poll_interval: float = 0.005,
    env: dict[str, str] | None = None,
    on_ready: Callable[[str], Any] | None = None,
) -> tuple[float, Any]:
    """Start ``command`` in a fresh tmux session and return seconds until ``text`` is on screen.

    Args:
        command: argv of the program to run.
        text: a string that must appear in ``tmux capture-pane -p`` output.
        width, height: terminal size in cells.
        timeout: give up after this many seconds.
        poll_interval: seconds between two captures.
        env: extra environment variables for the program.
        on_ready: called with the tmux session name once the text is on screen, before the
            session is killed (e.g. to read the program's memory).

    Returns:
        ``(elapsed wall-clock seconds, what on_ready returned or None)``.

    Raises:
        TimeoutError: the text did not appear within ``timeout``; the last screen is in the message.
    """
    session = f"bench-{uuid.uuid4().hex[:8]}"
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
    shell_cmd = f"env {exports} {shlex.join(command)}" if exports else shlex.join(command)
    start = time.perf_counter()
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", str(width), "-y", str(height), shell_cmd],
        check=True,
    )
    screen = ""
    try:
        while time.perf_counter() - start < timeout:
            screen = subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", session],
                capture_output=True,
                text=True,
            ).stdout
            if text in screen:
                elapsed = time.perf_counter() - start
                return elapsed, (on_ready(session) if on_ready is not None else None)
            time.sleep(poll_interval)
        raise TimeoutError(f"{text!r} not on screen after {timeout} s; last screen:\n{screen}")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
