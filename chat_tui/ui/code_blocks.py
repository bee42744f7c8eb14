"""The fenced code blocks of a Markdown message (for "copy a code block").

A fence is three or more backticks or tildes, indented by at most three spaces, with an
optional info string (its first word is the language); the block ends at a line holding
only a fence of the same character at least as long, or at the end of the message
(CommonMark's rules for fenced code blocks). The lines of the block lose up to the
fence's indentation. Standard library only: nothing of it is needed for the first frame.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CodeBlock", "code_blocks"]

_OPEN = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block: ``language`` (first word of the info string, "" when none) and
    ``code`` (its text, without the fences, no final newline)."""

    language: str
    code: str

    def label(self, width: int = 60) -> str:
        """One line naming the block for a picker: language, line count, first line."""
        lines = self.code.splitlines() or [""]
        first = lines[0].strip()
        if len(first) > width:
            first = first[: width - 1] + "…"
        kind = self.language or "code"
        count = f"{len(lines)} line" + ("" if len(lines) == 1 else "s")
        return f"{kind}, {count}: {first}"


def code_blocks(markdown: str) -> list[CodeBlock]:
    """The fenced code blocks of ``markdown``, in order (see module doc)."""
    blocks: list[CodeBlock] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        match = _OPEN.match(lines[index])
        index += 1
        if match is None:
            continue
        fence, info = match.group("fence"), match.group("info").strip()
        if fence[0] == "`" and "`" in info:
            continue  # not a fence (CommonMark: no backtick in a backtick fence's info)
        indent = len(match.group("indent"))
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        body: list[str] = []
        while index < len(lines) and not closing.match(lines[index]):
            line = lines[index]
            strip = min(indent, len(line) - len(line.lstrip(" ")))
            body.append(line[strip:])
            index += 1
        index += 1  # the closing fence (or past the end)
        language = info.split()[0] if info else ""
        blocks.append(CodeBlock(language, "\n".join(body)))
    return blocks
