"""`nanogpt-tui bench tui`: is the app responsive while it trains, and does it slow training down?

One run measures, on the same settings and data:
1. headless training tokens/sec on every core (the Trainer alone, as the CLI runs it): the baseline;
2. the same training started from the Train screen of a headless NanoGPTApp (driven by a Pilot; the
   app trains in a child process), its tokens/sec taken from the Step events the screen received,
   and the ratio to (1); (1) and (2) alternate for `rounds` rounds and the best of each kind counts
   (other load only slows runs down);
3. while (2) trains, the log-scale key pressed every `press_every` seconds, delivered as the terminal
   driver delivers keys: the time from each press until the loss plot has been redrawn with the
   change (the key-to-screen latency; terminal output itself is not included in headless mode);
   and where the UI's time goes meanwhile: the UI thread's share of a core, screen updates a second,
   and plot redraws a second with their milliseconds each (plotext draws in pure Python);
4. launch to first paint: a fresh Python process imports the app, starts it, and reports when its
   first screen has been drawn (interpreter start and imports included);
5. screen switches (`switch_times`, which also runs alone): in a headless app over a realistic home
   (a char and a gpt2 dataset and a short run, made by `make_switch_home`), the time from a screen's
   key press until that screen has been painted, on its first visit and over rounds of warm switches.
Tokens/sec in (1) and (2) both come from the Step events: tokens over training time (Step.elapsed_s
excludes evals), after the first WARMUP_ITERS steps.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Sequence

from rich.console import Console

from core import paths
from core.figures import print_figures

WARMUP_ITERS = 5
RATIO_GOAL = 0.95
LATENCY_GOAL_MS = 100.0
FIRST_PAINT_GOAL_S = 0.6
FIRST_VISIT_GOAL_MS = 500.0
WARM_SWITCH_GOAL_MS = 100.0
BENCH_DATASET = "bench-random"

# Run in a fresh interpreter: prints seconds from process start to the first screen drawn.
FIRST_PAINT_SCRIPT = """
import asyncio, sys, time
started = float(sys.argv[1])
from nanogpt_tui.app import NanoGPTApp

async def main():
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)):  # returns once the first screen is mounted
        painted = asyncio.Event()
        app.call_after_refresh(painted.set)  # runs once that screen has been drawn
        await painted.wait()
        print(time.time() - started)

