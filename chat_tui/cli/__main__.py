"""``python -m chat_tui.cli``: the same as the ``chat-tui`` command."""

from chat_tui.cli import main

raise SystemExit(main())
