"""TrainConfig, presets, overrides, the lr schedule, and the Trainer's events, controls and resume."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import pickle
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from core.common import devices, paths
from core.dataset.format import DatasetWriter
from core.runs.checkpoint import load_checkpoint, save_checkpoint
from core.runs.events import (
    CheckpointSaved,
    DeviceReading,
    Eval,
    Event,
    Failed,
    Finished,
    Paused,
    Sample,
    Started,
    Step,
    Unpaused,
)
from core.runs.metrics import RECORD_TYPES, write_record
from core.settings.presets import PRESETS, from_preset
from core.settings.schedule import get_lr
from core.settings.train_config import NANOGPT_INCOMPATIBLE, ConfigError, TrainConfig, apply_overrides
from core.tokens.tokenizers import CharTokenizer
from core.training.trainer import Trainer

WAIT = 30  # seconds: generous, the machine is shared


@pytest.fixture
def dataset(small_text: Path) -> str:
    """A character-level dataset named "small", written the way prepare does (first 90% train)."""
    text = small_text.read_text(encoding="utf-8")
    tokenizer = CharTokenizer.from_text(text)
    split = int(len(text) * 0.9)
    with DatasetWriter("small", tokenizer) as writer:
        writer.append("train", tokenizer.encode_array(text[:split]))
        writer.append("val", tokenizer.encode_array(text[split:]))
        writer.commit(str(small_text), len(text), 0.1)
    return "small"


def tiny(dataset: str, **overrides: Any) -> TrainConfig:
    return from_preset("tiny", dataset=dataset, **{"max_iters": 30, "eval_interval": 10, **overrides})


def run(config: TrainConfig, resume: str | None = None) -> list[Event]:
    events: list[Event] = []
    Trainer(config, events.append, resume=resume).run()
    return events


# ---- configuration ------------------------------------------------------------------------------


def test_cpu_preset_is_nanogpts_cpu_recipe() -> None:
    cfg = from_preset("cpu")
    recipe = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, max_iters=2000,
                  decay_iters=2000, dropout=0.0, eval_iters=20, log_interval=1)
    assert {k: getattr(cfg, k) for k in recipe} == recipe
    # The decay ends with the run whatever its length: a 200-iteration run ends at min_lr, not at 9.9e-4.
    short = from_preset("cpu", max_iters=200)
    assert get_lr(199, short) == pytest.approx(short.min_lr, rel=0.01)
    assert {"cpu", "tiny", "shakespeare-char"} <= PRESETS.keys()
    gpu = from_preset("shakespeare-char")
    assert (gpu.n_layer, gpu.n_head, gpu.n_embd, gpu.block_size, gpu.batch_size, gpu.dropout) == (6, 6, 384, 256, 64, 0.2)
    assert from_preset("tiny", n_layer=3).n_layer == 3


def test_unknown_preset_and_setting() -> None:
    with pytest.raises(ConfigError, match="unknown preset 'gpu9'.*cpu"):
        from_preset("gpu9")
    with pytest.raises(ConfigError, match="unknown setting 'n_layers' \\(did you mean 'n_layer'\\?\\)"):
        from_preset("cpu", n_layers=3)


def test_overrides_are_parsed_to_each_fields_type() -> None:
    cfg = apply_overrides(TrainConfig(), [
        "learning_rate=3e-4", "max_iters=1e3", "n_layer = 6", "bias=true", "decay_lr=off",
        "device=cpu", "run_name=none", "dropout=0.1",
    ])
    assert (cfg.learning_rate, cfg.max_iters, cfg.n_layer) == (3e-4, 1000, 6)
    assert isinstance(cfg.max_iters, int)
    assert (cfg.bias, cfg.decay_lr, cfg.device, cfg.run_name, cfg.dropout) == (True, False, "cpu", None, 0.1)
    assert apply_overrides(cfg, ["run_name=mine"]).run_name == "mine"


@pytest.mark.parametrize(
    "item, message",
    [
        ("learning_rat=1", "unknown setting 'learning_rat' \\(did you mean 'learning_rate'\\?\\)"),
        ("zzz=1", "unknown setting 'zzz'; settings are: dataset"),
        ("max_iters=ten", "max_iters=ten: expected a whole number"),
        ("max_iters=2.5", "expected a whole number"),
        ("learning_rate=fast", "learning_rate=fast: expected a number"),
        ("bias=maybe", "bias=maybe: expected true or false"),
        ("learning_rate=nan", "learning_rate=nan: expected a finite number"),
        ("grad_clip=inf", "grad_clip=inf: expected a finite number"),
        ("max_iters=nan", "expected a whole number"),
        ("max_iters", "bad setting 'max_iters': write key=value"),
    ],
)
def test_bad_overrides(item: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        apply_overrides(TrainConfig(), [item])


def test_validate_names_every_problem_with_its_setting() -> None:
    cfg = TrainConfig(dataset="x", n_embd=30, n_head=4, batch_size=0, dropout=1.5, warmup_iters=3000, lr_decay_iters=2000,
                      muon_momentum=1.0, device="cpu")
    with pytest.raises(ConfigError) as error:
        cfg.validate(train_tokens=1000, val_tokens=50)
    message = str(error.value)
    problems = error.value.by_field()
    for field, expected in (("n_embd", "n_embd (30) must be a multiple of n_head (4)"),
                            ("batch_size", "batch_size must be at least 1"), ("dropout", "dropout must be in [0, 1)"),
                            ("lr_decay_iters", "lr_decay_iters (2000) must exceed warmup_iters (3000)"),
                            ("muon_momentum", "muon_momentum must be in [0, 1) (it is 1.0)"),
                            ("block_size", "the val split has 50 tokens, not more than block_size (64)")):
        assert expected in message and expected in problems[field]
    assert "train split" not in message
    # NaN compares False with everything: each non-finite setting must still be named
    nan = float("nan")
    cfg = TrainConfig(dataset="x", device="cpu", learning_rate=nan, min_lr=nan, grad_clip=nan, dropout=float("inf"))
    with pytest.raises(ConfigError) as error:
        cfg.validate(1000, 1000)
    for name in ("learning_rate", "min_lr", "grad_clip", "dropout"):
        assert f"{name} must be a finite number" in str(error.value)
    TrainConfig(dataset="x", device="cpu").validate(1000, 1000)


def test_compiling_is_reported_before_the_first_step(dataset: str, monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[torch.nn.Module] = []
    monkeypatch.setattr(torch, "compile", lambda model: compiled.append(model) or model)  # compiling is slow on CPU
    events = run(tiny(dataset, compile=True, max_iters=3))
    kinds = [type(e).__name__ for e in events]
    assert len(compiled) == 1 and kinds.index("Compiling") < kinds.index("Step")
    assert "Compiling" not in [type(e).__name__ for e in run(tiny(dataset, max_iters=3, run_name="plain"))]


def test_device_and_dtype_problems_come_with_the_others(dataset: str) -> None:
    failed = run(tiny(dataset, dtype="float16", device="cpu", batch_size=0))[-1]
    assert isinstance(failed, Failed) and failed.kind == "error"
    assert "dtype float16 cannot be used on cpu" in failed.message and "batch_size must be at least 1" in failed.message


def test_lr_schedule() -> None:
    cfg = TrainConfig(learning_rate=1.0, min_lr=0.1, warmup_iters=10, lr_decay_iters=110)
    assert get_lr(0, cfg) == pytest.approx(1 / 11)
    assert get_lr(9, cfg) == pytest.approx(10 / 11)
    assert get_lr(10, cfg) == pytest.approx(1.0)
    assert get_lr(60, cfg) == pytest.approx(0.55)  # halfway down the cosine: (1 + 0.1) / 2
    assert get_lr(110, cfg) == pytest.approx(0.1)
    assert get_lr(5000, cfg) == pytest.approx(0.1)
    assert get_lr(5000, TrainConfig(learning_rate=0.5, decay_lr=False)) == 0.5


# ---- the trainer --------------------------------------------------------------------------------


def test_events_in_order_and_files(dataset: str) -> None:
    events = run(tiny(dataset, run_name="r", log_interval=5, sample_interval=20, sample_tokens=10))
    kinds = [type(e).__name__ for e in events]
    assert isinstance(events[0], Started) and not events[0].resumed
    assert events[0].run_dir == paths.runs_dir() / "r" and events[0].start_iter == 0
    assert isinstance(events[-1], Finished) and events[-1].reason == "completed" and events[-1].iter == 30
    assert "Failed" not in kinds

    steps = [e for e in events if isinstance(e, Step)]
    assert [s.iter for s in steps] == [0, 5, 10, 15, 20, 25, 29]
    assert [s.tokens_seen for s in steps] == [(s.iter + 1) * 8 * 32 for s in steps]
    assert all(s.tokens_per_sec > 0 and s.iter_ms > 0 and math.isfinite(s.loss) for s in steps)
    evals = [e for e in events if isinstance(e, Eval)]
    assert [e.iter for e in evals] == [0, 10, 20, 30]
    assert evals[-1].val_loss < evals[0].val_loss  # it learns something
    assert evals[-1].best_val_loss == min(e.val_loss for e in evals)
    # eval 0 comes before step 0; no checkpoint of the untrained model; each later eval saves ckpt.pt
    assert kinds.index("Eval") < kinds.index("Step")
    saved = [e for e in events if isinstance(e, CheckpointSaved)]
    assert [(e.iter, e.kind) for e in saved if e.kind == "latest"] == [(10, "latest"), (20, "latest"), (30, "latest")]
    assert [e.iter for e in events if isinstance(e, Sample)] == [20]

    records = [json.loads(line) for line in (paths.runs_dir() / "r" / "metrics.jsonl").read_text().splitlines()]
    # The session (who trains it), then every event but Started and Compiling, in order; of the device
    # readings (one a second at most) only some (one every DEVICE_RECORD_S at most): the first one at least.
    readings = [e for e in events if isinstance(e, DeviceReading)]
    assert records[1] == {"type": "device", **dataclasses.asdict(readings[0])} and readings[0].iter == 0
    assert [(r["type"], r["iter"]) for r in records if r["type"] != "device"] == [("session", 0)] + [
        (RECORD_TYPES[type(e)], e.iter) for e in events if type(e) in RECORD_TYPES and type(e) is not DeviceReading
    ]
    # On the CPU a reading is the process's resident memory (and its peak), no GPU counter.
    assert readings[0].device == "cpu" and readings[0].allocated is None and readings[0].utilization is None
    assert all(r.rss is not None and r.rss > 0 and r.peak is not None and r.peak >= r.rss for r in readings)
    ckpt = load_checkpoint(paths.runs_dir() / "r" / "ckpt.pt")
    assert ckpt["iter_num"] == 30 and ckpt["config"]["dataset"] == dataset
    assert ckpt["tokenizer"]["kind"] == "char" and ckpt["dataset"]["name"] == dataset
    assert [s[0] for s in ckpt["history"]["steps"]] == [s.iter for s in steps]
    assert (paths.runs_dir() / "r" / "best.pt").is_file()


def test_resumed_run_continues_its_curve_exactly(dataset: str) -> None:
    # dropout makes the torch RNG state matter too
    # The first half is told the whole run's schedule (a decay that followed its max_iters would end at 15).
    straight = run(tiny(dataset, run_name="straight", dropout=0.1))
    first = run(tiny(dataset, run_name="split", dropout=0.1, max_iters=15, lr_decay_iters=30))
    assert isinstance(first[-1], Finished) and first[-1].iter == 15
    second = run(tiny(dataset, dropout=0.1), resume="split")
    assert isinstance(second[0], Started) and second[0].resumed and second[0].start_iter == 15
    assert second[0].run_dir == paths.runs_dir() / "split"
    # The resumed run hands over the curve so far: first's logged steps and its best val loss.
    assert [row[:2] for row in second[0].history["steps"]] == [[e.iter, e.loss] for e in first if isinstance(e, Step)]
    assert second[0].best_val_loss == min(e.val_loss for e in first if isinstance(e, Eval))

    def losses(events: list[Event]) -> dict[int, float]:
        return {e.iter: e.loss for e in events if isinstance(e, Step)}

    assert losses(first) | losses(second) == losses(straight)
    assert len(losses(straight)) == 30
    a = load_checkpoint(paths.runs_dir() / "straight" / "ckpt.pt")
    b = load_checkpoint(paths.runs_dir() / "split" / "ckpt.pt")
    assert a["iter_num"] == b["iter_num"] == 30
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert [s[:3] for s in a["history"]["steps"]] == [s[:3] for s in b["history"]["steps"]]
    assert a["history"]["evals"][-1] == b["history"]["evals"][-1]


RECIPE = dict(dict.fromkeys(NANOGPT_INCOMPATIBLE, True), muon=True, wsd=True, shuffle=True,
              lr_decay_iters=30)  # the schedule of the whole run, also in its first half


def test_a_muon_run_with_every_knob_resumes_exactly(dataset: str) -> None:
    straight = run(tiny(dataset, run_name="straight", dropout=0.1, **RECIPE))
    first = run(tiny(dataset, run_name="split", dropout=0.1, max_iters=15, **RECIPE))
    assert isinstance(first[-1], Finished) and first[-1].iter == 15
    # Settings left out are the checkpoint's architecture (MODEL_KEYS); the optimizer must match.
    refused = run(tiny(dataset, dropout=0.1), resume="split")[-1]
    assert isinstance(refused, Failed) and "muon=True" in refused.message
    second = run(tiny(dataset, dropout=0.1, muon=True, wsd=True, shuffle=True, lr_decay_iters=30), resume="split")
    assert isinstance(second[0], Started) and second[0].resumed and isinstance(second[-1], Finished)

    def losses(events: list[Event]) -> dict[int, float]:
        return {e.iter: e.loss for e in events if isinstance(e, Step)}

    assert losses(first) | losses(second) == losses(straight)
    a = load_checkpoint(paths.runs_dir() / "straight" / "ckpt.pt")
    b = load_checkpoint(paths.runs_dir() / "split" / "ckpt.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert "transformer.wpe.weight" not in a["model"] and "lm_head.weight" in a["model"]
    assert {k: a["model_args"][k] for k in NANOGPT_INCOMPATIBLE} == dict.fromkeys(NANOGPT_INCOMPATIBLE, True)
    assert a["config"]["muon"] and a["optimizer"]["param_groups"][0]["muon"]
    # the lr schedule reaches Muon's group in proportion
    lrs = {e.iter: e.lr for e in straight if isinstance(e, Step)}
    assert lrs[29] < lrs[15] == pytest.approx(1e-3)  # wsd: stable, then decaying


def test_a_resume_takes_the_betas_and_momentum_it_is_given(dataset: str) -> None:
    run(tiny(dataset, run_name="m", muon=True, max_iters=5))
    resumed = run(tiny(dataset, muon=True, muon_momentum=0.5, beta2=0.9, weight_decay=0.3, max_iters=8), resume="m")
    assert isinstance(resumed[-1], Finished)
    groups = load_checkpoint(paths.runs_dir() / "m" / "ckpt.pt")["optimizer"]["param_groups"]
    assert groups[0]["muon"] and groups[0]["momentum"] == 0.5 and all(g["betas"][1] == 0.9 for g in groups)
    assert groups[1]["weight_decay"] == 0.3 and groups[2]["weight_decay"] == 0.0


def test_every_preset_validates() -> None:
    for name in PRESETS:
        from_preset(name, dataset="x").validate()


def test_wsd_schedule() -> None:
    cfg = TrainConfig(learning_rate=1.0, min_lr=0.1, warmup_iters=10, max_iters=110, wsd=True, decay_fraction=0.4)
    assert cfg.decay_iters == 110  # lr_decay_iters 0 follows max_iters
    assert get_lr(0, cfg) == pytest.approx(1 / 11)
    assert get_lr(10, cfg) == pytest.approx(1.0)
    assert get_lr(65, cfg) == pytest.approx(1.0)  # stable until the last 40% (44 iterations)
    decay_start = 110 - 44
    assert get_lr(decay_start, cfg) == pytest.approx(1.0)
    assert get_lr(decay_start + 22, cfg) == pytest.approx(0.55)  # a straight line down
    assert get_lr(110, cfg) == pytest.approx(0.1) and get_lr(500, cfg) == pytest.approx(0.1)
    lrs = [get_lr(i, cfg) for i in range(111)]
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # never rises after warmup
    assert get_lr(61, TrainConfig(learning_rate=1.0, min_lr=0.1, warmup_iters=10, max_iters=110, lr_decay_iters=60,
                                  wsd=True)) == pytest.approx(0.1)


class Recorder:
    """Collects events from the training thread and lets the test wait for one."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def wait_for(self, kind: type, after: int = 0) -> Event:
        with self.cond:
            found = self.cond.wait_for(
                lambda: any(isinstance(e, kind) for e in self.events[after:]), timeout=WAIT
            )
            assert found, f"no {kind.__name__} event; got {[type(e).__name__ for e in self.events]}"
            return next(e for e in self.events[after:] if isinstance(e, kind))


