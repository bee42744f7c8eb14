"""The limits of the wire API v1 (docs/api.md, Conventions, Routes and Limits).

Plain constants, no pydantic: the client's cache and the server's importer read them
without loading the models.
"""

from __future__ import annotations

import re

#: Message body length in UTF-8 bytes: 1..65,536 (longer: 413 ``too_large``, empty: 422).
MAX_BODY_BYTES = 65_536
#: Conversation title length in characters after trimming: 1..200.
MAX_TITLE_CHARS = 200
#: A model id (a conversation's ``model``) in characters: 1..200.
MAX_MODEL_CHARS = 200
#: A conversation's ``system_prompt`` in characters: at most 16,000.
MAX_SYSTEM_PROMPT_CHARS = 16_000
#: Login ``device_name`` length in characters (at most 200).
MAX_DEVICE_NAME_CHARS = 200
#: Login ``device_name`` when the body leaves it out.
DEFAULT_DEVICE_NAME = "device"
#: Usernames on the wire: 1 to 64 of ``a-z 0-9 _ . -``, case-folded to lower.
USERNAME_RE = re.compile(r"^[a-z0-9_.-]{1,64}$")
#: Members named in one ``PUT /v1/conversations/{cid}`` body, at most.
MAX_MEMBERS = 1000
#: ``GET …/messages`` ``limit``: 1..500, 50 when absent.
MIN_PAGE_LIMIT = 1
MAX_PAGE_LIMIT = 500
DEFAULT_PAGE_LIMIT = 50
#: Newest messages of one conversation in one ``/v1/sync`` answer (more: ``limited``).
SYNC_PAGE = 50
#: ``/v1/sync`` long-poll ``timeout`` in seconds: 0..30, 0 when absent.
MAX_SYNC_TIMEOUT = 30
#: Size of any request in bytes, with or without ``Content-Length`` (over it: 413).
MAX_REQUEST_BYTES = 1024 * 1024
#: The system user that writes assistant replies; it cannot log in.
ASSISTANT_USERNAME = "assistant"
#: The version segment every route path starts with.
API_PREFIX = "/v1"


def text_error(value: str) -> str | None:
    """Check ``value`` against docs/api.md, Conventions, Text: Unicode text without NUL
    (U+0000) and without unpaired UTF-16 surrogates (U+D800..U+DFFF alone, which JSON can
    carry as ``"\\ud800"`` but UTF-8 cannot), so SQLite and PostgreSQL store every
    accepted string as it is.

    Returns None when it is such text, else the reason (the server answers 422
    ``validation`` with it).
    """
    if "\x00" in value:
        return "must not contain the NUL character (U+0000)"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must not contain an unpaired UTF-16 surrogate (U+D800..U+DFFF)"
    return None


def body_size_error(body: str) -> tuple[int, str, str] | None:
    """Check a message body against 1..:data:`MAX_BODY_BYTES` UTF-8 bytes.

    Returns None when it fits, else ``(status, code, message)``: ``(413, "too_large", …)``
    when longer, ``(422, "validation", …)`` when empty (docs/api.md, PUT and PATCH of a
    message).
    """
    size = len(body.encode("utf-8"))
    if size > MAX_BODY_BYTES:
        return 413, "too_large", f"body is {size} bytes; the limit is {MAX_BODY_BYTES} bytes"
    if size == 0:
        return 422, "validation", "body: must not be empty"
    return None
