"""Benchmarks 1, 2 and 6 need the Textual app (issue 4); filled in once it exists."""

from __future__ import annotations


def _missing() -> dict | None:
    try:
        import chat_tui.ui.launch  # noqa: F401
    except ImportError as exc:
        return {"status": "not measured", "reason": f"the app is not available ({exc})"}
    return None


def run_cold_start(ctx) -> dict:
    return _missing() or {"status": "not measured", "reason": "not written yet"}


def run_open_conversation(ctx) -> dict:
    return _missing() or {"status": "not measured", "reason": "not written yet"}


def run_memory(ctx) -> dict:
    return _missing() or {"status": "not measured", "reason": "not written yet"}
