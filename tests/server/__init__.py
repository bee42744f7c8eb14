"""Tests of the reference server (``chat_tui.server``)."""
