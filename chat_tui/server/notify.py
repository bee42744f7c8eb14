"""In-memory wake-ups for long-polling ``/v1/sync`` requests (docs/api.md, Long-poll).

One :class:`asyncio.Event` generation per waiting *device* (user id, device id): a waiter
takes its current event *before* it checks the database, then waits on it; a writer, after
its commit, calls :meth:`Notifier.notify` for every member of the conversation with the
device that made the change, which sets the current event of every other waiting device of
those users and starts a new generation. So a commit between the check and the wait is
never missed, and nothing polls.

The device that made a change is not woken by it, and its long-poll is not answered early
because of it (it has the change from its own request's answer): per device, the notifier
remembers the cursor of its last sync answer and whether another device changed anything
for its user since (:meth:`others_changed`, :meth:`answered`). What it does not know (a
device it has not answered yet, another ``since``, a restart) counts as changed, so the
worst a lost memory costs is an early answer, never a missed one.

One notifier per server process. Several processes on one PostgreSQL database hear each
other's changes through ``LISTEN/NOTIFY`` (:mod:`chat_tui.server.pgbus`), which calls
:meth:`Notifier.notify` here with the other process's user ids and origin device, and
:meth:`Notifier.wake_all` when notices may have been missed. All methods run on the event
loop thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

#: Forget every device's memory (everything then counts as changed) past this many devices.
MAX_REMEMBERED_DEVICES = 100_000


@dataclass
class _Device:
    cursor: int | None = None  # cursor of the device's last sync answer
    others: int = 1  # changes made for its user by other devices (or the server), counted
    seen: int = 0  # ``others`` as it was read for the device's last sync answer
    own: bool = False  # the device itself changed something since its last read


class Notifier:
    """Per-device wake-up events for long-polls."""

    def __init__(self) -> None:
        self._events: dict[tuple[str, str], asyncio.Event] = {}
        self._waiters: dict[tuple[str, str], int] = {}
        self._waiting: dict[str, set[str]] = {}  # user id -> devices with a waiter
        self._devices: dict[str, dict[str, _Device]] = {}  # user id -> device id -> memory
        self._remembered = 0
        self.closed = False

    def subscribe(self, user_id: str, device_id: str) -> asyncio.Event:
        """The event the next change for ``user_id`` made by another device than
        ``device_id`` will set; pair with :meth:`release`."""
        key = (user_id, device_id)
        event = self._events.get(key)
        if event is None:
            event = self._events[key] = asyncio.Event()
            if self.closed:
                event.set()
        self._waiters[key] = self._waiters.get(key, 0) + 1
        self._waiting.setdefault(user_id, set()).add(device_id)
        return event

    def release(self, user_id: str, device_id: str) -> None:
        """Drop one waiter of the device; forget its event when none is left."""
        key = (user_id, device_id)
        left = self._waiters.get(key, 0) - 1
        if left <= 0:
            self._waiters.pop(key, None)
            self._events.pop(key, None)
            devices = self._waiting.get(user_id)
            if devices is not None:
                devices.discard(device_id)
                if not devices:
                    del self._waiting[user_id]
        else:
            self._waiters[key] = left

    def notify(self, user_ids: Iterable[str], origin_device: str | None = None) -> None:
        """After a commit: wake every waiting request of each of ``user_ids`` except those
        of ``origin_device`` (the device whose request made the change; None: the server
        itself, for example the assistant, wakes everyone), and mark the change for
        :meth:`others_changed`."""
        for user_id in user_ids:
            for device_id, memory in self._devices.get(user_id, {}).items():
                if device_id != origin_device:
                    memory.others += 1
                else:
                    memory.own = True
            for device_id in list(self._waiting.get(user_id, ())):
                if device_id == origin_device:
                    continue
                key = (user_id, device_id)
                event = self._events.pop(key, None)
                if event is not None:
                    event.set()
                    if key in self._waiters:
                        self._events[key] = asyncio.Event()

    def others_changed(self, user_id: str, device_id: str,
                       since: int | None) -> tuple[bool, int]:
        """Call before reading a sync answer for the device. Returns ``(changed, seen)``:
        ``changed`` is False only when the device's last answer had cursor ``since`` and no
        other device (nor the server) changed anything for ``user_id`` since the read of
        that answer, so whatever changed after ``since`` is the device's own doing;
        ``seen`` goes to :meth:`answered` with the answer read now. A count, not a flag
        cleared here: two polls of one device at once (one of them abandoned by the
        client) both see a change until an answer read after it is sent. Clears the
        device's own mark (:meth:`own_changed`)."""
        devices = self._devices.setdefault(user_id, {})
        memory = devices.get(device_id)
        if memory is None:
            if self._remembered >= MAX_REMEMBERED_DEVICES:  # forget all: "changed"
                self._devices.clear()
                self._remembered = 0
                devices = self._devices.setdefault(user_id, {})
            memory = devices[device_id] = _Device()
            self._remembered += 1
        seen = memory.others
        changed = seen > memory.seen or since is None or memory.cursor != since
        memory.own = False
        return changed, seen

    def own_changed(self, user_id: str, device_id: str) -> bool:
        """Whether the device itself changed something for its user since the last
        :meth:`others_changed` (so a held long-poll re-reads before its timeout answer);
        clears the mark."""
        memory = self._devices.get(user_id, {}).get(device_id)
        if memory is None:
            return True
        own, memory.own = memory.own, False
        return own

    def answered(self, user_id: str, device_id: str, cursor: int, seen: int) -> None:
        """Record the sync answer just sent to the device: its ``cursor`` and the ``seen``
        count :meth:`others_changed` gave before its read."""
        memory = self._devices.get(user_id, {}).get(device_id)
        if memory is not None:
            memory.cursor = cursor
            memory.seen = max(memory.seen, seen)

    def wake_all(self) -> None:
        """Wake every waiting request and count a change for every remembered device (a
        change may have been missed: another process's wake-ups were not heard for a
        while). Each woken poll reads again and answers what changed, if anything."""
        for devices in self._devices.values():
            for memory in devices.values():
                memory.others += 1
        for key in list(self._events):
            event = self._events.pop(key)
            event.set()
            if key in self._waiters:
                self._events[key] = asyncio.Event()

    def close(self) -> None:
        """Wake every waiter now (server shutdown); later waits return at once."""
        self.closed = True
        for event in self._events.values():
            event.set()