asyncio.run(main())
"""


def run_settings(iters: int) -> dict[str, Any]:
    """The settings both kinds of run override in the preset: `iters` steps, no eval nor sample until the
    end, and every step logged (the timing needs each step, whatever the preset's log_interval)."""
    return dict(max_iters=iters, eval_interval=iters + 1, eval_iters=1, log_interval=1, sample_interval=0)


def throughput(rows: Sequence[tuple[int, int, float]]) -> float:
    """Tokens/sec over (iter, tokens_seen, elapsed_s) step rows, leaving out the warm-up steps."""
    timed = rows[WARMUP_ITERS:]
    if len(timed) < 2:
        raise RuntimeError("too few steps to time: raise --iters")
    return (timed[-1][1] - timed[0][1]) / (timed[-1][2] - timed[0][2])


def headless_run(preset: str, iters: int, run_name: str) -> float:
    """Tokens/sec of the Trainer on its own, on the settings the app run uses."""
    from core.presets import from_preset
    from core.train_events import Failed, Step
    from core.trainer import Trainer

    rows: list[tuple[int, int, float]] = []
    failures: list[Any] = []

    def on_event(event: Any) -> None:
        if isinstance(event, Step):
            rows.append((event.iter, event.tokens_seen, event.elapsed_s))
        elif isinstance(event, Failed):
            failures.append(event)

    config = from_preset(preset, dataset=BENCH_DATASET, run_name=run_name, device="cpu", **run_settings(iters))
    Trainer(config, on_event).run()
    if failures:
        raise RuntimeError(f"headless training failed: {failures[0].message}")
    return throughput(rows)


@dataclass
class AppRun:
    """What one training run in the app measured."""

    tokens_per_s: float
    latencies: list[float]  # seconds from each key press to the plot redrawn
    ui_cpu: float  # share of one core the UI thread used while training
    updates_per_s: float  # screen updates sent to the terminal
    plot_redraws_per_s: float
    plot_redraw_ms: float  # mean milliseconds per plot redraw


async def app_run(preset: str, iters: int, press_every: float, run_name: str) -> AppRun:
    """Train from the Train screen, pressing the log-scale key meanwhile."""
    from textual import events

    from core.presets import from_preset
    from nanogpt_tui.app import NanoGPTApp
    from nanogpt_tui.screens.train import TrainScreen
    from nanogpt_tui.widgets.loss_plot import LossPlot

    app = NanoGPTApp()
    latencies: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3")
        screen = app.screen
        assert isinstance(screen, TrainScreen)
        while screen.state != "idle":
            await pilot.pause(0.05)
        # The settings a user would type: the same as the headless run's.
        screen.fill_form(from_preset(preset, **run_settings(iters)))
        screen.query_one("#run_name").value = run_name
        await pilot.pause()
        if screen.errors:
            raise RuntimeError(f"the Train screen refused the settings: {screen.errors}")

        plot = screen.query_one("#loss-plot", LossPlot)
        render = plot.render
        redrawn = asyncio.Event()  # set when the plot is drawn in the state the last key asked for
        wanted = plot.log_scale
        drawn_at = 0.0
        plot_seconds: list[float] = []  # each plot redraw's time while training

        def timed_render() -> Any:
            nonlocal drawn_at
            started = time.perf_counter()
            result = render()
            if timing:
                plot_seconds.append(time.perf_counter() - started)
            if plot.log_scale == wanted and not redrawn.is_set():
                drawn_at = time.perf_counter()
                redrawn.set()
            return result

        plot.render = timed_render  # type: ignore[method-assign]
        display = app._display  # every screen update goes through it to the terminal driver
        updates = 0

        def counted_display(*args: Any, **kwargs: Any) -> Any:
            nonlocal updates
            updates += timing
            return display(*args, **kwargs)

        app._display = counted_display  # type: ignore[method-assign]
        timing = False

        await pilot.press("ctrl+r")
        while screen.state in ("idle", "starting") or len(plot.steps.points) < WARMUP_ITERS:
            await pilot.pause(0.05)
        cpu_started, wall_started = time.thread_time(), time.perf_counter()
        timing = True
        while screen.state == "running":
            wanted = not plot.log_scale
            redrawn.clear()
            pressed = time.perf_counter()
            # As the terminal driver delivers a key (Pilot.press would also wait for the app to go idle).
            app.post_message(events.Key("ctrl+l", None))
            try:
                await asyncio.wait_for(redrawn.wait(), timeout=5)
            except asyncio.TimeoutError:
                if screen.state == "running":
                    raise RuntimeError("the plot was not redrawn within 5 s of a key press") from None
                break  # the run ended meanwhile
            latencies.append(drawn_at - pressed)
            next_press = pressed + press_every
            while screen.state == "running" and time.perf_counter() < next_press:
                await asyncio.sleep(0.05)
        timing = False
        wall = time.perf_counter() - wall_started
        ui_cpu = (time.thread_time() - cpu_started) / wall
        await app.workers.wait_for_complete()
        if screen.state != "finished":
            raise RuntimeError(f"training in the app ended {screen.state}: {screen.query_one('#status').render()}")
        rows = [(p.iter, p.tokens, p.seconds) for p in plot.steps.points]
    if len(rows) != iters:
        raise RuntimeError("the plot thinned the steps out: use fewer --iters")
    return AppRun(
        throughput(rows), latencies, ui_cpu, updates / wall, len(plot_seconds) / wall,
        1000 * statistics.fmean(plot_seconds) if plot_seconds else math.nan,
    )


def first_paint_seconds() -> float:
    """Seconds from launching a fresh Python process to the app's first screen drawn."""
    started = time.time()
    result = subprocess.run(
        [sys.executable, "-c", FIRST_PAINT_SCRIPT, str(started)], capture_output=True, text=True, check=True, timeout=120
    )
    return float(result.stdout.strip().splitlines()[-1])


SWITCH_TEXT = "LEAD:\nThe model reads a character at a time, and learns.\n\nCHORUS:\nLearn, learn.\n" * 40


def make_switch_home(iters: int = 20) -> None:
    """A realistic data dir for `switch_times`, in the current home: a char and a gpt2 dataset of the same
    text and one short run (a checkpoint with a history)."""
    import tempfile
    from pathlib import Path

    from core.presets import from_preset
    from core.train_events import Failed
    from core.trainer import Trainer
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
    from nanogpt_tui.app import SCREENS

    keys = {mode: key for mode, (key, _title, _what) in SCREENS.items() if mode != "data"}
    return keys | {"help": "f1", "data": SCREENS["data"][0]}


async def _timed_switches(rounds: int, size: tuple[int, int], settle_s: float) -> tuple[dict[str, float], list[float]]:
    """Seconds from each screen's key press until it has been painted: first visits, then warm switches."""
    from textual import events
    from textual.worker import WorkerCancelled

    from nanogpt_tui.app import NanoGPTApp

    keys = switch_keys()

    app = NanoGPTApp()
    first: dict[str, float] = {}
    warm: list[float] = []
    async with app.run_test(size=size) as pilot:
        painted = asyncio.Event()
        target: list[Any] = [None]  # the screen whose paint ends the timing
        painted_at = 0.0
        first_paint: dict[int, float] = {}  # id(screen) -> its first paint since the last key press
        display = app._display

        def timed_display(screen: Any, renderable: Any) -> None:
            nonlocal painted_at
            display(screen, renderable)
            if renderable is None:
                return
            first_paint.setdefault(id(screen), time.perf_counter())
            if screen is target[0] and not painted.is_set():
                painted_at = first_paint[id(screen)]
                painted.set()

        app._display = timed_display  # type: ignore[method-assign]

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


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_tui(
    preset: str = "cpu",
    iters: int = 300,
    rounds: int = 2,
    press_every: float = 1.0,
    console: Console | None = None,
    switch_rounds: int = 3,
) -> dict[str, Any]:
    """Measure training speed in the app against headless, key latency while training, first paint and
    screen switches (`switch_rounds` rounds through every screen)."""
    from core.bench import make_random_dataset
    from core.train_config import ConfigError
    from nanogpt_tui.widgets.loss_plot import MAX_POINTS

    # Checked first, so a bad value fails in a second, not after minutes of training.
    if not WARMUP_ITERS + 2 <= iters < MAX_POINTS:
        raise ConfigError(
            f"bench tui needs --iters from {WARMUP_ITERS + 2} (the first {WARMUP_ITERS} steps are warm-up, "
            f"then at least 2 timed) to {MAX_POINTS - 1} (the loss plot keeps every step up to that), not {iters}"
        )
    if rounds < 1 or press_every <= 0 or switch_rounds < 1:
        raise ConfigError("bench tui needs at least 1 round (of training and of switches) and a key press interval above 0 seconds")

    with paths.temporary_home("nanogpt-bench-tui-"):
        make_random_dataset(BENCH_DATASET)
        first_paint = first_paint_seconds()
        make_switch_home()
        switches = switch_times(rounds=switch_rounds)
        # Alternate headless and in-app runs and keep the best of each: other load on the machine
        # only ever slows a run down, so the fastest run of each kind is the fairest comparison.
        headless_runs: list[float] = []
        app_runs: list[AppRun] = []
        for round_ in range(rounds):
            headless_runs.append(headless_run(preset, iters, f"bench-headless-{round_}"))
            app_runs.append(asyncio.run(app_run(preset, iters, press_every, f"bench-app-{round_}")))
    headless, in_app = max(headless_runs), max(run.tokens_per_s for run in app_runs)
    ms = [1000 * s for run in app_runs for s in run.latencies]
    result = {
        "preset": preset,
        "iters": iters,
        "headless_tokens_per_s": headless,
        "headless_runs": headless_runs,
        "app_runs": [run.tokens_per_s for run in app_runs],
        "ui_thread_cpu_share": [run.ui_cpu for run in app_runs],
        "screen_updates_per_s": [run.updates_per_s for run in app_runs],
        "plot_redraws_per_s": [run.plot_redraws_per_s for run in app_runs],
        "plot_redraw_ms": [run.plot_redraw_ms for run in app_runs],
        "app_tokens_per_s": in_app,
        "ratio": in_app / headless,
        "key_presses": len(ms),
        "key_latency_p50_ms": statistics.median(ms) if ms else float("nan"),
        "key_latency_p95_ms": percentile(ms, 0.95) if ms else float("nan"),
        "first_paint_s": first_paint,
        **switches,
    }
    first_visits = switches["first_visit_ms"]

    def verdict(ok: bool) -> str:
        return "[green]ok[/]" if ok else "[red]missed[/]"

    def each(values: Sequence[float], form: str) -> str:
        return ", ".join(format(value, form) for value in values)

    print_figures(
        f"bench tui: preset {preset}, {iters} iterations on CPU, every core, in the app (a child process) "
        f"vs headless; a key press every {press_every:g} s",
        {
            "headless tokens/sec (best)": f"{headless:,.0f} (runs: {each(headless_runs, ',.0f')})",
            "in-app tokens/sec (best)": f"{in_app:,.0f} (runs: {each(result['app_runs'], ',.0f')})",
            f"ratio (goal >= {RATIO_GOAL})": f"{result['ratio']:.3f} {verdict(result['ratio'] >= RATIO_GOAL)}",
            "UI thread CPU while training": each(result["ui_thread_cpu_share"], ".0%"),
            "screen updates per second": each(result["screen_updates_per_s"], ".1f"),
            "plot redraws per second": each(result["plot_redraws_per_s"], ".2f"),
            "ms per plot redraw": each(result["plot_redraw_ms"], ".1f"),
            "key presses timed": str(len(ms)),
            "key-to-screen p50": f"{result['key_latency_p50_ms']:.1f} ms",
            f"key-to-screen p95 (goal < {LATENCY_GOAL_MS:.0f} ms)": f"{result['key_latency_p95_ms']:.1f} ms "
            f"{verdict(result['key_latency_p95_ms'] < LATENCY_GOAL_MS)}",
            f"launch to first paint (goal < {FIRST_PAINT_GOAL_S} s)": f"{first_paint:.2f} s {verdict(first_paint < FIRST_PAINT_GOAL_S)}",
            f"first visit, slowest screen (goal < {FIRST_VISIT_GOAL_MS:.0f} ms)": f"{max(first_visits.values()):.0f} ms "
            f"{verdict(max(first_visits.values()) < FIRST_VISIT_GOAL_MS)} "
            f"({', '.join(f'{mode} {ms:.0f}' for mode, ms in first_visits.items())})",
            f"warm switches timed ({switch_rounds} rounds)": str(len(switches["warm_ms"])),
            "warm switch p50": f"{switches['warm_p50_ms']:.1f} ms",
            f"warm switch p95 (goal < {WARM_SWITCH_GOAL_MS:.0f} ms)": f"{switches['warm_p95_ms']:.1f} ms "
            f"{verdict(switches['warm_p95_ms'] < WARM_SWITCH_GOAL_MS)}",
        },
        console,
    )
    return result
