"""Helpers the tests share: Pilot waits for the app, the notifications it raised, and training processes of
their own (as a user starts `nanogpt-tui train` in another terminal)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

import pytest
from textual.app import App
from textual.notifications import Notification
from textual.pilot import Pilot
from textual.widgets import OptionList, Select
from textual.worker import WorkerCancelled

ROOT = Path(__file__).resolve().parents[1]
WAIT = 120  # seconds: generous, the machine is shared and each process imports torch

# Every notification each app raised, oldest first: conftest wraps App.notify (public) to fill it, as
# Textual keeps its own list private.
RAISED: WeakKeyDictionary[App[Any], list[Notification]] = WeakKeyDictionary()


def choices(select: Select[Any]) -> list[str]:
    """What a Select's list shows, in order (its blank entry first, when it has one: the prompt)."""
    options = select.query_one(OptionList)  # the list the Select opens
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


def notices(app: App[Any]) -> list[Notification]:
    """The notifications `app` raised so far (whichever screen or worker raised them)."""
    return RAISED.setdefault(app, [])


async def wait_for(pilot: Pilot, condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """Let workers and the UI run until `condition()` holds: a deadline, never a fixed sleep. (The deadline
    is WAIT's: what the screen waits for is often a training process, which imports torch first.)"""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the screen"
        await pilot.pause(0.05)


async def workers_done(app: App[Any]) -> None:
    """Wait until the app's workers have ended. One cancelled meanwhile has ended too: an exclusive worker
    (a dataset's details, say) is cancelled when the screen starts another, which `wait_for_complete` raises."""
    for worker in list(app.workers):
        with contextlib.suppress(WorkerCancelled):
            await worker.wait()


@contextmanager
def another_writer(run_dir: Path) -> Iterator[subprocess.Popen[str]]:
    """A real other process holding `run_dir`'s lock, as `nanogpt-tui train` in another terminal does;
    killed on the way out."""
    code = ("import sys, time; from core.common.folder_lock import FolderLock; lock = FolderLock(sys.argv[1]); lock.acquire(); "
            "print('locked', flush=True); time.sleep(600)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def train_cli(dataset: str, *args: str) -> subprocess.Popen[bytes]:
    """`nanogpt-tui train` of the tiny preset in a process of its own (this checkout's code, this home)."""
    argv = [sys.executable, "-m", "nanogpt_tui.cli", "train", "--dataset", dataset, "--preset", "tiny", "--device", "cpu", *args]
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_until(condition: Callable[[], Any], process: subprocess.Popen[Any] | None = None, timeout: float = WAIT) -> None:
    """Poll `condition` until it holds; fail if `process` ends first or `timeout` passes: a deadline, never a
    fixed sleep. `condition` is asked once per poll, and once more after `process` ended (what it wrote just
    before ending counts)."""
    deadline = time.monotonic() + timeout
    while True:
        ended = process is not None and process.poll() is not None  # before asking: all it wrote is there
        if condition():
            return
        if process is not None and ended:
            output = process.communicate()[0]
            pytest.fail(f"the process ended early: {output.decode() if isinstance(output, bytes) else output}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
