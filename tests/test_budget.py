"""Training to a time budget: the choice among candidates (fake speeds), the clock, the schedule on it, and
a Trainer on an injected clock that stops on time with its decay done. No test here reads a real clock."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from core.runs.events import Eval, Event, Failed, Finished, Started, Step
from core.settings.budget import (
    CANDIDATES,
    CHOSEN_KEYS,
    DECAY_LONG,
    DECAY_SHORT,
    EVALS,
    BudgetClock,
    Candidate,
    Measurement,
    budget_config,
    candidate_config,
    choose,
    core_parameters,
    decay_fraction,
    format_duration,
    parse_duration,
    past_the_best,
    predicted_loss,
    probe_seconds,
    too_big,
    training_seconds,
)
from core.settings.schedule import get_lr
from core.settings.train_config import MIN_BUDGET_S, ConfigError, TrainConfig

TINY = Candidate("1x16", n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=4, learning_rate=6e-3,
                 muon_lr=0.02, warmup_iters=5)


def measured(speeds: dict[str, float]) -> list[Measurement]:
    """Measurements of the named CANDIDATES at these tokens/s (made up: no machine is timed)."""
    found = []
    for candidate in CANDIDATES:
        if candidate.name in speeds:
            params = core_parameters(candidate_config(TrainConfig(), candidate))
            found.append(Measurement(candidate, params, speeds[candidate.name]))
    return found


# ---- durations --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("2m", 120), ("1.5m", 90), ("1h", 3600),
                                                ("1m30s", 90), (" 2M ", 120), ("1h5m", 3900)])
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "m", "2x", "1m1m", "-5s", "2 minutes", "1s2m3"])
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(ConfigError, match="90s, 2m, 1m30s or 1h") as caught:
        parse_duration(text)
    assert caught.value.by_field().keys() == {"budget_s"}


def test_budget_setting_has_a_range_and_excludes_init_from_and_torchrun() -> None:
    assert TrainConfig(dataset="d", budget_s=120).problems() == []
    problems = dict(TrainConfig(dataset="d", budget_s=MIN_BUDGET_S / 2).problems())
    assert "budget_s" in problems and "5" in problems["budget_s"]
    assert "budget_s" in dict(TrainConfig(dataset="d", budget_s=-1).problems())
    assert "init_from" in dict(TrainConfig(dataset="d", budget_s=60, init_from="gpt2").problems())["budget_s"]
    assert "one process" in dict(TrainConfig(dataset="d", budget_s=60).problems(world_size=2))["budget_s"]


# ---- the choice -------------------------------------------------------------------------------------


def test_the_law_rewards_both_size_and_tokens() -> None:
    assert predicted_loss(10**6, 10**6) < predicted_loss(10**5, 10**6)
    assert predicted_loss(10**6, 10**7) < predicted_loss(10**6, 10**6)
    # Past the repeats, more passes over a small split are worth ever less.
    gain_fresh = predicted_loss(10**6, 10**6) - predicted_loss(10**6, 2 * 10**6)
    gain_repeated = predicted_loss(10**6, 10**6, train_tokens=10**4) - predicted_loss(10**6, 2 * 10**6, train_tokens=10**4)
    assert 0 <= gain_repeated < gain_fresh


def test_a_short_budget_takes_a_small_model_and_a_long_one_a_bigger() -> None:
    # Speeds in the ratio of the candidates' FLOPs, as on a CPU.
    speeds = {"2x64": 90_000, "3x96": 45_000, "4x128": 24_000, "6x192": 6_000}
    short, long = choose(measured(speeds), 5), choose(measured(speeds), 3000)
    size = [c.name for c in CANDIDATES].index
    assert size(short.best.measurement.candidate.name) < size(long.best.measurement.candidate.name)
    for choice in (short, long):
        assert [o.predicted for o in choice.options] == sorted(o.predicted for o in choice.options)
        for option in choice.options:
            c = option.measurement.candidate
            assert option.tokens == pytest.approx(option.measurement.tokens_per_s * choice.seconds)
            assert option.iterations == int(option.tokens // (c.batch_size * c.block_size))


def test_measuring_stops_past_the_best_size_only() -> None:
    # As on a CPU: 3x96 is predicted to beat 2x64 in a minute and lose to it in a few seconds.
    cpu = measured({"2x64": 90_000, "3x96": 34_000})
    assert choose(cpu, 55).best.measurement.candidate.name == "3x96"
    assert not past_the_best(cpu, 55) and not past_the_best(cpu[:1], 55)
    assert choose(cpu, 5).best.measurement.candidate.name == "2x64"
    assert past_the_best(cpu, 5)


def test_a_longer_run_decays_over_a_longer_share_of_it() -> None:
    fractions = [decay_fraction(iterations) for iterations in (10, 256, 500, 1000, 2048, 10**5)]
    assert fractions == sorted(fractions) and len(set(fractions)) == 4
    assert fractions[0] == fractions[1] == DECAY_SHORT[1] and fractions[-2] == fractions[-1] == DECAY_LONG[1]
    slow, fast = (budget_config(TrainConfig(), choose(measured({"3x96": speed}), 60)) for speed in (5_000, 50_000))
    assert slow.decay_fraction == decay_fraction(slow.max_iters) < fast.decay_fraction == decay_fraction(fast.max_iters)


def test_where_big_models_train_as_fast_as_small_ones_the_biggest_wins() -> None:
    # A GPU: small models leave it idle, so every candidate trains about as many tokens a second.
    choice = choose(measured({c.name: 500_000 for c in CANDIDATES}), 300)
    assert choice.best.measurement.candidate is CANDIDATES[-1]


def test_a_model_far_bigger_than_its_data_is_no_candidate() -> None:
    big = candidate_config(TrainConfig(), CANDIDATES[-1])
    assert too_big(big, 10**9) is None
    assert "by heart" in too_big(big, 10**6)


def test_the_choice_explains_itself() -> None:
    choice = choose(measured({"2x64": 90_000, "3x96": 45_000}), 10, skipped=["4x128, 6x192: too slow to measure"])
    text = choice.explain()
    best = choice.best.measurement.candidate
    assert text.startswith(f"budget: chose {best.name}")
    assert f"{choice.best.iterations:,} iterations" in text and "45,000 tokens/s" in text and "90,000" in text
    assert "not measured: 4x128, 6x192: too slow to measure" in text
    with pytest.raises(ConfigError, match="no candidate"):
        choose([], 10)


def test_the_chosen_settings_replace_only_what_a_budget_chooses() -> None:
    user = TrainConfig(dataset="d", budget_s=60, n_layer=9, learning_rate=1.0, seed=7, weight_decay=0.3,
                       device="cpu", dtype="bfloat16", run_name="mine")
    choice = choose(measured({"3x96": 45_000}), 50)
    config = budget_config(user, choice)
    c = choice.best.measurement.candidate
    assert (config.n_layer, config.n_embd, config.batch_size, config.learning_rate) == (
        c.n_layer, c.n_embd, c.batch_size, c.learning_rate)
    assert (config.seed, config.weight_decay, config.device, config.dtype, config.run_name, config.budget_s) == (
        7, 0.3, "cpu", "bfloat16", "mine", 60)
    changed = {f.name for f in dataclasses.fields(TrainConfig) if getattr(config, f.name) != getattr(user, f.name)}
    assert changed <= CHOSEN_KEYS
    assert config.max_iters == choice.best.iterations
    assert config.eval_interval == choice.best.iterations // (EVALS + 1)
    assert config.problems() == []


def test_a_budget_shuffles_only_a_run_that_reads_its_data_more_than_once() -> None:
    tokens = choose(measured({"3x96": 45_000}), 50).best.tokens  # 2.25M
    for train_tokens, shuffled in ((10**6, True), (10**7, False), (None, False)):
        choice = choose(measured({"3x96": 45_000}), 50, train_tokens)
        assert budget_config(TrainConfig(), choice).shuffle is shuffled, (tokens, train_tokens)


def test_measuring_and_the_rest_take_a_share_of_the_budget() -> None:
    assert probe_seconds(7) < 1 and probe_seconds(300) < 0.1 * 300 and probe_seconds(24 * 3600) <= 15
    assert 0 < training_seconds(60, probe_seconds(60)) < 60 - probe_seconds(60)
    assert training_seconds(10, 11) == 0


# ---- the clock and the schedule on it ---------------------------------------------------------------


def test_the_clock_steps_until_the_last_eval_must_start() -> None:
    clock = BudgetClock(deadline=10.0, step_s=1.0, eval_s=2.0)
    fractions, now = [], 0.0
    while (fraction := clock.step_fraction(now)) is not None:
        fractions.append(fraction)
        now += 1.0
    assert now == 8.0  # the last step ended at 8 s: the last eval (2 s) ends at the deadline
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) == 8
    assert not clock.eval_fits(6.0) and clock.eval_fits(5.0)
    assert clock.eval_fits(3.0, steps_after=3) and not clock.eval_fits(4.0, steps_after=3)


def test_the_step_estimate_follows_the_run_and_a_pause_does_not_count() -> None:
    clock = BudgetClock(deadline=100.0, step_s=1.0, eval_s=1.0)
    for now in range(0, 20, 2):  # steps take 2 s, not the 1 s measured
        clock.step_fraction(float(now))
    assert 1.8 < clock.step_s <= 2.0
    clock.took_eval(5.0)  # the time since the last step was the eval's, not a step's
    clock.step_fraction(30.0)
    assert 1.8 < clock.step_s <= 2.0 and clock.eval_s == 5.0
    before = clock.step_fraction(32.0)
    clock.pause(50.0)
    assert clock.deadline == 150.0 and clock.step_fraction(82.0) == pytest.approx(before)


def test_the_schedule_on_the_clock_holds_then_decays_to_min_lr() -> None:
    config = TrainConfig(learning_rate=1e-2, min_lr=1e-3, warmup_iters=10, wsd=True, decay_fraction=0.5)
    assert get_lr(3, config, fraction=0.9) == get_lr(3, config)  # the warmup counts iterations
    assert get_lr(50, config, fraction=0.2) == get_lr(50, config, fraction=0.5) == 1e-2
    assert get_lr(50, config, fraction=0.75) == pytest.approx(5.5e-3)
    assert get_lr(50, config, fraction=1.0) == pytest.approx(1e-3) == get_lr(50, config, fraction=1.3)
    cosine = dataclasses.replace(config, wsd=False)
    assert get_lr(50, cosine, fraction=0.0) == pytest.approx(1e-2) and get_lr(50, cosine, fraction=1.0) == pytest.approx(1e-3)


# ---- a Trainer on an injected clock ------------------------------------------------------------------


TICK = 0.02


class Ticks:
    """A clock that moves 20 ms each time it is read: runs on it are the same on any machine."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.tick = TICK

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def budget_run(dataset: str, budget_s: float, **trainer: object) -> tuple[list[Event], Ticks, float]:
    from core.training.trainer import Trainer

    ticks = Ticks()
    events: list[Event] = []
    start = ticks.now
    Trainer(TrainConfig(dataset=dataset, budget_s=budget_s, run_name="budget", device="cpu"), events.append,
            clock=ticks, **({"candidates": [TINY]} | trainer)).run()  # type: ignore[arg-type]
    failures = [e for e in events if isinstance(e, Failed)]
    assert not failures, failures[0].message
    return events, ticks, start


