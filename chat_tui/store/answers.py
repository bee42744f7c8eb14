"""Cached answers: offline, an earlier answer of the assistant to a question like this one.

Offline in an assistant conversation, the app shows the reply that followed the closest
earlier question of ours, labelled "cached answer from <date>". Pure Python over the store's read API (``Cache.search``,
``Cache.message_window_around``, ``Cache.me``); no Textual, no network.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.store import ConversationView, MessageView

__all__ = ["ASSISTANT", "find_cached_answer", "similarity"]

log = logging.getLogger(__name__)

ASSISTANT = "assistant"
"""Author name of the assistant's messages (docs/api.md)."""

_WORD = re.compile(r"\w+", re.UNICODE)


def _words(value: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(value)]


def similarity(a: str, b: str) -> float:
    """How closely two questions match, 0..1: the larger of word-set Jaccard and
    ``difflib`` ratio over the normalised (lower-cased, word-only) text."""
    wa, wb = _words(a), _words(b)
    if not wa or not wb:
        return 0.0
    jaccard = len(set(wa) & set(wb)) / len(set(wa) | set(wb))
    ratio = difflib.SequenceMatcher(None, " ".join(wa), " ".join(wb)).ratio()
    return max(jaccard, ratio)


def find_cached_answer(store: Any, conversations: Iterable[ConversationView], question: str,
                       *, exclude: str | None = None,
                       threshold: float = 0.6) -> MessageView | None:
    """The assistant answer that followed the cached question closest to ``question``.

    ``store`` is a :class:`chat_tui.store.Cache` (only its read API is used);
    ``conversations`` the ``ConversationView`` rows to consider (only assistant ones
    count); ``exclude`` a message id to skip (the question just sent).

    Searches the cache (``store.search`` over the question's words, FTS5, offline), keeps
    hits that are our own messages in assistant conversations, scores them with
    :func:`similarity` (at least ``threshold``), and returns the first non-deleted,
    non-failed, finished assistant message after the best one (``MessageView``), or None.
    A failing search of one word is logged and skipped (the answer is a convenience).
    """
    words = [w for w in dict.fromkeys(_words(question)) if len(w) > 2][:8]
    if not words:
        return None
    assistant_ids = {c.id for c in conversations if c.assistant}
    # store.search needs every word of a query to occur: one query per word, pooled.
    hits: dict[str, Any] = {}
    for word in words:
        try:
            found = store.search(word, limit=20)
        except Exception:  # noqa: BLE001
            log.info("cached-answer search failed", exc_info=True)
            continue
        for hit in found:
            hits.setdefault(hit.message_id, hit)
    me = store.me
    best: tuple[float, Any] | None = None
    for hit in hits.values():
        if hit.message_id == exclude or hit.author != me or hit.conversation_id not in assistant_ids:
            continue
        window = store.message_window_around(hit.conversation_id, hit.message_id, limit=12)
        ids = [v.id for v in window]
        if hit.message_id not in ids:
            continue
        index = ids.index(hit.message_id)
        score = similarity(question, window[index].body)
        if score < threshold or (best is not None and score <= best[0]):
            continue
        for view in window[index + 1:]:
            if view.author == ASSISTANT:
                if not (view.deleted or view.error or view.streaming) and view.body.strip():
                    best = (score, view)
                break
            if view.mine:
                break
    return best[1] if best else None
