"""The import rule: nanogpt_tui -> data -> core, and no Textual below the app."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "core": {"data", "nanogpt_tui", "textual", "textual_plotext"},
    "data": {"nanogpt_tui", "textual", "textual_plotext"},
}


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module a file imports (absolute imports, anywhere in the file)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_downwards(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    offenders = {
        str(f.relative_to(ROOT)): sorted(imported_modules(f) & FORBIDDEN[package]) for f in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_checker_sees_forbidden_imports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import textual\nfrom nanogpt_tui.app import X\ndef f():\n    import data.prepare\n")
    assert imported_modules(bad) >= {"textual", "nanogpt_tui", "data"}


TORCH_FREE = ("core.train_config", "core.presets", "core.schedule", "core.train_events", "core.train_process", "core.metrics",
              "core.sampling", "core.anatomy", "core.dataset", "core.tokenizers")


def test_settings_events_and_the_training_process_load_without_torch() -> None:
    """The Train screen builds its form and starts a training child before torch loads in the app."""
    import subprocess
    import sys

    code = f"import sys\nfor m in {TORCH_FREE!r}: __import__(m)\nprint('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
