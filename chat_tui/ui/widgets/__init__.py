"""Widgets of the app, grouped by the screen area they live in (posting's layout)."""
