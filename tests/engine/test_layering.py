"""The one-way layers of docs/engine.md, enforced by parsing every module's imports with
``ast`` (imports inside functions too): ``config -> store -> api -> sync -> ui``; the server
shares nothing with the client; nothing below ``ui`` (nor the server) imports Textual.

One documented exception: the UI may start the embedded local server
(``chat_tui.server.embedded``) for the first-run demo; nothing else of the server.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "chat_tui"
LAYERS = ["config", "store", "api", "sync", "ui"]
ALLOWED = {
    **{layer: {"chat_tui." + x for x in LAYERS[: i + 1]} for i, layer in enumerate(LAYERS)},
    "server": {"chat_tui.server", "chat_tui.wire"},
    "wire": {"chat_tui.wire"},
}
for _layer in LAYERS[1:]:
    ALLOWED[_layer] |= {"chat_tui.wire"}
ALLOWED["ui"] |= {"chat_tui.server.embedded"}
TEXTUAL_FREE = ["api", "config", "server", "store", "sync", "wire"]


def imports_in(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in ``source``, the text of
    ``module`` (relative imports resolved against it)."""
    package = module if is_package else module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            name = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                name = ".".join(parts + ([node.module] if node.module else []))
            out.append((node.lineno, name))
    return out


def imports_of(path: Path) -> list[tuple[int, str]]:
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return imports_in(path.read_text(encoding="utf-8"), module, path.name == "__init__.py")


def violations(layer: str) -> list[str]:
    files = sorted((PACKAGE / layer).rglob("*.py"))
    assert files, f"no modules found in chat_tui/{layer}"
    bad = []
    for path in files:
        for line, name in imports_of(path):
            where = f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
            top = name.split(".")[0]
            if top in ("textual", "rich") and layer in TEXTUAL_FREE:
                bad.append(where)
            elif top == "chat_tui" and not any(name == a or name.startswith(a + ".")
                                               for a in ALLOWED[layer]):
                bad.append(where)
    return bad


@pytest.mark.parametrize("layer", [*LAYERS, "server", "wire"])
def test_each_layer_imports_only_from_the_layers_left_of_it_and_no_textual_below_ui(layer):
    assert violations(layer) == []


def test_relative_and_in_function_imports_are_seen():
    """The parser resolves relative imports and sees imports inside functions, so a
    store module reaching up into sync (or into Textual) would fail the test above."""
    source = "import json\ndef f():\n    from ..sync import engine\n    import textual.app\n"
    assert imports_in(source, "chat_tui.store.store") == [
        (1, "json"), (3, "chat_tui.sync"), (4, "textual.app")]
    assert imports_in("from . import views\n", "chat_tui.store", is_package=True) == [
        (1, "chat_tui.store")]
