"""``chat-tui-server``: the reference server of chat-tui (wire API v1, see docs/api.md).

FastAPI under uvicorn, storage through Peewee (SQLite in WAL mode by default, PostgreSQL
through ``playhouse.db_url``). This package shares nothing with the client but the wire
format: it never imports ``chat_tui.config/store/api/sync/ui`` and they never import it.
"""

from __future__ import annotations

__version__ = "0.1.0"
