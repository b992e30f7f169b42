"""The import rule: nanogpt_tui -> data -> core, inside core its packages one way (core/__init__.py lists
them, lowest first), no import cycle anywhere (type-only imports included), and no Textual below the app."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "core": {"data", "nanogpt_tui", "textual", "textual_plotext", "rich"},
    "data": {"nanogpt_tui", "textual", "textual_plotext"},
}
# core's packages, lowest first: each may import only those before it (and itself).
CORE_ORDER = ("common", "tokens", "dataset", "model", "settings", "runs", "inference", "interop", "training")


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, dotted (`from a.b import c` gives a.b and a.b.c), anywhere in the file,
    under `if TYPE_CHECKING:` too."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(top: str) -> dict[str, set[str]]:
    """Module -> the modules of the same top-level package it imports."""
    files = {module_name(f): f for f in (ROOT / top).rglob("*.py")}
    return {name: {m for m in imports_of(f) if m in files and m != name} for name, f in files.items()}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_downwards(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    offenders = {
        str(f.relative_to(ROOT)): sorted({m.split(".")[0] for m in imports_of(f)} & FORBIDDEN[package]) for f in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_core_is_packages_only() -> None:
    modules = sorted(p.name for p in (ROOT / "core").glob("*.py"))
    packages = sorted(p.name for p in (ROOT / "core").iterdir() if (p / "__init__.py").is_file())
    assert modules == ["__init__.py"]
    assert sorted(CORE_ORDER) == packages


def test_core_packages_import_one_way() -> None:
    upward = []
    for name, deps in import_graph("core").items():
        if name.count(".") < 1:
            continue
        own = CORE_ORDER.index(name.split(".")[1])
        upward += [f"{name} -> {d}" for d in deps if d.count(".") >= 1 and CORE_ORDER.index(d.split(".")[1]) > own]
    assert upward == []


@pytest.mark.parametrize("top", ["core", "data", "nanogpt_tui"])
def test_no_import_cycles(top: str) -> None:
    graph = import_graph(top)
    cycles: list[list[str]] = []
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        for dep in sorted(graph[name]):
            if dep in path:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in done:
                visit(dep, path + [dep])
        done.add(name)

    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    assert cycles == []


def test_checker_sees_forbidden_imports_and_cycles(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import textual\nfrom nanogpt_tui.app import X\ndef f():\n    import data.prepare\n"
                   "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from core.training.trainer import Trainer\n")
    assert imports_of(bad) >= {"textual", "nanogpt_tui.app", "data.prepare", "core.training.trainer.Trainer"}


# The modules the app reads before torch loads (the Train screen's form, listings, the training child).
TORCH_FREE = ("core.common.paths", "core.common.cpu_threads", "core.common.disk", "core.common.folder_lock", "core.common.safe_files",
              "core.tokens.tokenizers", "core.tokens.spans", "core.tokens.bpe_train", "core.tokens.merges",
              "core.dataset.format", "core.dataset.files", "core.model.anatomy", "core.model.arch",
              "core.settings.train_config", "core.settings.presets", "core.settings.schedule",
              "core.settings.memory", "core.settings.sampling", "core.settings.budget", "core.runs.events", "core.runs.metrics",
              "core.runs.control", "core.runs.watch", "core.runs.curves", "core.runs.files",
              "core.interop.gpt2_files", "core.training.process", "core.training.stop_signals",
              "core.training.ladder", "core.dataset.baseline")


def test_settings_events_and_the_training_process_load_without_torch() -> None:
    """The Train screen builds its form and starts a training child before torch loads in the app."""
    code = f"import sys\nfor m in {TORCH_FREE!r}: __import__(m)\nprint(sorted(m for m in ('torch', 'rich') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
