"""The wire objects the cache applies, under the names the store uses for them.

They are the ``chat_tui.wire`` models (docs/api.md, Objects): the store reads their
attributes only (times are timezone-aware UTC datetimes). This module loads pydantic, so
the store imports it under ``TYPE_CHECKING`` only: ``import chat_tui.store`` is on the
app's first-frame path.
"""

from __future__ import annotations

from chat_tui.wire.models import Conversation as ConversationRecord
from chat_tui.wire.models import Message as MessageRecord
from chat_tui.wire.models import MessagesPage as PageRecord
from chat_tui.wire.models import ReadMarker as ReadMarkerRecord
from chat_tui.wire.models import SyncConversation as SyncConversationRecord
from chat_tui.wire.models import SyncResponse as SyncRecord

__all__ = [
    "ConversationRecord", "MessageRecord", "PageRecord", "ReadMarkerRecord",
    "SyncConversationRecord", "SyncRecord",
]