def test_a_budget_run_stops_on_its_clock_with_the_decay_done(char_dataset) -> None:
    events, ticks, start = budget_run(char_dataset.name, MIN_BUDGET_S)
    started = next(e for e in events if isinstance(e, Started))
    steps = [e for e in events if isinstance(e, Step)]
    evals = [e for e in events if isinstance(e, Eval)]
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.reason == "completed"
    assert started.plan.startswith("budget: chose 1x16") and started.config.n_embd == TINY.n_embd
    # It ended by the deadline, having used most of the time (measuring and evals included). Each read of
    # this clock moves it (a real one's reads take no time): a few reads past the deadline are allowed.
    assert start + 0.9 * MIN_BUDGET_S < ticks.now <= start + MIN_BUDGET_S + 5 * TICK
    # The schedule: warmup, the full rate held, then down to min_lr exactly at the last step.
    config = started.config
    lrs = [s.lr for s in steps]
    assert lrs[config.warmup_iters] == pytest.approx(config.learning_rate)
    assert lrs[-1] == pytest.approx(config.min_lr)
    assert lrs[config.warmup_iters:] == sorted(lrs[config.warmup_iters:], reverse=True)
    # Evals while training (not of the untrained model), and the last one at the last iteration.
    assert evals[0].iter > 0 and len(evals) >= 2
    assert evals[-1].iter == finished.iter == len(steps)
    assert (Path(started.run_dir) / "ckpt.pt").is_file()