def test_controls_from_another_thread(dataset: str) -> None:
    recorder = Recorder()
    trainer = Trainer(tiny(dataset, run_name="ctl", max_iters=100_000, eval_interval=100_000), recorder)
    thread = threading.Thread(target=trainer.run)
    thread.start()
    try:
        recorder.wait_for(Step)
        trainer.pause()
        paused = recorder.wait_for(Paused)
        n = len(recorder.events)
        time.sleep(0.3)  # time passes: that nothing happens meanwhile is what is tested, not a wait
        assert not any(isinstance(e, Step) for e in recorder.events[n:])  # no steps while paused

        trainer.save_now()
        saved = recorder.wait_for(CheckpointSaved, after=n)
        assert saved.iter == paused.iter and saved.kind == "latest"
        assert load_checkpoint(saved.path)["iter_num"] == paused.iter
        trainer.sample_now()
        sample = recorder.wait_for(Sample, after=n)
        assert sample.iter == paused.iter and sample.text

        n = len(recorder.events)
        trainer.unpause()
        assert recorder.wait_for(Unpaused, after=n).iter == paused.iter
        assert recorder.wait_for(Step, after=n).iter == paused.iter
        trainer.stop()
        finished = recorder.wait_for(Finished)
    finally:
        trainer.stop()
        thread.join(WAIT)
    assert not thread.is_alive()
    assert finished.reason == "stopped" and finished.iter < 100_000
    last = recorder.events[-2]
    assert isinstance(last, CheckpointSaved) and last.iter == finished.iter
    assert load_checkpoint(last.path)["iter_num"] == finished.iter


