"""Screen switches: in a headless app over a realistic home (a char and a gpt2 dataset and a short run,
made by `make_switch_home`), the time from a screen's key press until that screen's first update is
written to the terminal (displays.py), on its first visit and over rounds of warm switches.
`switch_times` also runs alone (the tests run it).

With `training` (a preset) the app first starts that preset training on the Train screen (its child
process takes every core), goes back to the first screen, and times the switches while it trains: the
Train screen's first visit is then the one that started the run, and is not timed."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from nanogpt_tui.bench.figures import percentile

SWITCH_TEXT = "LEAD:\nThe model reads a character at a time, and learns.\n\nCHORUS:\nLearn, learn.\n" * 40


def make_switch_home(iters: int = 20) -> None:
    """A realistic data dir for `switch_times`, in the current home: a char and a gpt2 dataset of the same
    text, one short run (a checkpoint with a history), and a session that quit on the Data screen (so the
    app opens there: the first screen the bench's tour leaves from)."""
    import tempfile
    from pathlib import Path

    from core.runs.events import Failed
    from core.settings.presets import from_preset
    from core.training.trainer import Trainer
    from data.prepare import prepare
    from nanogpt_tui import session_state

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "citizens.txt"
        source.write_text(SWITCH_TEXT * 4, encoding="utf-8")
        prepare(str(source), tokenizer="char", name="bench-char", block_size=32)
        prepare(str(source), tokenizer="gpt2", name="bench-gpt2", block_size=32)
    failures: list[Any] = []
    config = from_preset("tiny", dataset="bench-char", run_name="bench-run", device="cpu", max_iters=iters,
                         eval_interval=iters // 2, eval_iters=2)  # fmt: skip
    Trainer(config, lambda e: failures.append(e) if isinstance(e, Failed) else None).run()
    if failures:
        raise RuntimeError(f"training the bench run failed: {failures[0].message}")
    session_state.update_state(screen="data")


def switch_keys() -> dict[str, str]:
    """The screens a switch bench visits, in order, by the key a user presses: every screen of the app's
    SCREENS table, then help (the f1 modal, closed with escape), then back to data, the first screen."""
    from nanogpt_tui.screens import SCREENS

    keys = {mode: key for mode, (key, _title, _what) in SCREENS.items() if mode != "data"}
    return keys | {"help": "f1", "data": SCREENS["data"][0]}


async def _timed_switches(
    rounds: int, size: tuple[int, int], settle_s: float, training: str | None = None, run_name: str = "bench-training",
) -> tuple[dict[str, float], list[tuple[str, float]]]:
    """Seconds from each screen's key press until it has been painted: first visits, then warm switches."""
    from textual import events
    from textual.worker import WorkerCancelled, WorkerFailed

    from textual.widgets import Input

    from core.settings.presets import from_preset
    from nanogpt_tui.bench.displays import TerminalTimedApp
    from nanogpt_tui.screens.train import TrainScreen

    keys = switch_keys()
    painted = asyncio.Event()
    target: list[Any] = [None]  # the screen whose paint ends the timing
    painted_at = 0.0
    first_paint: dict[int, float] = {}  # id(screen) -> its first paint since the last key press

    def written() -> None:
        nonlocal painted_at
        screen = app.screen  # the screen Textual just drew (it draws only the one on top)
        first_paint.setdefault(id(screen), time.perf_counter())
        if screen is target[0] and not painted.is_set():
            painted_at = first_paint[id(screen)]
            painted.set()

    app = TerminalTimedApp(written)
    first: dict[str, float] = {}
    warm: list[tuple[str, float]] = []
    async with app.run_test(size=size, headless=False) as pilot:

        async def switch(mode: str) -> float:
            nonlocal painted_at
            before = app.screen
            painted.clear()
            target[0] = None
            first_paint.clear()
            pressed = time.perf_counter()
            # As the terminal driver delivers a key (Pilot.press would also wait for the app to go idle).
            app.post_message(events.Key(keys[mode], None))
            deadline = pressed + 30
            while app.screen is before:
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{keys[mode]} did not switch to {mode} within 30 s")
                await asyncio.sleep(0.001)
            target[0] = app.screen
            if id(app.screen) in first_paint:  # painted already, before this loop saw the switch
                painted_at = first_paint[id(app.screen)]
                painted.set()
            await asyncio.wait_for(painted.wait(), timeout=30)
            seconds = painted_at - pressed
            if mode == "help":
                app.post_message(events.Key("escape", None))
                while app.screen is target[0]:
                    await asyncio.sleep(0.005)
            await settle()
            return seconds

        async def settle() -> None:
            """Let the screen's workers finish and their results land, as a user looking at it would (a run
            training goes on)."""
            for worker in [w for w in app.workers if w.group != "train" and not w.is_finished]:
                try:
                    await worker.wait()
                except (WorkerCancelled, WorkerFailed):
                    pass  # a newer listing replaced it; a failure is the screen's to show
            await pilot.pause(settle_s)

        async def wait(condition: Any, what: str) -> None:
            deadline = time.perf_counter() + 120
            while not condition():
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{what} within 120 s")
                await asyncio.sleep(0.05)

        await settle()
        train: TrainScreen | None = None
        if training:  # started as a user starts it: on the Train screen, then back to the first screen
            await pilot.press(keys["train"])
            train = app.screen
            assert isinstance(train, TrainScreen)
            await wait(lambda: train.state == "idle", "the Train screen was not ready")
            train.form.fill(from_preset(training, dataset="bench-char", max_iters=10**6, sample_interval=0))
            train.query_one("#run_name", Input).value = run_name  # a new run each launch: no "replace it?" question
            await pilot.press("ctrl+r")
            await wait(lambda: train.state == "running" and train.monitor.plot.steps.points, "training did not start")
            await pilot.press(keys["data"])
            await settle()
        for mode in keys:
            if mode != "data" and not (train is not None and mode == "train"):  # data: its first visit is the launch
                first[mode] = await switch(mode)
        for _ in range(rounds):
            for mode in keys:
                warm.append((mode, await switch(mode)))
        if train is not None:
            if train.state not in ("running", "paused"):
                raise RuntimeError(f"training ended {train.state} while the switches were timed")
            train.action_stop()
            await wait(lambda: train.state != "running", "training did not stop")
    return first, warm


def switch_times(rounds: int = 3, size: tuple[int, int] = (120, 40), settle_s: float = 0.2,
                 training: str | None = None, launches: int = 1) -> dict[str, Any]:
    """Screen switch times in a headless app over the current home (see `make_switch_home`), while
    `training` (a preset) trains in the app when given (see the module docstring).

    Returns `first_visit_ms` (screen -> ms, each screen's first visit after launch, the slowest of
    `launches` launches), `first_p95_ms` over all first visits of all launches, and `warm_ms` (every switch of
    `rounds` rounds through all screens, in each launch) and `warm_slowest_ms` (screen -> its slowest warm
    switch), each timed from the key press to the new screen painted.
    """
    first_visits: dict[str, list[float]] = {}
    warm_ms: list[float] = []
    warm_by_screen: dict[str, list[float]] = {}
    for launch in range(launches):
        first, warm = asyncio.run(_timed_switches(rounds, size, settle_s, training, f"bench-training-{launch + 1}"))
        for mode, seconds in first.items():
            first_visits.setdefault(mode, []).append(1000 * seconds)
        for mode, seconds in warm:
            warm_ms.append(1000 * seconds)
            warm_by_screen.setdefault(mode, []).append(1000 * seconds)
    every_first = [ms for visits in first_visits.values() for ms in visits]
    return {
        "first_visit_ms": {mode: max(visits) for mode, visits in first_visits.items()},
        "first_p95_ms": percentile(every_first, 0.95),
        "warm_ms": warm_ms,
        "warm_p50_ms": statistics.median(warm_ms) if warm_ms else float("nan"),
        "warm_p95_ms": percentile(warm_ms, 0.95) if warm_ms else float("nan"),
        "warm_slowest_ms": {mode: max(times) for mode, times in warm_by_screen.items()},
    }
