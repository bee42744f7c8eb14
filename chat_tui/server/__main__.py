"""``python -m chat_tui.server ...`` is ``chat-tui-server ...``."""

from __future__ import annotations

from chat_tui.server.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
