"""``chat-tui-server``: the reference server of chat-tui (wire API v1, see docs/api.md).

FastAPI under uvicorn, storage through Peewee (SQLite in WAL mode by default, PostgreSQL
through ``playhouse.db_url``). Of the rest of chat_tui it imports only ``chat_tui.wire``,
the wire objects and limits it shares with the client; the client imports only
``chat_tui.server.embedded`` (the local mode).

- :mod:`.app`: ``create_app``, error answers, ``/openapi.json``;
- :mod:`.routes`: one ``APIRouter`` per resource (health, auth, conversations, messages,
  sync) and the shared dependencies (:mod:`.routes.context`);
- :mod:`.data`: ``ServerDB``, data access per resource; rows become wire objects in
  :mod:`.data.shape`;
- :mod:`.assistant`, :mod:`.notify`, :mod:`.ratelimit`, :mod:`.body_limit`: the assistant
  member, long-poll wake-ups, the send rate and the request size limit;
- :mod:`.settings`, :mod:`.db`, :mod:`.models`, :mod:`.importer`, :mod:`.cli`,
  :mod:`.embedded`: configuration, schema, the command line and the in-process server.
"""

from __future__ import annotations

__version__ = "0.1.0"
