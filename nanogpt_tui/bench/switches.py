"""Screen switches: in a headless app over a realistic home (a char and a gpt2 dataset and a short run,
made by `make_switch_home`), the time from a screen's key press until that screen's first update is
written to the terminal (displays.py), on its first visit and over rounds of warm switches.
`switch_times` also runs alone (the tests run it)."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from nanogpt_tui.bench.figures import percentile

SWITCH_TEXT = "LEAD:\nThe model reads a character at a time, and learns.\n\nCHORUS:\nLearn, learn.\n" * 40


def make_switch_home(iters: int = 20) -> None:
    """A realistic data dir for `switch_times`, in the current home: a char and a gpt2 dataset of the same
    text and one short run (a checkpoint with a history)."""
    import tempfile
    from pathlib import Path

    from core.runs.events import Failed
    from core.settings.presets import from_preset
    from core.training.trainer import Trainer
    from data.prepare import prepare

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


def switch_keys() -> dict[str, str]:
    """The screens a switch bench visits, in order, by the key a user presses: every screen of the app's
    SCREENS table, then help (the f1 modal, closed with escape), then back to data, the first screen."""
    from nanogpt_tui.screens import SCREENS

    keys = {mode: key for mode, (key, _title, _what) in SCREENS.items() if mode != "data"}
    return keys | {"help": "f1", "data": SCREENS["data"][0]}


async def _timed_switches(rounds: int, size: tuple[int, int], settle_s: float) -> tuple[dict[str, float], list[float]]:
    """Seconds from each screen's key press until it has been painted: first visits, then warm switches."""
    from textual import events
    from textual.worker import WorkerCancelled

    from nanogpt_tui.bench.displays import TerminalTimedApp

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
    warm: list[float] = []
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
            """Let the screen's workers finish and their results land, as a user looking at it would."""
            try:
                await app.workers.wait_for_complete()
            except WorkerCancelled:
                pass  # a newer listing replaced it
            await pilot.pause(settle_s)

        await settle()
        for mode in keys:
            if mode != "data":  # the first screen: its first visit is the launch
                first[mode] = await switch(mode)
        for _ in range(rounds):
            for mode in keys:
                warm.append(await switch(mode))
    return first, warm


def switch_times(rounds: int = 3, size: tuple[int, int] = (120, 40), settle_s: float = 0.2) -> dict[str, Any]:
    """Screen switch times in a headless app over the current home (see `make_switch_home`).

    Returns `first_visit_ms` (screen -> ms, each screen's first visit after launch) and `warm_ms` (every
    switch of `rounds` rounds through all screens), each timed from the key press to the new screen painted.
    """
    first, warm = asyncio.run(_timed_switches(rounds, size, settle_s))
    warm_ms = [1000 * s for s in warm]
    return {
        "first_visit_ms": {mode: 1000 * s for mode, s in first.items()},
        "warm_ms": warm_ms,
        "warm_p50_ms": statistics.median(warm_ms) if warm_ms else float("nan"),
        "warm_p95_ms": percentile(warm_ms, 0.95) if warm_ms else float("nan"),
    }
