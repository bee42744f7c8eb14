"""The long-poll notifier's memory of what each device has seen (docs/api.md, /v1/sync:
the device that made a change is not answered early by it; every other change is)."""

from __future__ import annotations

from chat_tui.server.notify import Notifier


def answered_once(n: Notifier, cursor: int) -> None:
    _, seen = n.others_changed("u", "d1", None)
    n.answered("u", "d1", cursor, seen)


def test_own_changes_do_not_count_and_another_devices_do():
    n = Notifier()
    answered_once(n, 5)
    assert n.others_changed("u", "d1", 5)[0] is False
    n.notify(["u"], origin_device="d1")
    assert n.others_changed("u", "d1", 5)[0] is False
    n.notify(["u"], origin_device="d2")
    assert n.others_changed("u", "d1", 5)[0] is True
    assert n.others_changed("u", "d1", 4)[0] is True  # another cursor than the last answer


def test_two_polls_of_one_device_both_see_another_devices_change():
    """An abandoned poll and the live one (same device, same cursor) are both held when
    another device sends: the first to read must not use up the change, or the live poll
    holds it until its timeout."""
    n = Notifier()
    answered_once(n, 5)
    n.notify(["u"], origin_device="d2")
    abandoned = n.others_changed("u", "d1", 5)
    live = n.others_changed("u", "d1", 5)  # before the abandoned one is answered
    assert abandoned[0] is True and live[0] is True
    n.answered("u", "d1", 6, abandoned[1])
    assert n.others_changed("u", "d1", 5)[0] is True  # the live poll, read after that answer
    assert n.others_changed("u", "d1", 6)[0] is False  # the next poll of a device that got it
    n.notify(["u"], origin_device=None)  # the server itself (the assistant)
    assert n.others_changed("u", "d1", 6)[0] is True