def test_a_budget_run_faster_than_planned_spaces_its_evals(char_dataset) -> None:
    # The machine speeds up once the plan is made: the run passes its planned max_iters. Its evals stay
    # an interval apart, none at max_iters and none just before the last (it would show nothing new).
    ticks = Ticks()
    events: list[Event] = []

    def on_event(event: Event) -> None:
        events.append(event)
        if isinstance(event, Started):
            ticks.tick = TICK / 4

    from core.training.trainer import Trainer

    Trainer(TrainConfig(dataset=char_dataset.name, budget_s=MIN_BUDGET_S, run_name="budget", device="cpu"),
            on_event, clock=ticks, candidates=[TINY]).run()
    config = next(e for e in events if isinstance(e, Started)).config
    evals = [e.iter for e in events if isinstance(e, Eval)]
    assert isinstance(events[-1], Finished) and events[-1].iter > config.max_iters
    assert min(b - a for a, b in zip(evals, evals[1:])) >= config.eval_interval // 2, evals


def test_a_budget_measures_no_candidate_bigger_than_one_that_loses(char_dataset) -> None:
    # On the test clock every step takes one tick, so tokens/s follow the tokens a step trains: 1x24's
    # three quarters of a batch make it lose to 1x16 (though not at SPEED_HEADROOM times that speed, so it
    # is measured), and 2x32, past it, is not measured.
    wide = dataclasses.replace(TINY, name="1x24", n_embd=24, batch_size=3)
    bigger = dataclasses.replace(TINY, name="2x32", n_layer=2, n_embd=32)
    events, _, _ = budget_run(char_dataset.name, MIN_BUDGET_S, candidates=[TINY, wide, bigger])
    plan = next(e for e in events if isinstance(e, Started)).plan
    assert plan.startswith("budget: chose 1x16")
    assert "1x16 " in plan.splitlines()[1] and "1x24 " in plan.splitlines()[1]  # both measured
    assert "not measured: 2x32: bigger than 1x24, which is predicted to end worse than 1x16" in plan


