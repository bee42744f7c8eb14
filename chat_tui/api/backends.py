"""The backend of an account by its kind (docs/sync.md, Matrix): :func:`make_backend`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chat_tui.api.detect import CHAT_TUI, MATRIX

if TYPE_CHECKING:
    from chat_tui.api.backend import Backend
    from chat_tui.api.matrix.core import IdStore


def make_backend(kind: str, base_url: str, token: str | None = None, *, user_id: str = "",
                 ids: IdStore | None = None, timeout: float = 15.0,
                 probe_timeout: float = 3.0) -> Backend:
    """A new client of the server at ``base_url``: a
    :class:`~chat_tui.api.matrix.MatrixClient` for ``kind`` :data:`MATRIX` (``user_id`` the
    account's Matrix user id, ``ids`` its durable id store, rule M4), else an
    :class:`~chat_tui.api.client.ApiClient` (:data:`CHAT_TUI`). ``timeout`` and
    ``probe_timeout`` are seconds (sync rule C1).

    Raises:
        ValueError: an unknown ``kind``.
    """
    if kind == MATRIX:
        from chat_tui.api.matrix import MatrixClient

        return MatrixClient(base_url, token, user_id=user_id, ids=ids, timeout=timeout,
                            probe_timeout=probe_timeout)
    if kind != CHAT_TUI:
        raise ValueError(f"unknown kind of server {kind!r}")
    from chat_tui.api.client import ApiClient

    return ApiClient(base_url, token, timeout=timeout, probe_timeout=probe_timeout)


__all__ = ["CHAT_TUI", "MATRIX", "make_backend"]