def test_cancel_wakes_a_paused_trainer(dataset: str) -> None:
    recorder = Recorder()
    cancel = threading.Event()
    trainer = Trainer(tiny(dataset, max_iters=100_000, eval_interval=100_000), recorder, cancel=cancel)
    trainer.pause()
    thread = threading.Thread(target=trainer.run)
    thread.start()
    recorder.wait_for(Paused)
    cancel.set()
    finished = recorder.wait_for(Finished)
    thread.join(WAIT)
    assert finished.reason == "stopped" and finished.iter == 0
    assert not any(isinstance(e, Step) for e in recorder.events)


@pytest.mark.parametrize("log_interval", [1, 7])
def test_nan_loss_fails_and_keeps_the_last_good_checkpoint(dataset: str, log_interval: int) -> None:
    latest = paths.runs_dir() / "nan" / "ckpt.pt"
    good: dict[str, bytes] = {}
    events: list[Event] = []
    trainer: Trainer

    def on_event(event: Event) -> None:
        events.append(event)
        if isinstance(event, CheckpointSaved) and event.kind == "latest":
            good["bytes"] = latest.read_bytes()
        if isinstance(event, Step) and event.iter == 14:
            with torch.no_grad():  # the weights blow up, as a diverging run's would
                trainer.built.model.lm_head.weight.fill_(float("nan"))

    trainer = Trainer(tiny(dataset, run_name="nan", log_interval=log_interval), on_event)
    trainer.run()
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.kind == "nan"
    assert "NaN or infinite" in failed.message and "learning_rate" in failed.message
    assert str(latest) in failed.message
    assert 14 < failed.iter <= 20
    assert latest.read_bytes() == good["bytes"]
    ckpt = load_checkpoint(latest)
    assert ckpt["iter_num"] == 10
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values())
    assert not any(isinstance(e, CheckpointSaved) and e.iter > 10 for e in events)


