"""Untrusted text made inert before it reaches the terminal.

Message bodies, conversation titles and user names come from other people (untrusted
text). They must show as literal characters: Rich markup stays text because
we only ever build :class:`rich.text.Text` objects from them (never a markup string),
and every control character is replaced by a visible stand-in here, so no ANSI/OSC
escape sequence, bell, backspace or carriage return reaches the terminal.

Mapping (applied by :func:`inert`):

- C0 controls ``U+0000..U+001F`` (except newline, and tab which becomes spaces) become
  their Unicode "control picture" (``ESC`` -> ``␛``, ``BEL`` -> ``␇``, ``CR`` -> ``␍``).
- ``DEL`` (``U+007F``) becomes ``␡``.
- C1 controls ``U+0080..U+009F`` (``CSI`` is ``U+009B``) and the bidirectional
  override/isolate characters (the "Trojan Source" class) become ``<U+XXXX>``.
"""

from __future__ import annotations

import re

from rich.text import Text

__all__ = ["inert", "inert_line", "text"]

_BIDI = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def _build_table(keep_newline: bool) -> dict[int, str]:
    table: dict[int, str] = {}
    for code in range(0x20):
        table[code] = chr(0x2400 + code)
    table[0x09] = "    "
    if keep_newline:
        del table[0x0A]
    else:
        table[0x0A] = " "
    table[0x7F] = "\u2421"
    for code in range(0x80, 0xA0):
        table[code] = f"<U+{code:04X}>"
    for char in _BIDI:
        table[ord(char)] = f"<U+{ord(char):04X}>"
    return table


_MULTILINE = _build_table(keep_newline=True)
_ONE_LINE = _build_table(keep_newline=False)
_SPACES = re.compile(r" {2,}")


def inert(value: str) -> str:
    """Return ``value`` (str) with every control character made visible; newlines kept.

    The result is still plain text: wrap it in :class:`rich.text.Text` (see :func:`text`),
    never format it into a markup string.
    """
    return value.translate(_MULTILINE)


def inert_line(value: str, limit: int | None = None) -> str:
    """Return ``value`` (str) as one inert line: controls visible, newlines as spaces.

    ``limit`` (characters) truncates with an ellipsis; used for titles, user names and
    previews in the conversation list.
    """
    line = _SPACES.sub(" ", value.translate(_ONE_LINE)).strip()
    if limit is not None and len(line) > limit:
        line = line[: max(0, limit - 1)] + "\u2026"
    return line


def text(value: str, style: str = "", *, one_line: bool = False) -> Text:
    """A :class:`rich.text.Text` holding ``value`` literally (markup is not parsed).

    ``style`` is a trusted Rich style name chosen by our code (never user text).
    """
    return Text(inert_line(value) if one_line else inert(value), style=style)
