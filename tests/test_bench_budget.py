"""`bench budget`'s verdicts and table from made-up outcomes (no run is timed here), and its CLI's checks."""

from __future__ import annotations

import io

import pytest

from rich.console import Console

from nanogpt_tui import cli
from nanogpt_tui.bench.budget import TimedRun, median_run, report, verdict


def runs(budget_val: float, fast: float, cpu: float) -> list[TimedRun]:
    return [TimedRun("budget 7s", 7.02, 300, budget_val, "3x96 (3 layers, 96 wide)"),
            TimedRun("fast", 7.3, 180, fast, "3x96, batch 16"), TimedRun("cpu", 7.4, 140, cpu, "4x128, batch 12")]


def test_the_verdict_wants_lower_than_every_preset_and_the_goal_where_there_is_one() -> None:
    assert verdict(7.0, runs(1.85, 2.10, 2.40)) == "ok (goal: lower than fast, cpu); ok (goal <= 1.88)"
    assert verdict(7.0, runs(1.90, 2.10, 1.89)) == "missed (goal: lower than fast, cpu); missed (goal <= 1.88)"
    assert verdict(60.0, runs(1.59, 1.70, 1.80)) == "ok (goal: lower than fast, cpu); ok (goal <= 1.6)"
    assert verdict(15.0, runs(1.75, 1.70, 1.80)) == "missed (goal: lower than fast, cpu)"


def test_the_table_gives_each_run_and_the_verdict() -> None:
    out = io.StringIO()
    failed = TimedRun("cpu", failure="out of memory")
    report({7.0: runs(1.85, 2.10, 2.40), 60.0: [*runs(1.59, 1.70, 1.80)[:2], failed]}, Console(file=out, width=250))
    text = out.getvalue()
    assert "7s: budget 7s" in text and "val 1.850, 300 iterations, 7.0 s wall (3x96 (3 layers, 96 wide))" in text
    assert "7s: fast" in text and "val 2.100, 180 iterations" in text
    assert "1m: cpu" in text and "failed: out of memory" in text
    assert "ok (goal <= 1.88)" in text and "ok (goal <= 1.6)" in text


def test_cli_bench_budget_checks_its_budgets_first(capsys) -> None:
    assert cli.main(["bench", "budget", "--budgets", "7s,soon"]) == 1
    assert "write a duration such as 90s" in capsys.readouterr().err
    assert cli.main(["bench", "budget", "--text", "no-such-file.txt"]) == 1
    assert "nanogpt-tui prepare shakespeare" in " ".join(capsys.readouterr().err.split())


def test_rounds_give_each_side_its_median_run_and_the_others_beside_it() -> None:
    rounds = [TimedRun("fast", 7.0, iters, val) for iters, val in ((170, 1.955), (200, 1.91), (150, 1.99))]
    middle = median_run(rounds)
    assert (middle.iters, middle.val_loss, middle.others) == (170, 1.955, [1.91, 1.99])
    assert median_run([*rounds, TimedRun("fast", failure="out of memory")]).failure == "out of memory"
    out = io.StringIO()
    report({7.0: [middle]}, Console(file=out, width=250))
    assert "val 1.955 (median; the other rounds 1.910, 1.990), 170 iterations" in out.getvalue()


def test_cli_bench_refuses_fewer_than_one_pair(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["bench", "budget", "--pairs", "0"])
    assert "'0' is not a whole number >= 1" in capsys.readouterr().err