def test_out_of_memory_gives_advice(dataset: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def oom(self: Trainer, run: object, progress: object, it: int, fraction: float | None = None) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Trainer, "_step", oom)
    events = run(tiny(dataset))
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.kind == "oom"
    assert "batch_size" in failed.message and "block_size" in failed.message


def test_failures_are_events_not_exceptions(dataset: str, monkeypatch: pytest.MonkeyPatch) -> None:
    failed = run(tiny("no-such-dataset"))[-1]
    assert isinstance(failed, Failed) and failed.kind == "error" and "no dataset called 'no-such-dataset'" in failed.message
    failed = run(tiny(dataset, n_embd=30, n_head=4))[-1]
    assert isinstance(failed, Failed) and "n_embd (30) must be a multiple of n_head (4)" in failed.message
    failed = run(tiny(dataset, block_size=5000))[-1]
    assert isinstance(failed, Failed) and "lower block_size or use more text" in failed.message
    failed = run(tiny(dataset), resume="no-such-run")[-1]
    assert isinstance(failed, Failed) and "no checkpoint called 'no-such-run'" in failed.message
    monkeypatch.setattr(devices, "_cuda_reason", lambda: "no CUDA GPU found")  # the same on every machine
    failed = run(tiny(dataset, device="cuda"))[-1]
    assert isinstance(failed, Failed) and "'cuda' is not available: no CUDA GPU found" in failed.message
    # a nanoGPT folder whose ids do not fit its meta.pkl's vocabulary
    folder = paths.home() / "bad-ids"
    folder.mkdir()
    for split in ("train", "val"):
        np.array([0, 1, 2, 3] * 50, dtype=np.uint16).tofile(folder / f"{split}.bin")
    with open(folder / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": 3, "itos": {0: "a", 1: "b", 2: "c"}}, f)
    failed = run(tiny(str(folder)))[-1]
    assert isinstance(failed, Failed) and failed.kind == "error" and "outside the vocabulary of 3" in failed.message


def test_a_run_name_in_use_is_refused(dataset: str) -> None:
    assert isinstance(run(tiny(dataset, run_name="once", max_iters=2))[-1], Finished)
    failed = run(tiny(dataset, run_name="once", max_iters=2))[-1]
    assert isinstance(failed, Failed) and "run 'once' already exists" in failed.message


def test_nan_between_logged_steps_is_not_saved(dataset: str) -> None:
    # No step is logged here, so only the on-device NaN flag can stop save_now from writing NaN weights.
    latest = paths.runs_dir() / "quiet" / "ckpt.pt"
    events: list[Event] = []
    good: dict[str, bytes] = {}
    trainer: Trainer

    def on_event(event: Event) -> None:
        events.append(event)
        if isinstance(event, CheckpointSaved) and event.kind == "best" and event.iter == 10:
            good["bytes"] = latest.read_bytes()
            with torch.no_grad():
                trainer.built.model.lm_head.weight.fill_(float("nan"))
            trainer.save_now()

    trainer = Trainer(tiny(dataset, run_name="quiet", log_interval=1000), on_event)
    trainer.run()
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.kind == "nan" and failed.iter == 11
    assert latest.read_bytes() == good["bytes"]


def test_bench_train_uses_a_throwaway_data_dir(nanogpt_home: Path) -> None:
    from nanogpt_tui.bench.train import bench_train

    result = bench_train("tiny", iters=5, device="cpu", pairs=3)
    assert result["tokens_per_iter"] == 8 * 32 and result["timed_iters"] == 2
    assert result["tokens_per_s"] > 0 and math.isfinite(result["final_loss"])
    assert result["params"] > 0
    # Side by side with nanoGPT's bare loop on the same settings, in pairs: the median of their ratios.
    assert result["bare_loop"]["tokens_per_s"] > 0
    assert len(result["ratios"]) == 3 and result["ratio"] == sorted(result["ratios"])[1]
    # The share of this machine's matmul peak: measured, so only its shape is checked.
    assert result["peak_flops"] > 0 and result["peak_share"] == pytest.approx(
        result["tokens_per_s"] * result["flops_per_token"] / result["peak_flops"])
    from core.common.devices import cpu_count

    assert result["threads"] == cpu_count()  # no core left idle
    assert str(nanogpt_home) == str(paths.home())  # the user data dir is back
    assert not list(paths.runs_dir().iterdir()) and not list(paths.datasets_dir().iterdir())


def test_evaluate_a_model_on_a_dataset(dataset: str) -> None:
    from core.dataset.format import load_dataset
    from core.model.gpt import GPT, GPTConfig
    from core.training.evaluation import evaluate

    info = load_dataset(dataset)
    model = GPT(GPTConfig(block_size=16, vocab_size=info.vocab_size, n_layer=1, n_head=2, n_embd=16))
    with torch.no_grad():
        for param in model.parameters():
            param.zero_()  # every logit 0: the loss is exactly ln(vocab_size) on any batch
    cpu = torch.device("cpu")
    losses = evaluate(model, info, cpu, batch_size=4, eval_iters=3)
    # Every target is one byte (an ASCII text, one character per token): bits per byte is log2(vocab_size).
    assert losses == pytest.approx({"train": math.log(info.vocab_size), "val": math.log(info.vocab_size),
                                    "train_bpb": math.log2(info.vocab_size), "val_bpb": math.log2(info.vocab_size)})

    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=16, vocab_size=info.vocab_size, n_layer=1, n_head=2, n_embd=16)).eval()
    assert evaluate(model, info, cpu, eval_iters=2) == evaluate(model, info, cpu, eval_iters=2)  # same batches
    assert not model.training

    small = GPT(GPTConfig(block_size=16, vocab_size=info.vocab_size - 1, n_layer=1, n_head=2, n_embd=16))
    with pytest.raises(ConfigError, match="has .* token ids but the model only"):
        evaluate(small, info, cpu)
    wide = GPT(GPTConfig(block_size=5000, vocab_size=info.vocab_size, n_layer=1, n_head=2, n_embd=16))
    with pytest.raises(ConfigError, match="the val split .* not more than the model's block_size"):
        evaluate(wide, info, cpu)


