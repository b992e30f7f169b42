"""Training in the app against headless, with keys pressed meanwhile (`bench tui`'s first three figures).

On the same settings and data:
1. headless training tokens/sec on every core (the Trainer alone, as the CLI runs it): the baseline;
2. the same training started from the Train screen of a headless NanoGPTApp (driven by a Pilot; the
   app trains in a child process), its tokens/sec taken from the Step events the screen received;
3. while (2) trains, the log-scale key pressed every `press_every` seconds, delivered as the terminal
   driver delivers keys: the time from each press until the loss plot has been redrawn with the
   change (the key-to-screen latency; terminal output itself is not included in headless mode);
   and where the UI's time goes meanwhile: the UI thread's share of a core, screen updates a second,
   and plot redraws a second with their milliseconds each (plotext draws in pure Python).
Tokens/sec in (1) and (2) both come from the Step events: tokens over training time (Step.elapsed_s
excludes evals), after the first WARMUP_ITERS steps.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any, Sequence

WARMUP_ITERS = 5
BENCH_DATASET = "bench-random"


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
    from core.runs.events import Failed, Step
    from core.settings.presets import from_preset
    from core.training.trainer import Trainer

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

    from core.settings.presets import from_preset
    from nanogpt_tui.bench.displays import TerminalTimedApp
    from nanogpt_tui.screens.train import TrainScreen
    from nanogpt_tui.widgets.loss_plot import LossPlot

    updates = 0  # screen updates sent to the terminal while timing
    timing = False

    def written() -> None:
        nonlocal updates
        updates += timing

    app = TerminalTimedApp(written)
    latencies: list[float] = []
    async with app.run_test(size=(120, 40), headless=False) as pilot:
        await pilot.press("f3")
        screen = app.screen
        assert isinstance(screen, TrainScreen)
        while screen.state != "idle":
            await pilot.pause(0.05)
        # The settings a user would type: the same as the headless run's.
        screen.form.fill(from_preset(preset, **run_settings(iters)))
        screen.query_one("#run_name").value = run_name
        await pilot.pause()
        if screen.form.problems:
            raise RuntimeError(f"the Train screen refused the settings: {screen.form.problems}")

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
