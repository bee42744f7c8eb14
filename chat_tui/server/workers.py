"""``chat-tui-server serve --workers N``: N server processes sharing one listening socket.

The parent process opens the socket, then forks N children; each child builds its own
application (its own database connections, PostgreSQL listener and assistant) and runs
uvicorn on the inherited socket, so the kernel hands each new connection to whichever
child accepts it first. Everything the children must share goes through PostgreSQL
(docs/api.md, Several server processes): SQLite is served by one process, and ``serve``
refuses ``--workers`` above 1 there.

The parent only supervises: it reports ready once every child has started, forwards
SIGTERM and SIGINT to the children (each stops gracefully), and starts a new child when
one exits on its own (a crash) after the start-up. A child that fails before it is ready
stops them all, with exit status 1.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import time
from collections.abc import Callable

log = logging.getLogger("chat_tui.server")

#: Seconds the children may take to become ready.
START_SECONDS = 60.0
#: A child that lived shorter than this is replaced only after this many seconds.
RESTART_PAUSE_SECONDS = 1.0
#: Seconds the stopping children may take before they are killed.
STOP_SECONDS = 15.0


def database_allows_workers(url: str) -> bool:
    """Whether the database of ``url`` (``db.database_url`` form) may be served by more
    than one process: PostgreSQL yes, SQLite no."""
    return not url.startswith("sqlite")


def run_workers(count: int, run_child: Callable[[Callable[[], None]], None],
                ready: Callable[[], None]) -> int:
    """Fork ``count`` children and supervise them until they all stop; returns the exit
    status (0 after a requested stop, 1 when a child failed to start).

    ``run_child(announce)`` runs in each child (it serves until told to stop; it calls
    ``announce()`` once it accepts connections); ``ready()`` runs in the parent once every
    child announced itself. Call it before any thread is started in this process (fork).
    """
    read_fd, write_fd = os.pipe()
    children: dict[int, float] = {}  # pid -> start time
    stopping = False

    def announce() -> None:
        os.write(write_fd, b"r")

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:  # the child
            status = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                os.close(read_fd)
                run_child(announce)
                status = 0
            except BaseException:
                log.exception("server worker %d failed", os.getpid())
            finally:
                os._exit(status)
        children[pid] = time.monotonic()

    def stop_children(signum: int = signal.SIGTERM) -> None:
        for pid in list(children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def on_signal(signum, frame) -> None:
        nonlocal stopping
        stopping = True
        stop_children()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for _ in range(count):
            spawn()
        announced = 0
        deadline = time.monotonic() + START_SECONDS
        while announced < count and not stopping:
            if time.monotonic() > deadline or _reap(children):
                log.error("a server worker did not start; stopping the others")
                stopping = True
                stop_children()
                _wait_all(children)
                return 1
            ready_fds, _, _ = select.select([read_fd], [], [], 0.1)
            if ready_fds:
                announced += len(os.read(read_fd, 64))
        if not stopping:
            ready()
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            started = children.pop(pid, time.monotonic())
            if not stopping:
                log.warning("server worker %d exited (status %d); starting another",
                            pid, os.waitstatus_to_exitcode(status))
                if time.monotonic() - started < RESTART_PAUSE_SECONDS:
                    time.sleep(RESTART_PAUSE_SECONDS)  # no busy loop of failing starts
                if not stopping:
                    spawn()
            while True:  # keep the pipe empty (each started child writes one byte)
                ready_fds, _, _ = select.select([read_fd], [], [], 0)
                if not ready_fds:
                    break
                os.read(read_fd, 64)
        return 0
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        os.close(read_fd)
        os.close(write_fd)


def _reap(children: dict[int, float]) -> bool:
    """Collect the children that exited; True when any did."""
    gone = False
    for pid in list(children):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            children.pop(pid)
            gone = True
    return gone


def _wait_all(children: dict[int, float]) -> None:
    deadline = time.monotonic() + STOP_SECONDS
    while children and time.monotonic() < deadline:
        _reap(children)
        time.sleep(0.05)
    for pid in list(children):
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        children.pop(pid, None)
