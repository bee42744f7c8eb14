"""Command line entry point of the ``chat-tui`` client (placeholder until the client lands)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run ``chat-tui``. Returns the process exit status (int)."""
    print("chat-tui: the client is not built yet; see `chat-tui-server --help`.", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
