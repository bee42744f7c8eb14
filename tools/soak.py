"""The long fault-injection soak: randomized rounds of user actions, ``kill -9`` of
the client, server restarts and proxy faults against the real engine and the real server,
with the invariants of ``tests/soak/harness.py`` checked at a quiet point every few rounds.

Usage::

    .venv/bin/python -m tools.soak --rounds 1000 [--seed N] [--check-every 10] [--json FILE]
    .venv/bin/python -m tools.soak --world matrix --rounds 100000 --worlds 1 --minutes 15

(``--world matrix``: the same steps on a Matrix account against a real Synapse of the
world's own, ``tests/soak/matrix_world.py``; ``--minutes M``: no new round after M
minutes, the rounds done so far then checked and counted as usual.)

(from the repository root: ``tools`` and ``tests`` are packages of the checkout).

Prints the seed first (``--seed N`` replays the same sequence of steps; timing is real, so a
race may need a few runs to reproduce), a progress line per check, and at the end: rounds,
messages sent, kills, server restarts, faults injected (by kind), quiet-point checks, and the
lost / duplicated / reordered / stale / phantom / cache / stuck / integrity counts. Every
broken invariant is printed with its round, the seed, that check's lost / duplicated /
reordered / stuck counts (zeros included) and the last steps. Ctrl-C or SIGTERM still
prints the figures so far. Exit status 0 when every count is zero, 1 otherwise or when
interrupted.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import tempfile
import time
from pathlib import Path

from tests.soak.harness import FAULT_KINDS, World
from tests.soak.matrix_world import MatrixWorld

#: Step weights of a round (a round is one step).
STEPS = {
    "send": 24, "burst": 6, "edit": 10, "delete": 6, "create": 1, "offline": 4,
    "restart_server": 3, "stop_server": 2, "kill": 8, "kill_mid_send": 4, "fault": 18,
    "phone": 6, "poison": 2,
}
#: The Matrix world's weights: a Synapse restart costs seconds, so it is rarer.
MATRIX_STEPS = {**STEPS, "restart_server": 1, "stop_server": 1}


def step(world: World, rng: random.Random, name: str) -> None:
    """Run one step ``name`` with its arguments drawn from ``rng``."""
    if name == "send":
        world.send(rng.randrange(8))
    elif name == "burst":
        conv = rng.randrange(8)
        for i in range(rng.randint(2, 6)):
            world.send(conv + i % 2)
    elif name == "edit":
        world.edit(rng.randrange(1000))
    elif name == "delete":
        world.delete(rng.randrange(1000))
    elif name == "create":
        if len(world.conversations) < 6:
            world.create_conversation()
    elif name == "offline":
        world.set_work_offline(rng.random() < 0.5)
    elif name == "restart_server":
        world.restart_server(rng.random() < 0.5, rng.uniform(0, 0.5))
    elif name == "stop_server":
        world.stop_server()
    elif name == "kill":
        world.kill_client(rng.uniform(0, 0.4))
    elif name == "kill_mid_send":
        world.kill_client_mid_request()
    elif name == "fault":
        world.fault(rng.choice(FAULT_KINDS), rng.choice(("PUT", "PATCH", "DELETE", "GET", None)),
                    rng.randint(1, 4))
    elif name == "phone":
        world.phone_send(rng.randrange(8))
    elif name == "poison":
        world.send(rng.randrange(8), poison=True, discard_on_fail=rng.random() < 0.5)
    else:
        raise ValueError(name)


def _report(problems: dict[str, list[str]], where: str, seed: int, log: list[str]) -> None:
    """Print a check's broken invariants, then its lost / duplicated / reordered / stuck
    counts even when they are zero (they are checked after a stuck item too, so a zero
    there is a finding, not a skipped check), then the last steps."""
    print(f"BROKEN at {where} (seed {seed}):", flush=True)
    for kind, items in problems.items():
        for item in items[:5]:
            print(f"  {kind}: {item}", flush=True)
    print("  this check: " + ", ".join(f"{k} {len(problems.get(k, []))}" for k in
                                       ("lost", "duplicated", "reordered", "stuck")),
          flush=True)
    print("  last steps:\n    " + "\n    ".join(log[-25:]), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--check-every", type=int, default=10,
                        help="rounds between two quiet-point checks")
    parser.add_argument("--worlds", type=int, default=4,
                        help="fresh server+client worlds the rounds are split over")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--world", choices=("chat-tui", "matrix"), default="chat-tui",
                        help="the server of the worlds: chat-tui-server, or Synapse")
    parser.add_argument("--minutes", type=float, default=0.0,
                        help="stop starting rounds after this many minutes (0: no limit); "
                             "the world in use still gets its final check")
    args = parser.parse_args(argv)
    # SIGTERM stops like Ctrl-C, so the finally blocks stop the servers and clients.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"soak seed {seed} (replay: python -m tools.soak --seed {seed} --rounds {args.rounds} "
          f"--check-every {args.check_every} --worlds {args.worlds} --world {args.world})",
          flush=True)
    rng = random.Random(seed)
    names, weights = zip(*(MATRIX_STEPS if args.world == "matrix" else STEPS).items(),
                         strict=True)
    world_class = MatrixWorld if args.world == "matrix" else World
    base = Path(tempfile.mkdtemp(prefix="chat-tui-soak-"))
    started = time.monotonic()
    totals: dict = {}
    failures = 0
    per_world = -(-args.rounds // args.worlds)
    done_rounds = 0
    deadline = started + args.minutes * 60 if args.minutes > 0 else None
    interrupted = False
    for w in range(args.worlds):
        if interrupted or (deadline is not None and time.monotonic() >= deadline):
            break
        world = world_class(base / f"world{w}").start()
        try:
            for _ in range(min(per_world, args.rounds - done_rounds)):
                if deadline is not None and time.monotonic() >= deadline:
                    break
                name = rng.choices(names, weights)[0]
                world.stats.rounds += 1
                done_rounds += 1
                step(world, rng, name)
                if done_rounds % args.check_every == 0:
                    problems = world.check()
                    s = world.stats
                    print(f"round {done_rounds}: world {w}, sent {s.messages_sent}, kills "
                          f"{s.kills}, faults {sum(s.faults.values())}, problems "
                          f"{sum(s.problems.values())} ({time.monotonic() - started:.0f}s)",
                          flush=True)
                    if problems:
                        failures += 1
                        _report(problems, f"round {done_rounds}", seed, world.log)
            problems = world.check()
            if problems:
                failures += 1
                _report(problems, f"the final check of world {w}", seed, world.log)
        except KeyboardInterrupt:
            # Ctrl-C or SIGTERM: the figures so far are still printed (and exit 1).
            interrupted = True
            print(f"INTERRUPTED at round {done_rounds} (seed {seed})", flush=True)
        finally:
            world.close()
        for key, value in world.stats.as_dict().items():
            if isinstance(value, dict):
                merged = totals.setdefault(key, {})
                for k, v in value.items():
                    merged[k] = merged.get(k, 0) + v
            else:
                totals[key] = totals.get(key, 0) + value
    totals["seconds"] = round(time.monotonic() - started)
    totals["seed"] = seed
    print("\n".join(f"{k:>20}: {v}" for k, v in totals.items()), flush=True)
    if args.json:
        args.json.write_text(json.dumps(totals, indent=2))
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failures or interrupted else 0


if __name__ == "__main__":
    raise SystemExit(main())
