"""Writing ``config.toml`` from the app: the model part (providers, default model) and the
``[ui]`` table (the theme).

The app changes only what it owns and keeps every other line of the file as it is:

- :func:`save_model_settings` replaces the top-level ``default_model`` and
  ``default_provider`` keys and every ``[[providers]]`` table; comments and keys of the
  other tables (``[account]``, ``[sync]``, ``[cache]``, ``[ui]``) stay, and so does
  ``assistant``;
- :func:`save_theme` sets ``theme`` in the ``[ui]`` table (created at the end when
  missing); :func:`load_theme` (``chat_tui.config.settings``, re-exported here) reads it.

Every write is checked before it replaces the file: the new text must parse, the model
part must load (:func:`chat_tui.config.providers.load_model_config`), and every value
outside what was changed must be equal to the old file's, else ``ValueError`` and the
file is left untouched. The new file is written next to the old one and renamed over it,
so a crash leaves one or the other. No API key is ever written: a provider names where
its key is (``api_key_env`` / ``api_key_keyring``).

Only the standard library.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chat_tui.config.providers import Provider, load_model_config
from chat_tui.config.settings import config_file, load_theme

__all__ = ["load_theme", "save_model_settings", "save_theme"]

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_MODEL_TOP = ("default_model", "default_provider")


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped) + '"'


def _read(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return "", {}
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from exc


def _sections(lines: list[str]) -> list[tuple[str | None, list[str]]]:
    """``lines`` cut at table headers: ``[(None, top lines), (table name, lines)...]``
    (a header line starts its section)."""
    out: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in lines:
        match = _HEADER.match(line)
        if match and not line.lstrip().startswith("#"):
            out.append((match.group(1), [line]))
        else:
            out[-1][1].append(line)
    return out


def _write_checked(path: Path, old: dict[str, Any], new_text: str,
                   changed: Sequence[str]) -> None:
    """Replace ``path`` by ``new_text`` after checking it parses and that every top-level
    key outside ``changed`` keeps its value."""
    try:
        new = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:  # pragma: no cover - a bug of this module
        raise ValueError(f"{path}: the new text would not be valid TOML ({exc}); "
                         "nothing was written") from exc
    keep_old = {k: v for k, v in old.items() if k not in changed}
    keep_new = {k: v for k, v in new.items() if k not in changed}
    if keep_old != keep_new:
        raise ValueError(f"{path}: the file's layout is too unusual to edit safely "
                         "(nothing was written); edit it by hand")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(new_text, encoding="utf-8")
    os.replace(temporary, path)


def save_model_settings(providers: Sequence[Provider], default_model: str | None,
                        default_provider: str | None = None,
                        path: Path | None = None) -> Path:
    """Write the model part of ``config.toml`` (``path``, default the user's file):
    ``providers`` as ``[[providers]]`` tables (in order; each ``name``, ``base_url``,
    ``api_key_env`` or ``api_key_keyring`` when set, ``timeout`` in seconds), and the
    top-level ``default_model`` / ``default_provider`` (None removes the key). Returns the
    path written.

    Raises:
        ValueError: the current file is invalid, the result would not load (two providers
            with one name, a bad URL, a ``default_provider`` no provider has: the message of
            :func:`~chat_tui.config.providers.load_model_config`), or the file could not be
            edited without touching other values. Nothing is written then.
    """
    path = path or config_file()
    text, old = _read(path)
    sections = _sections(text.splitlines())
    top = [line for line in sections[0][1]
           if not any(re.match(rf"^\s*{key}\s*=", line) for key in _MODEL_TOP)]
    while top and not top[-1].strip():
        top.pop()
    head = []
    if default_model:
        head.append(f"default_model = {_quote(default_model)}")
    if default_provider:
        head.append(f"default_provider = {_quote(default_provider)}")
    lines = head + top
    for name, body in sections[1:]:
        if name == "providers" or (name or "").startswith("providers."):
            continue
        while body and not body[-1].strip():
            body = body[:-1]
        if lines:
            lines.append("")
        lines += body
    for provider in providers:
        if lines:
            lines.append("")
        lines += ["[[providers]]", f"name = {_quote(provider.name)}",
                  f"base_url = {_quote(provider.base_url)}"]
        if provider.api_key_env:
            lines.append(f"api_key_env = {_quote(provider.api_key_env)}")
        if provider.api_key_keyring:
            lines.append(f"api_key_keyring = {_quote(provider.api_key_keyring)}")
        lines.append(f"timeout = {provider.timeout:g}")
    new_text = "\n".join(lines).strip("\n") + "\n"
    check = path.with_name(path.name + ".check")
    check.write_text(new_text, encoding="utf-8")
    try:
        load_model_config(check)
    finally:
        check.unlink(missing_ok=True)
    _write_checked(path, old, new_text, ("providers",) + _MODEL_TOP)
    return path


def save_theme(name: str, path: Path | None = None) -> Path:
    """Keep ``name`` as ``theme`` in the ``[ui]`` table of ``config.toml`` (``path``);
    the app applies it at the next start. Returns the path written.

    Raises:
        ValueError: an empty name, an invalid file, or a ``[ui]`` table the edit cannot
            reach safely (nothing is written).
    """
    if not name.strip():
        raise ValueError("the theme name is empty")
    path = path or config_file()
    text, old = _read(path)
    sections = _sections(text.splitlines())
    entry = f"theme = {_quote(name.strip())}"
    found = False
    for index, (table, body) in enumerate(sections):
        if table != "ui":
            continue
        found = True
        for row, line in enumerate(body):
            if re.match(r"^\s*theme\s*=", line):
                body[row] = entry
                break
        else:
            insert = len(body)
            while insert > 1 and not body[insert - 1].strip():
                insert -= 1
            body.insert(insert, entry)
        sections[index] = (table, body)
    lines = [line for _, body in sections for line in body]
    if not found:
        while lines and not lines[-1].strip():
            lines.pop()
        lines += ([""] if lines else []) + ["[ui]", entry]
    new_text = "\n".join(lines).strip("\n") + "\n"
    old_ui = dict(old.get("ui", {})) if isinstance(old.get("ui"), dict) else {}
    if "ui" in old and not isinstance(old["ui"], dict):
        raise ValueError(f"{path}: [ui] must be a table")
    _write_checked(path, {**old, "ui": {**old_ui, "theme": name.strip()}}, new_text, ())
    return path
