"""Shared fixtures: every test gets its own data dir, and small data it makes itself.

Training is the expensive part on a small machine: the tiny run and its dataset are made once per
session (`trained`), then `char_dataset` and `tiny_run` copy them into each test's own data dir,
where a fresh preparation and training would have put them (same names, same files, new times), so a
test may change its copy (delete, rename, resume, corrupt) without any other test seeing it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pilot_helpers import notices
from textual.app import App
from textual.notifications import Notification

from core.common import paths
from core.common.cpu_threads import limit_spinning

limit_spinning()  # the suite runs several workers on few cores: idle threads must not hold them

SHAKESPEARE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tinyshakespeare.txt"
DATASET_NAME, RUN_NAME = "small-char", "tiny-run"  # the names a fresh `char_dataset` / `tiny_run` has


@pytest.fixture(autouse=True)
def nanogpt_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the user data dir at a temporary folder for every test."""
    home = tmp_path / "home"
    monkeypatch.setenv(paths.HOME_ENV, str(home))
    return home


@pytest.fixture(autouse=True)
def notifications_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep each notification an app raises where tests read it (pilot_helpers.notices)."""
    notify = App.notify

    def recording_notify(app: App[Any], message: str, **options: Any) -> None:
        notices(app).append(Notification(message, title=options.get("title", ""),
                                         severity=options.get("severity", "information")))
        notify(app, message, **options)

    monkeypatch.setattr(App, "notify", recording_notify)


@pytest.fixture
def shakespeare_path() -> Path:
    """The real Tiny Shakespeare corpus; the test skips when it is absent."""
    if not SHAKESPEARE.is_file():
        pytest.skip(f"{SHAKESPEARE} is absent")
    return SHAKESPEARE


def write_small_text(path: Path) -> Path:
    """A small, varied English text file (about 20 kB) at `path`."""
    words = (
        "the quick brown fox jumps over a lazy dog while seven wizards quietly judge "
        "boxing matches; how vexingly quick daft zebras jump! pack my box with five dozen liquor jugs."
    ).split()
    lines = []
    for i in range(400):
        n = 5 + (i * 7) % 9
        lines.append(" ".join(words[(i * 3 + j) % len(words)] for j in range(n)).capitalize() + ".")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def small_text(tmp_path: Path) -> Path:
    """A small, varied English text file (about 20 kB) made by the test itself."""
    return write_small_text(tmp_path / "small.txt")


@pytest.fixture
def short_tmp_path() -> Iterator[Path]:
    """A new empty folder with a short path (/tmp/ng-XXXXXXXX), removed afterwards: for a path a test types
    key by key, each key a screen update (some 50 ms), where pytest's `tmp_path` is some 60 characters long."""
    folder = Path(tempfile.mkdtemp(prefix="ng-")).resolve()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class Trained:
    """What the session's preparation and training left: their data dir, and torch's global random state
    right after training (where a test that trained the run itself would have started from)."""

    home: Path
    torch_rng: Any  # a torch.ByteTensor


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A data dir made once per session: `small-char` prepared from the small text, and `tiny-run` (a tiny
    model trained a few iterations on it). Tests never use it directly: `char_dataset` and `tiny_run`
    copy from it."""
    import torch

    from core.runs.events import Failed
    from core.settings.presets import from_preset
    from core.training.trainer import Trainer
    from data.prepare import prepare

    folder = tmp_path_factory.mktemp("trained")
    home = folder / "home"
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv(paths.HOME_ENV, str(home))
        info = prepare(str(write_small_text(folder / "small.txt")), tokenizer="char", name=DATASET_NAME, block_size=32)
        config = from_preset(
            "tiny", dataset=info.name, run_name=RUN_NAME, max_iters=12, eval_interval=6, eval_iters=2,
            warmup_iters=2, lr_decay_iters=12, device="cpu",
        )
        events: list = []
        Trainer(config, events.append).run()
    failures = [e for e in events if isinstance(e, Failed)]
    assert not failures, failures[0].message
    run_dir = Path(events[0].run_dir)
    assert run_dir == home / "runs" / RUN_NAME
    assert (run_dir / "ckpt.pt").is_file() and (run_dir / "best.pt").is_file()
    return Trained(home, torch.get_rng_state())


def date_as_new(copies: list[tuple[Path, Path]]) -> None:
    """Date each copied folder (source, target) as if just written: every file keeps its place in time
    relative to the others (the dataset before the run it trained, ckpt.pt before best.pt), the newest
    dated now. Listings and watchers read modification times."""
    pairs = [(source / rel, target / rel) for source, target in copies
             for rel in (Path(), *(p.relative_to(source) for p in source.rglob("*")))]
    shift = time.time_ns() - max(source.stat().st_mtime_ns for source, _ in pairs)
    for source, target in pairs:
        mtime = source.stat().st_mtime_ns + shift
        os.utime(target, ns=(mtime, mtime))


@pytest.fixture
def char_dataset(small_text: Path, trained: Trained):
    """A character-level dataset `small-char` prepared from `small_text` (a core.dataset.format.DatasetInfo):
    the session's preparation, copied into this test's data dir, with `small_text` as its source."""
    import json

    from core.dataset.format import INFO_FILE, load_dataset

    source, folder = trained.home / "datasets" / DATASET_NAME, paths.datasets_dir() / DATASET_NAME
    shutil.copytree(source, folder)
    saved = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
    (folder / INFO_FILE).write_text(json.dumps({**saved, "source": str(small_text.resolve())}, indent=2, ensure_ascii=False),
                                    encoding="utf-8")
    date_as_new([(source, folder)])
    return load_dataset(DATASET_NAME)


@pytest.fixture
def tiny_run(char_dataset, trained: Trained) -> Path:
    """A run folder `tiny-run` holding ckpt.pt and best.pt of a tiny model trained a few iterations on
    `char_dataset`: the session's run, copied into this test's data dir (this test's own copy)."""
    import torch

    from core.dataset.token_check import check_token_ids

    source, run_dir = trained.home / "runs" / RUN_NAME, paths.run_dir(RUN_NAME)
    shutil.copytree(source, run_dir)
    date_as_new([(trained.home / "datasets" / DATASET_NAME, char_dataset.path), (source, run_dir)])  # trained after prepared
    check_token_ids(char_dataset)  # training checked the dataset's ids and remembered it in the cache folder
    torch.set_rng_state(trained.torch_rng)  # (training seeds torch: the test starts from where it left it)
    return run_dir


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, each worker on its share of the cores (one core each when there are more workers
    than cores): the trainers it starts size their threads to the cores they may use
    (core.common.devices.cpu_count), so workers side by side never oversubscribe them."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker.startswith("gw") or not hasattr(os, "sched_setaffinity"):
        return
    cores, index = sorted(os.sched_getaffinity(0)), int(worker[2:])
    os.sched_setaffinity(0, cores[index::count] if count <= len(cores) else [cores[index % len(cores)]])