def test_a_budget_does_not_measure_a_candidate_that_loses_even_at_the_last_ones_step_time(char_dataset) -> None:
    # 1x32's batch is a quarter of 1x16's: in 1x16's step time (one tick) it would train a quarter of the
    # tokens, too few even with SPEED_HEADROOM. Neither it nor 2x32 is measured.
    wide = dataclasses.replace(TINY, name="1x32", n_embd=32, batch_size=1)
    bigger = dataclasses.replace(TINY, name="2x32", n_layer=2, n_embd=32)
    events, _, _ = budget_run(char_dataset.name, MIN_BUDGET_S, candidates=[TINY, wide, bigger])
    plan = next(e for e in events if isinstance(e, Started)).plan
    assert plan.startswith("budget: chose 1x16") and "predicted val loss" not in plan  # one measured
    assert "not measured: 1x32, 2x32: even at 1x16's step time, 1x32 would end worse than 1x16" in plan


def test_no_candidate_steps_faster_than_a_smaller_one() -> None:
    # SPEED_HEADROOM's premise: each candidate has no fewer layers and no fewer FLOPs a step than the one before.
    from core.training.budget import step_flops

    configs = [candidate_config(TrainConfig(), candidate) for candidate in CANDIDATES]
    for smaller, bigger in zip(configs, configs[1:]):
        assert bigger.n_layer >= smaller.n_layer and step_flops(bigger) >= step_flops(smaller), bigger


def test_a_budget_leaves_out_candidates_too_slow_to_measure_in_its_share(char_dataset) -> None:
    # One tick a step: 2x48's step has ~18x 1x16's FLOPs, so its 4 probe steps would take ~1.4 s of the
    # 0.4 s a 5 s budget sets aside for measuring.
    slow = dataclasses.replace(TINY, name="2x48", n_layer=2, n_embd=48)
    events, _, _ = budget_run(char_dataset.name, MIN_BUDGET_S, candidates=[TINY, slow])
    plan = next(e for e in events if isinstance(e, Started)).plan
    assert plan.startswith("budget: chose 1x16")
    assert f"not measured: 2x48: measuring would take longer than the {probe_seconds(MIN_BUDGET_S):.1f} s" in plan


def test_a_budget_does_not_resume(tiny_run: Path) -> None:
    from core.training.trainer import Trainer

    events: list[Event] = []
    Trainer(TrainConfig(budget_s=60), events.append, resume=str(tiny_run), clock=Ticks(), candidates=[TINY]).run()
    assert isinstance(events[-1], Failed) and "budget_s=0" in events[-1].message


# ---- the command line ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "message"), [
    (["--budget", "2x"], "budget '2x': write a duration such as 90s"),
    (["--budget", "2s"], "budget_s must be 0 (off) or from 5"),
    (["--budget", "1m", "--set", "n_layer=3"], "--budget chooses the model and its recipe: leave out --set n_layer"),
    (["--budget", "1m", "--resume", "some-run"], "leave out --resume"),
])
def test_cli_budget_mistakes_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    from nanogpt_tui.cli import main

    assert main(["train", "--dataset", "anything", *argv]) == 1
    assert message in " ".join(capsys.readouterr().err.split())
