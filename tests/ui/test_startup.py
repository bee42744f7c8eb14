"""Startup: the first frame comes from the cache and imports only what it needs (issue 4,
"Start": textual + the store; httpx, FastAPI, uvicorn, openai and the Markdown stack are
lazy). Checked in a fresh interpreter, since the test process has imported everything."""

from __future__ import annotations

import json
import subprocess
import sys

LAZY = ("httpx", "fastapi", "uvicorn", "openai", "chat_tui.api", "chat_tui.sync",
        "chat_tui.server")

PROBE = r"""
import json, sys
from pathlib import Path
from chat_tui.store import Store
from chat_tui.ui.launch import launch  # noqa: F401 - the entry point's own imports
from chat_tui.ui.app import ChatApp

at_import = sorted(m for m in sys.modules if m.startswith(("rich.markdown", "markdown_it")))
store = Store(Path(sys.argv[1]), "alice")
store.open()
seen = {}

async def first_frame(pilot):
    seen["modules"] = sorted(sys.modules)
    seen["skeleton"] = pilot.app.query_one("#skeleton").display
    pilot.app.exit()

ChatApp(store, None).run(headless=True, size=(120, 36), auto_pilot=first_frame)
print(json.dumps({"at_import": at_import, **seen}))
"""


def test_first_frame_imports_no_network_stack(tmp_path):
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "cache.db")],
                         capture_output=True, text=True, timeout=60, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["at_import"] == []
    loaded = set(result["modules"])
    assert "textual.app" in loaded and "peewee" in loaded
    assert [m for m in LAZY if m in loaded] == []
    assert result["skeleton"] is True  # empty cache: the skeleton, never a blank screen
