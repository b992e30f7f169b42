"""Benchmarks run end to end on tiny sizes (their figures are for people, so only their shape is checked)."""

from __future__ import annotations

import math

import pytest
from rich.console import Console

from core.common import paths
from core.settings.presets import PRESETS
from core.settings.train_config import ConfigError
from nanogpt_tui.bench.sample import SHAKESPEARE_CHARS, bench_sample
from nanogpt_tui.bench.train import make_random_dataset
from nanogpt_tui.bench.tui import bench_tui
from nanogpt_tui.bench.tui_training import BENCH_DATASET, WARMUP_ITERS, headless_run


def test_bench_sample_fills_the_block_and_compares_like_with_like() -> None:
    # Only the KV-cache table's figures are checked here (test_quantize.py checks the others).
    result = bench_sample(n_tokens=4, big=None, precisions=["float32"], quality_iters=2, quality_preset="tiny",
                          rounds=1, console=Console(file=None, quiet=True))
    # Prompt + generated tokens fill the model's 256-token block.
    assert result["prompt_tokens"] + result["new_tokens"] == 256
    assert len(result["token_ids"]) == 4 and all(0 <= i < len(SHAKESPEARE_CHARS) for i in result["token_ids"])
    # Figures only (no timing is asserted: a busy machine must not fail a test); that cached and
    # uncached logits agree is tested exactly in test_model.py.
    for key in ("cached_tokens_per_s", "uncached_tokens_per_s", "params", "weight_mb"):
        assert math.isfinite(result[key]) and result[key] > 0


@pytest.mark.parametrize("iters", [3, 5000])
def test_bench_tui_refuses_iterations_it_cannot_time(iters: int) -> None:
    with pytest.raises(ConfigError, match="--iters"):
        bench_tui(iters=iters, console=Console(file=None, quiet=True))


def test_bench_tui_times_every_step_whatever_the_preset_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    # A preset that logs every 10 steps, as shakespeare-char does: the bench still sees each step.
    monkeypatch.setitem(PRESETS, "tiny", {**PRESETS["tiny"], "log_interval": 10})
    with paths.temporary_home("nanogpt-test-bench-tui-"):
        make_random_dataset(BENCH_DATASET)
        tokens_per_s = headless_run("tiny", WARMUP_ITERS + 3, "bench-headless")
    assert math.isfinite(tokens_per_s) and tokens_per_s > 0


def test_switch_times_visits_every_screen_in_a_realistic_home() -> None:
    from nanogpt_tui.bench.switches import make_switch_home, switch_keys, switch_times

    with paths.temporary_home("nanogpt-test-bench-switch-"):
        make_switch_home(iters=4)
        result = switch_times(rounds=1, settle_s=0.0)
    # Figures only: a busy machine must not fail a test, so no timing is asserted.
    assert set(result["first_visit_ms"]) == set(switch_keys()) - {"data"} >= {"train", "model", "help"}
    assert len(result["warm_ms"]) == len(switch_keys())
    # One round: each screen's slowest warm switch is its only one.
    assert sorted(result["warm_slowest_ms"].values()) == sorted(result["warm_ms"])
    assert set(result["warm_slowest_ms"]) == set(switch_keys())
    figures = [*result["first_visit_ms"].values(), *result["warm_ms"], result["warm_p50_ms"], result["warm_p95_ms"]]
    assert all(math.isfinite(ms) and ms > 0 for ms in figures)


def test_switch_times_while_a_run_trains_in_the_app() -> None:
    from nanogpt_tui.bench.switches import make_switch_home, switch_keys, switch_times

    with paths.temporary_home("nanogpt-test-bench-switch-"):
        make_switch_home(iters=4)
        result = switch_times(rounds=1, settle_s=0.0, training="tiny")
        # The run was started on the Train screen (so its first visit is not timed), and stopped with a checkpoint.
        assert set(result["first_visit_ms"]) == set(switch_keys()) - {"data", "train"}
        assert (paths.runs_dir() / "bench-training-1" / "ckpt.pt").is_file()
    assert len(result["warm_ms"]) == len(switch_keys())
    assert all(math.isfinite(ms) and ms > 0 for ms in [*result["warm_ms"], result["first_p95_ms"]])


def test_paired_ratios_print_as_their_median_and_spread() -> None:
    from nanogpt_tui.bench.figures import ratio_spread

    assert ratio_spread([0.97, 1.01, 0.95, 0.99, 0.77]) == "0.970 (0.770 to 1.010 over 5 pairs)"
    assert ratio_spread([1.0]) == "1.000 (1.000 to 1.000 over 1 pair)"


def test_piped_figures_keep_each_figure_on_one_line() -> None:
    import io

    from nanogpt_tui.bench.figures import print_figures
    from nanogpt_tui.cli.common import CommandConsole

    out = io.StringIO()  # not a terminal: as `nanogpt-tui bench ... | cat`
    long = "val 1.597, 1,543 iterations, 59.9 s wall (3x96 (3 layers, 96 wide, 0.33M parameters in its blocks))"
    print_figures("bench: a title longer than eighty columns, as every bench's title is, stays whole", {"1m": long},
                  CommandConsole(file=out))
    text = out.getvalue()
    assert long in text and "stays whole" in text.splitlines()[0] and "\x1b[" not in text
