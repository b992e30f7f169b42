"""Shared fixtures: every test gets its own data dir, and small data it makes itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.common import paths

SHAKESPEARE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tinyshakespeare.txt"


@pytest.fixture(autouse=True)
def nanogpt_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the user data dir at a temporary folder for every test."""
    home = tmp_path / "home"
    monkeypatch.setenv(paths.HOME_ENV, str(home))
    return home


@pytest.fixture
def shakespeare_path() -> Path:
    """The real Tiny Shakespeare corpus; the test skips when it is absent."""
    if not SHAKESPEARE.is_file():
        pytest.skip(f"{SHAKESPEARE} is absent")
    return SHAKESPEARE


@pytest.fixture
def small_text(tmp_path: Path) -> Path:
    """A small, varied English text file (about 20 kB) made by the test itself."""
    words = (
        "the quick brown fox jumps over a lazy dog while seven wizards quietly judge "
        "boxing matches; how vexingly quick daft zebras jump! pack my box with five dozen liquor jugs."
    ).split()
    lines = []
    for i in range(400):
        n = 5 + (i * 7) % 9
        lines.append(" ".join(words[(i * 3 + j) % len(words)] for j in range(n)).capitalize() + ".")
    path = tmp_path / "small.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def char_dataset(small_text: Path):
    """A character-level dataset prepared from `small_text` (a core.dataset.format.DatasetInfo)."""
    from data.prepare import prepare

    return prepare(str(small_text), tokenizer="char", name="small-char", block_size=32)


@pytest.fixture
def tiny_run(char_dataset) -> Path:
    """A run folder holding ckpt.pt and best.pt of a tiny model trained a few iterations."""
    from core.runs.events import Failed
    from core.settings.presets import from_preset
    from core.training.trainer import Trainer

    config = from_preset(
        "tiny", dataset=char_dataset.name, run_name="tiny-run", max_iters=12, eval_interval=6, eval_iters=2,
        warmup_iters=2, lr_decay_iters=12, device="cpu",
    )
    events: list = []
    Trainer(config, events.append).run()
    failures = [e for e in events if isinstance(e, Failed)]
    assert not failures, failures[0].message
    run_dir = Path(events[0].run_dir)
    assert (run_dir / "ckpt.pt").is_file() and (run_dir / "best.pt").is_file()
    return run_dir
