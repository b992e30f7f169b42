"""`bench_tui`: every measurement of `nanogpt-tui bench tui` in one throwaway home, against its goal.

Launch to first paint and screen switches are timed first, before any training; then the switches again
while the `cpu` preset trains in the app (`switch_times(training=...)`, over TRAINING_LAUNCHES fresh
apps); then headless and in-app training run back to back in `pairs` pairs: each pair's ratio (in-app /
headless) has both sides measured in the same moment of the machine, and the median ratio with its
spread tells a regression (a median below the usual spread) from noise (a wide spread).
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any, Sequence

from rich.console import Console

from core.common import paths
from nanogpt_tui.bench.figures import percentile, print_figures, ratio_spread
from nanogpt_tui.bench.first_paint import first_paint_seconds
from nanogpt_tui.bench.switches import make_switch_home, switch_times
from nanogpt_tui.bench.tui_training import BENCH_DATASET, WARMUP_ITERS, AppRun, app_run, headless_run

RATIO_GOAL = 0.95
LATENCY_GOAL_MS = 100.0
FIRST_PAINT_GOAL_S = 0.6
FIRST_VISIT_GOAL_MS = 500.0
WARM_SWITCH_GOAL_MS = 100.0
TRAINING_FIRST_VISIT_GOAL_MS = 300.0  # p95, while a run trains in the app
TRAINING_PRESET = "cpu"
TRAINING_LAUNCHES = 3
PAIRS = 5


def bench_tui(
    preset: str = "cpu",
    iters: int = 300,
    pairs: int = PAIRS,
    press_every: float = 1.0,
    console: Console | None = None,
    switch_rounds: int = 3,
    training_launches: int = TRAINING_LAUNCHES,
) -> dict[str, Any]:
    """Measure training speed in the app against headless (`pairs` pairs), key latency while training, first
    paint and screen switches (`switch_rounds` rounds through every screen), idle and while training."""
    from core.settings.train_config import ConfigError
    from nanogpt_tui.bench.train import make_random_dataset
    from nanogpt_tui.widgets.loss_plot import MAX_POINTS

    # Checked first, so a bad value fails in a second, not after minutes of training.
    if not WARMUP_ITERS + 2 <= iters < MAX_POINTS:
        raise ConfigError(
            f"bench tui needs --iters from {WARMUP_ITERS + 2} (the first {WARMUP_ITERS} steps are warm-up, "
            f"then at least 2 timed) to {MAX_POINTS - 1} (the loss plot keeps every step up to that), not {iters}"
        )
    if pairs < 1 or press_every <= 0 or switch_rounds < 1 or training_launches < 0:
        raise ConfigError("bench tui needs at least 1 pair, 1 round of switches and a key press interval above 0 seconds")

    with paths.temporary_home("nanogpt-bench-tui-"):
        make_random_dataset(BENCH_DATASET)
        first_paint = first_paint_seconds()
        make_switch_home()
        switches = switch_times(rounds=switch_rounds)
        loaded = switch_times(rounds=switch_rounds, training=TRAINING_PRESET, launches=training_launches) \
            if training_launches else None
        headless_runs: list[float] = []
        app_runs: list[AppRun] = []
        for pair in range(pairs):  # back to back: a busy moment slows both sides of a pair alike
            headless_runs.append(headless_run(preset, iters, f"bench-headless-{pair}"))
            app_runs.append(asyncio.run(app_run(preset, iters, press_every, f"bench-app-{pair}")))
    ratios = [run.tokens_per_s / headless for run, headless in zip(app_runs, headless_runs)]
    headless, in_app = statistics.median(headless_runs), statistics.median(run.tokens_per_s for run in app_runs)
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
        "ratios": ratios,
        "ratio": statistics.median(ratios),
        "key_presses": len(ms),
        "key_latency_p50_ms": statistics.median(ms) if ms else float("nan"),
        "key_latency_p95_ms": percentile(ms, 0.95) if ms else float("nan"),
        "first_paint_s": first_paint,
        **switches,
        "while_training": loaded,
    }
    first_visits = switches["first_visit_ms"]

    def verdict(ok: bool) -> str:
        return "[green]ok[/]" if ok else "[red]missed[/]"

    def each(values: Sequence[float], form: str) -> str:
        return ", ".join(format(value, form) for value in values)

    def slowest(times: dict[str, Any], count: int = 3) -> str:
        """The screens whose slowest warm switch took longest."""
        worst = sorted(times["warm_slowest_ms"].items(), key=lambda item: -item[1])[:count]
        return ", ".join(f"{mode} {ms:.0f}" for mode, ms in worst)

    figures = {
        "headless tokens/sec (median)": f"{headless:,.0f} (runs: {each(headless_runs, ',.0f')})",
        "in-app tokens/sec (median)": f"{in_app:,.0f} (runs: {each(result['app_runs'], ',.0f')})",
        "ratio in-app / headless, per pair": each(ratios, ".3f"),
        f"ratio, median (goal >= {RATIO_GOAL})": f"{ratio_spread(ratios)} {verdict(result['ratio'] >= RATIO_GOAL)}",
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
        f"{verdict(switches['warm_p95_ms'] < WARM_SWITCH_GOAL_MS)} (slowest: {slowest(switches)})",
    }
    if loaded is not None:
        figures |= {
            f"while {TRAINING_PRESET} trains: first visit p95 (goal < {TRAINING_FIRST_VISIT_GOAL_MS:.0f} ms)":
            f"{loaded['first_p95_ms']:.0f} ms {verdict(loaded['first_p95_ms'] < TRAINING_FIRST_VISIT_GOAL_MS)} "
            f"(slowest of {training_launches} launches: "
            f"{', '.join(f'{mode} {ms:.0f}' for mode, ms in loaded['first_visit_ms'].items())}; train started the run)",
            f"while {TRAINING_PRESET} trains: warm switch p95 (goal < {WARM_SWITCH_GOAL_MS:.0f} ms)":
            f"{loaded['warm_p95_ms']:.1f} ms {verdict(loaded['warm_p95_ms'] < WARM_SWITCH_GOAL_MS)} "
            f"(p50 {loaded['warm_p50_ms']:.1f} ms, {len(loaded['warm_ms'])} switches; slowest: {slowest(loaded)})",
        }
    print_figures(
        f"bench tui: preset {preset}, {iters} iterations on CPU, every core, in the app (a child process) "
        f"vs headless in {pairs} pairs; a key press every {press_every:g} s",
        figures,
        console,
    )
    return result
