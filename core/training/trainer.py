"""The Trainer: trains a GPT on a prepared dataset and reports events (core.runs.events) as it goes.

The Trainer runs in any thread. It is `Steerable` (core.runs.control): it takes pause, unpause, stop,
"save now" and "sample now" requests between steps, from its own process's threads or, through `control.json` in the run folder (core.runs.control),
from anywhere that folder is seen. Its run folder holds `ckpt.pt` (latest), `best.pt` (lowest val loss) and
`metrics.jsonl` (every event it reports but Started and Compiling, so another process can watch the run); with
`wandb_log` its steps and evals also go to Weights & Biases (core.interop.tracking).
Settings are core.settings.train_config's TrainConfig, the schedule core.settings.schedule's, batches core.dataset.batches'.
The run's setup (its folder and lock, the checks; a BuiltRun of what is built once and the Progress that
changes as it trains) is core.training.setup's.

Reproducibility: training batches come from a dedicated torch.Generator seeded from `seed`; eval batches
from a generator re-seeded at every eval (each eval measures the same batches, and evals never shift
the training batches); the sampler draws from its own generator. So a resumed run continues its curve
exactly: the checkpoint holds the batch generator's and torch's (dropout's) RNG states.

Under torchrun (core.training.distributed) every rank runs a Trainer: the model is wrapped in DDP, each rank
takes its rows of every batch and its share of the micro-batches, and rank 0 alone writes files.

A run with `budget_s` is planned first (core.training.budget measures the candidate models, the Started
event says what was chosen and why) and then trains on the clock (core.settings.budget.BudgetClock): the
schedule follows the share of the time passed, the untrained model is not evaluated, an eval is skipped
when it would not leave time for the last one, and the last step ends when the time left is what the
last eval and its checkpoints take. Every time the Trainer reads comes from its `clock`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

import torch

from core.inference.sampler import SamplingConfig, generate
from core.interop.tracking import WandbLogger
from core.runs import metrics
from core.runs.checkpoint import save_checkpoint
from core.runs.control import RunControl, session_record
from core.runs.events import (
    CheckpointSaved,
    Compiling,
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
from core.runs.files import BEST, LATEST
from core.settings.budget import CANDIDATES, BudgetClock, Candidate
from core.settings.schedule import get_lr
from core.settings.train_config import TrainConfig
from core.training import distributed
from core.training.budget import budget_clock, load_lazily_imported, plan_budget
from core.training.evaluation import add_bits_per_byte, estimate_loss
from core.training.optim import group_lr
from core.training.readings import READING_S, DeviceReader
from core.training.failures import NonFinite, describe_failure
from core.training.setup import BuiltRun, Progress, RunFolder, checkpoint_state, setup_run


class Trainer:
    """Trains a GPT on a dataset, reporting events to `on_event`; see the module docstring."""

    def __init__(
        self,
        config: TrainConfig,
        on_event: Callable[[Event], None],
        resume: str | os.PathLike[str] | None = None,
        cancel: threading.Event | None = None,
        meta: str | None = None,  # a nanoGPT char checkpoint's meta.pkl, when it is not beside the one to resume
        clock: Callable[[], float] = time.perf_counter,
        candidates: Sequence[Candidate] = CANDIDATES,
    ) -> None:
        self.config = config
        self.on_event = on_event
        self.resume_from = resume
        self.meta = meta
        self.cancel = cancel or threading.Event()
        self.built: BuiltRun | None = None  # set up by run()
        self.progress: Progress | None = None
        self._folder = RunFolder()  # the run folder's lock, held from setup to the end of run()
        self._log: TextIO | None = None  # metrics.jsonl, open while training (on rank 0)
        self._wandb: WandbLogger | None = None  # with wandb_log, on rank 0
        self._reader: DeviceReader | None = None  # rank 0's device readings, from the start of training
        self._read_at = self._recorded_at = -math.inf  # time.monotonic() of the last reading, of the last recorded
        self._cond = threading.Condition()
        self._paused = False
        self._stop_requested = False
        self._save_requested = False
        self._sample_requested = False
        self.clock = clock  # every time the trainer reads: steps, evals, a budget's deadline
        self.candidates = candidates  # the models a budget chooses from
        self.plan = ""  # with a budget: what was chosen and why
        self._budget: BudgetClock | None = None

    @property
    def run_dir(self) -> Path | None:
        return self.built.run_dir if self.built else None

    @property
    def iter_num(self) -> int:
        return self.progress.iter_num if self.progress else 0

    # -- requests from other threads, handled between steps (core.runs.control.Steerable) --

    def pause(self) -> None:
        with self._cond:
            self._paused = True

    def unpause(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stop_requested = True
            self._cond.notify_all()

    def save_now(self) -> None:
        with self._cond:
            self._save_requested = True
            self._cond.notify_all()

    def sample_now(self) -> None:
        with self._cond:
            self._sample_requested = True
            self._cond.notify_all()

    @property
    def paused(self) -> bool:
        with self._cond:
            return self._paused

    # -- the run --

    def run(self) -> None:
        """Train until max_iters (or the budget), stop or cancel. Never raises: a failure becomes a Failed event."""
        with contextlib.ExitStack() as cleanup:  # on the way out, in this order: the log, the lock, the group
            cleanup.callback(distributed.cleanup)
            cleanup.callback(lambda: self._folder.release(set_up=self.built is not None))
            try:
                if self.config.budget_s:
                    load_lazily_imported()  # before the budget's clock starts
                started = self.clock()
                choice = None
                if self.config.budget_s:  # measure the candidates; the settings become the chosen run's
                    self.config, choice = plan_budget(self.config, started, self.clock, self.candidates, self.resume_from)
                    self.plan = choice.explain()
                self.built, self.progress = run, progress = setup_run(self.config, self.resume_from, self._folder, self.meta)
                self.config = run.config
                self._emit_started(run, progress)
                if run.dist.is_main:  # after a failure's record, which goes in it too, the log closes
                    self._log = cleanup.enter_context(self._open_log(run, progress))
                    if run.config.wandb_log:
                        self._wandb = WandbLogger(run.config, run.run_dir)
                        cleanup.callback(self._wandb.finish)
                if choice is not None:
                    self._budget = budget_clock(run.config, choice, started, run.model.get_num_params(non_embedding=False))
                self._train(run, progress)
            except Exception as error:
                self._fail(error)

    def _open_log(self, run: BuiltRun, progress: Progress) -> TextIO:
        """metrics.jsonl, without the records of iterations this session redoes, open to append."""
        metrics.trim(run.run_dir, run.start_iter, progress.last_eval)
        return metrics.open_log(run.run_dir)

    def _fail(self, error: Exception) -> None:
        """Report `error` as a Failed event, in the words a user can act on."""
        report = describe_failure(error, self.built.device if self.built else self.config.device, self.run_dir)
        self._report_failure(report.message, report.kind, error if report.traceback else None, report.path)

    def _report_failure(self, message: str, kind: str, error: BaseException | None = None, path: str = "") -> None:
        details = "".join(traceback.format_exception(error)) if error else ""
        event = Failed(self.iter_num, message, kind, details, path)
        if self._log is not None:
            with contextlib.suppress(OSError, ValueError):  # a full disk: the failure still reaches the user
                metrics.record_event(self._log, event)
        try:
            self.on_event(event)
        except Exception:
            pass  # the callback itself broke; there is no one left to tell

    def _emit_started(self, run: BuiltRun, progress: Progress) -> None:
        self.on_event(Started(
            run.run_dir, run.model.get_num_params(), str(run.device), run.config.dtype, run.config,
            run.start_iter, run.config.max_iters, self.resume_from is not None, progress.best_val_loss,
            {"steps": list(progress.history["steps"]), "evals": list(progress.history["evals"])}, self.plan,
        ))

    def _train(self, run: BuiltRun, progress: Progress) -> None:
        cfg = run.config
        control = None  # rank 0 serves control.json; the other ranks follow its requests through distributed.agree()
        if self._log is not None:
            metrics.write_record(self._log, session_record(
                dataclasses.asdict(cfg), run.start_iter, str(run.device), run.model.get_num_params(),
                progress.best_val_loss, self.plan))
            control = RunControl(self, run.run_dir, self._log)
        reason = "completed"
        if cfg.compile:
            self.on_event(Compiling(progress.iter_num))
        if run.dist.is_main:
            self._reader = DeviceReader(run.device)
        budget = self._budget
        while True:
            self._report_device(progress.iter_num)
            it = progress.iter_num
            if self._handle_requests(run, progress, control):
                reason = "stopped"
                break
            if budget is None:
                if (it % cfg.eval_interval == 0 or it == cfg.max_iters) and it != progress.last_eval:
                    self._evaluate(run, progress)
            # A budget run's max_iters is only the plan's estimate, and its last eval comes when the clock
            # ends it; an untrained model's loss is known (ln V).
            elif it > 0 and it % cfg.eval_interval == 0 and it != progress.last_eval:
                if budget.eval_fits(self.clock(), max(1, cfg.eval_interval // 2)):
                    budget.took_eval(self._evaluate(run, progress))
            if cfg.sample_interval and it > run.start_iter and it % cfg.sample_interval == 0:
                self._emit_sample(run, progress)
            fraction = None if budget is None else budget.step_fraction(self.clock())
            if (budget is None and it >= cfg.max_iters) or (budget is not None and fraction is None):
                break  # (a budget run ends by its clock: its max_iters is only the plan's estimate)
            self._step(run, progress, it, fraction)
            progress.iter_num = it + 1
        if budget is not None and reason == "completed" and progress.last_eval != progress.iter_num:
            self._evaluate(run, progress)  # the budget's last eval, and its checkpoints
        if progress.saved_iter != progress.iter_num:
            self._save_latest(run, progress)
        self._emit(Finished(progress.iter_num, reason))

    def _report_device(self, iter_num: int) -> None:
        """A device reading for the UI at most every READING_S, recorded in metrics.jsonl at most every
        metrics.DEVICE_RECORD_S (a watcher's view; the file stays small)."""
        now = time.monotonic()
        if self._reader is None or now - self._read_at < READING_S:
            return
        self._read_at = now
        reading = self._reader.read(iter_num)
        if self._log is not None and now - self._recorded_at >= metrics.DEVICE_RECORD_S:
            self._recorded_at = now
            metrics.record_event(self._log, reading)
        self.on_event(reading)

    def _emit(self, event: Event) -> None:
        """Record the event in metrics.jsonl, so a watcher in another process sees it too, then report it."""
        if self._log is not None:  # open from training's start to run()'s end
            metrics.record_event(self._log, event)
        if self._wandb is not None:
            self._wandb.log(event)
        self.on_event(event)

    def _handle_requests(self, run: BuiltRun, progress: Progress, control: RunControl | None) -> bool:
        """Serve save/sample requests and wait out a pause; True when the run should stop."""
        was_paused, paused_at = False, 0.0
        while True:
            if control is not None:
                control.poll(progress.iter_num)  # requests from control.json become the calls below
            with self._cond:
                stop = self._stop_requested or self.cancel.is_set()
                save, sample, paused = self._save_requested, self._sample_requested, self._paused
                self._save_requested = self._sample_requested = False
            # In a distributed run one rank's request (a Ctrl-C reaches each at its own moment) is everyone's.
            stop, save, sample, paused = distributed.agree([stop, save, sample, paused])
            if save:
                self._save_latest(run, progress)
            if sample:
                self._emit_sample(run, progress)
            if stop:
                return True
            if not paused:
                if was_paused:
                    self._emit(Unpaused(progress.iter_num))
                    if self._budget is not None:  # a pause does not count against the budget
                        self._budget.pause(self.clock() - paused_at)
                return False
            if not was_paused:
                self._emit(Paused(progress.iter_num))
                was_paused, paused_at = True, self.clock()
            with self._cond:  # (a rank paused only by another's request does not wait: agree() paces it)
                if self._paused and not (self._stop_requested or self._save_requested or self._sample_requested):
                    # Requests notify the condition; an external cancel Event cannot, so look twice a second.
                    self._cond.wait(timeout=0.5)

    def _step(self, run: BuiltRun, progress: Progress, it: int, fraction: float | None = None) -> None:
        """One optimizer step over gradient_accumulation_steps micro-batches. A budget run passes the share
        of its time that will have passed when the step ends (the schedule follows it)."""
        cfg = run.config
        log = it % cfg.log_interval == 0 or it == cfg.max_iters - 1
        started = self.clock()
        lr = get_lr(it, cfg, fraction)
        for group in run.optimizer.param_groups:
            group["lr"] = group_lr(group, lr, cfg)
        loss_sum = torch.zeros((), device=run.device)
        micro_steps = cfg.gradient_accumulation_steps // run.dist.world_size  # each rank its share
        for micro_step in range(micro_steps):
            if run.dist.enabled:  # as nanoGPT: DDP averages the gradients once, in the last backward pass
                run.train_model.require_backward_grad_sync = micro_step == micro_steps - 1
            x, y = run.batches.next()
            with run.autocast:
                _, loss = run.train_model(x, y)
                loss = loss / micro_steps
            run.batches.prefetch()  # as nanoGPT: on a GPU the copy overlaps the backward pass
            run.scaler.scale(loss).backward()
            loss_sum += loss.detach().float()
        progress.nonfinite |= ~torch.isfinite(loss_sum)
        grad_norm = None
        if cfg.grad_clip or log:
            run.scaler.unscale_(run.optimizer)
            # max_norm inf measures without clipping when clipping is off
            grad_norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip or math.inf)
            if not run.scaler.is_enabled():  # (with the scaler an inf norm is normal: it skips that step)
                progress.nonfinite |= ~torch.isfinite(grad_norm)
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.optimizer.zero_grad(set_to_none=True)
        # The sync: the step's GPU work is done after it. Every rank logs the same steps: the mean is over all.
        loss_value = distributed.mean([loss_sum.item()])[0] if log else 0.0
        step_time = self.clock() - started
        progress.train_time += step_time
        progress.unlogged_time += step_time
        progress.unlogged_steps += 1
        if not log:
            return
        self._check_finite(run, progress, it, loss_value)
        # The time since the last log covers every step since then, GPU work queued by unsynced steps too.
        interval, steps = progress.unlogged_time, progress.unlogged_steps
        progress.unlogged_time, progress.unlogged_steps = 0.0, 0
        tokens_seen = (it + 1) * cfg.tokens_per_iter
        elapsed = run.elapsed_before + progress.train_time
        event = Step(
            iter=it, loss=loss_value, lr=lr, grad_norm=float(grad_norm),
            tokens_per_sec=steps * cfg.tokens_per_iter / max(interval, 1e-9),
            iter_ms=1000 * interval / steps, tokens_seen=tokens_seen, elapsed_s=elapsed,
        )
        progress.history["steps"].append([it, loss_value, tokens_seen, elapsed])
        self._emit(event)

    @staticmethod
    def _check_finite(run: BuiltRun, progress: Progress, it: int, *losses: float) -> None:
        """Raise NonFinite if one of `losses`, or any training loss so far, was NaN or infinite."""
        if all(math.isfinite(v) for v in losses) and not bool(progress.nonfinite):
            return
        kept = run.run_dir / LATEST
        last = f" The last good checkpoint is kept: {kept}" if kept.exists() else ""
        raise NonFinite(
            f"the loss or the weights became NaN or infinite by iteration {it}: training diverged. "
            f"Lower learning_rate (now {run.config.learning_rate}) or use grad_clip.{last}"
        )

    def _evaluate(self, run: BuiltRun, progress: Progress) -> float:
        """Measure the losses, report them and save the checkpoints; the seconds all that took."""
        it, cfg = progress.iter_num, run.config
        started = self.clock()
        # Re-seeded at every eval: each eval measures the same batches, and training's batches stay put.
        # Under torchrun the ranks share out the batches: every rank gets the whole figure, the same as one process's.
        losses = estimate_loss(
            run.forward_model, run.data, cfg.block_size, cfg.batch_size, cfg.eval_iters, cfg.seed + 1,
            run.device, run.autocast, run.dist.rank, run.dist.world_size, run.token_bytes,
        )
        losses = add_bits_per_byte(losses)
        self._check_finite(run, progress, it, losses["train"], losses["val"])
        improved = losses["val"] < progress.best_val_loss
        progress.best_val_loss = min(progress.best_val_loss, losses["val"])
        progress.last_eval = it
        progress.history["evals"].append([it, losses["train"], losses["val"]])
        self._emit(Eval(it, losses["train"], losses["val"], progress.best_val_loss, self.clock() - started,
                        losses["train_bpb"], losses["val_bpb"]))
        if it > 0:  # an untrained model is not worth a file
            self._save_latest(run, progress)
            if improved:
                self._save_best(run, progress)
        return self.clock() - started

    def _emit_sample(self, run: BuiltRun, progress: Progress) -> None:
        """Generate sample_tokens tokens from an empty prompt (the sampler has its own RNG, not training's)."""
        if not run.dist.is_main:
            return
        config = SamplingConfig(max_new_tokens=run.config.sample_tokens, seed=run.config.seed + progress.iter_num)
        text = "".join(piece.text for piece in generate(run.model, run.tokenizer, "", config, run.device))
        self._emit(Sample(progress.iter_num, text))

    def _save_latest(self, run: BuiltRun, progress: Progress) -> None:
        """Save ckpt.pt, the run's latest state (what a resume continues from)."""
        path = self._save(run, progress, LATEST)
        if path is not None:
            progress.saved_iter = progress.iter_num
            self._emit(CheckpointSaved(progress.iter_num, path, "latest"))

    def _save_best(self, run: BuiltRun, progress: Progress) -> None:
        """Save best.pt, the state of the lowest val loss so far."""
        path = self._save(run, progress, BEST)
        if path is not None:
            self._emit(CheckpointSaved(progress.iter_num, path, "best"))

    @staticmethod
    def _save(run: BuiltRun, progress: Progress, filename: str) -> Path | None:
        """Write a checkpoint of the current state into the run folder, unless the weights may hold NaNs
        (NonFinite); its path. Rank 0 alone writes: None on the others."""
        if not run.dist.is_main:
            return None
        # Also look at the weights: a step whose gradients were not measured can still have broken them.
        progress.nonfinite |= ~torch.stack([torch.isfinite(p).all() for p in run.model.parameters()]).all()
        Trainer._check_finite(run, progress, progress.iter_num)
        ckpt = checkpoint_state(run, progress)
        path = run.run_dir / filename
        save_checkpoint(path, ckpt)
        return path
