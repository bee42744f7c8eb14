"""The architecture of docs/architecture.md, checked by the import-linter contracts in
``pyproject.toml`` (``[tool.importlinter]``): one-way layers ``config, wire -> store, api ->
sync -> ui -> launch -> cli``; the server imports only ``chat_tui.wire``; only ``launch`` and
``cli`` start a server; Textual and Rich only in ``ui``; no import cycle in any package.
Imports inside functions and under ``TYPE_CHECKING`` count.

The second test runs the same contracts on a copy of the package with violations put in, so
the first cannot pass by checking nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
        "sys.exit(lint_imports_command())"]


def run_contracts(root: Path) -> subprocess.CompletedProcess[str]:
    """Run ``lint-imports`` on the ``chat_tui`` package under ``root`` with the
    ``pyproject.toml`` there (no cache). Returns the finished process."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([*LINT, "--no-cache"], cwd=root, env=env, text=True,
                          capture_output=True, timeout=120)


def test_import_contracts_hold():
    result = run_contracts(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("store/errors.py", "import textual", "Textual and Rich only in the UI"),
    ("store/errors.py", "from chat_tui.sync import events", "One-way layers"),
    ("server/errors.py", "from chat_tui.config import paths", "The server imports only"),
    ("sync/events.py", "from chat_tui.server import net", "Only the startup wiring"),
    ("sync/gate.py", "from chat_tui.sync import drain", "No import cycles"),
])
def test_contracts_catch_a_violation(tmp_path: Path, module: str, line: str, contract: str):
    shutil.copytree(ROOT / "chat_tui", tmp_path / "chat_tui",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with (tmp_path / "chat_tui" / module).open("a", encoding="utf-8") as f:
        f.write(f"\n{line}  # noqa\n")
    result = run_contracts(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    broken = [row for row in result.stdout.splitlines() if row.endswith(" BROKEN")]
    assert any(row.startswith(contract) for row in broken), result.stdout