def metrics(run_name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (paths.runs_dir() / run_name / "metrics.jsonl").read_text().splitlines()]


def test_resume_after_a_failure_redoes_its_metrics_once(dataset: str) -> None:
    straight = run(tiny(dataset, run_name="straight"))

    def crash(event: Event) -> None:
        if isinstance(event, Step) and event.iter == 14:  # after step 14's record, 4 steps past ckpt.pt
            raise RuntimeError("the machine went down")

    Trainer(tiny(dataset, run_name="crashed"), crash).run()
    assert load_checkpoint(paths.runs_dir() / "crashed" / "ckpt.pt")["iter_num"] == 10
    resumed = run(tiny(dataset), resume="crashed")
    assert isinstance(resumed[-1], Finished) and resumed[0].run_dir == paths.runs_dir() / "crashed"
    expected = [("step" if isinstance(e, Step) else "eval", e.iter) for e in straight if isinstance(e, (Step, Eval))]
    records = [r for r in metrics("crashed") if r["type"] in ("step", "eval")]
    assert [(r["type"], r["iter"]) for r in records] == expected  # each iteration once, in order
    assert [r["loss"] for r in records if r["type"] == "step"] == [e.loss for e in straight if isinstance(e, Step)]


def test_resuming_from_best_starts_a_new_run_folder(dataset: str) -> None:
    run(tiny(dataset, run_name="orig", max_iters=20))
    latest = paths.runs_dir() / "orig" / "ckpt.pt"
    before = latest.read_bytes(), (paths.runs_dir() / "orig" / "metrics.jsonl").read_bytes()
    # run_name "orig" comes with the checkpoint's settings (as the CLI passes them): not a folder to reuse
    events = run(tiny(dataset, run_name="orig", max_iters=25), resume=str(paths.runs_dir() / "orig" / "best.pt"))
    started = events[0]
    assert isinstance(started, Started) and started.resumed and isinstance(events[-1], Finished)
    assert started.run_dir.parent == paths.runs_dir() and started.run_dir.name.startswith(f"{dataset}-")
    assert started.config.run_name is None
    assert (started.run_dir / "ckpt.pt").is_file()
    assert (latest.read_bytes(), (paths.runs_dir() / "orig" / "metrics.jsonl").read_bytes()) == before
    # A run_name in use by another run is refused for a resume too.
    failed = run(tiny(dataset, run_name="orig", max_iters=25), resume=started.run_dir.name)[-1]
    assert isinstance(failed, Failed) and "run 'orig' already exists" in failed.message


def test_resume_ignores_model_args_our_model_does_not_know(dataset: str) -> None:
    run(tiny(dataset, run_name="extra", max_iters=10))
    path = paths.runs_dir() / "extra" / "ckpt.pt"
    ckpt = load_checkpoint(path)
    ckpt["model_args"]["flash_attention"] = True  # some other program's key
    save_checkpoint(path, ckpt)
    events = run(tiny(dataset, max_iters=12), resume="extra")
    assert isinstance(events[-1], Finished) and events[-1].iter == 12
    assert "flash_attention" not in load_checkpoint(path)["model_args"]


def test_infinite_numbers_are_written_as_null() -> None:
    file = io.StringIO()
    write_record(file, {"type": "step", "iter": 3, "grad_norm": float("inf"), "loss": 1.5})
    line = file.getvalue()
    assert "Infinity" not in line and json.loads(line) == {"type": "step", "iter": 3, "grad_norm": None, "loss": 1.5}


@pytest.mark.parametrize("grad_clip", [1.0, 0.0])
def test_nan_gradients_with_a_finite_loss_are_not_saved(dataset: str, grad_clip: float) -> None:
    latest = paths.runs_dir() / "grads" / "ckpt.pt"
    events: list[Event] = []
    good: dict[str, bytes] = {}
    trainer: Trainer

    def on_event(event: Event) -> None:
        events.append(event)
        if isinstance(event, CheckpointSaved) and event.kind == "latest" and event.iter == 10:
            good["bytes"] = latest.read_bytes()
            # The next step's loss stays finite, but its gradients (and so the weights after it) are NaN.
            weight = trainer.built.model.transformer.h[0].mlp.c_fc.weight
            weight.register_hook(lambda grad: torch.full_like(grad, float("nan")))
            trainer.save_now()

    trainer = Trainer(tiny(dataset, run_name="grads", log_interval=1000, grad_clip=grad_clip), on_event)
    trainer.run()
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.kind == "nan" and failed.iter == 11
    assert latest.read_bytes() == good["bytes"]
