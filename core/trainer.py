"""The Trainer: trains a GPT on a prepared dataset and reports events (core.train_events) as it goes.

The Trainer runs in any thread. It takes pause, resume, stop, "save now" and "sample now" requests
between steps, from its own process's threads or, through `control.json` in the run folder (core.control),
from anywhere that folder is seen. Its run folder holds `ckpt.pt` (latest), `best.pt` (lowest val loss) and
`metrics.jsonl` (every event it reports but Started and Compiling, so another process can watch the run).
Settings are core.train_config's TrainConfig, the schedule core.schedule's, batches core.batches'.
The run's setup (its folder and lock, the checks, the model and optimizer: a RunState) is core.run_setup's.

Reproducibility: training batches come from a dedicated torch.Generator seeded from `seed`; eval batches
from a generator re-seeded at every eval (each eval measures the same batches, and evals never shift
the training batches); the sampler draws from its own generator. So a resumed run continues its curve
exactly: the checkpoint holds the batch generator's and torch's (dropout's) RNG states.

Under torchrun (core.distributed) every rank runs a Trainer: the model is wrapped in DDP, each rank
takes its rows of every batch and its share of the micro-batches, and rank 0 alone writes files.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from core import distributed, metrics, paths
from core.checkpoint import VERSION, CheckpointError, save_checkpoint
from core.run_files import BEST, LATEST
from core.control import RunControl
from core.dataset import DatasetError
from core.devices import DeviceError
from core.disk import is_disk_full, no_space_message
from core.evaluation import estimate_loss
from core.optim import group_lr
from core.run_lock import RunInUse
from core.run_setup import RunFolder, RunState, setup_run
from core.sampler import SamplingConfig, generate
from core.schedule import get_lr
from core.train_config import ConfigError, TrainConfig
from core.train_events import (
    CheckpointSaved, Compiling, Eval, Event, Failed, Finished, Paused, Resumed, Sample, Started, Step,
)


class _NonFinite(Exception):
    """The loss, gradients or weights became NaN or infinite."""


def _is_oom(error: BaseException) -> bool:
    return isinstance(error, torch.cuda.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "out of memory" in str(error).lower()
    )


class Trainer:
    """Trains a GPT on a dataset, reporting events to `on_event`; see the module docstring."""

    def __init__(
        self,
        config: TrainConfig,
        on_event: Callable[[Event], None],
        resume: str | os.PathLike[str] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.on_event = on_event
        self.resume_from = resume
        self.cancel = cancel or threading.Event()
        self.state: RunState | None = None  # set up by run()
        self._folder = RunFolder()  # the run folder's lock, held from setup to the end of run()
        self._cond = threading.Condition()
        self._paused = False
        self._stop_requested = False
        self._save_requested = False
        self._sample_requested = False

    @property
    def run_dir(self) -> Path | None:
        return self.state.run_dir if self.state else None

    @property
    def iter_num(self) -> int:
        return self.state.iter_num if self.state else 0

    # -- requests from other threads, handled between steps --

    def pause(self) -> None:
        with self._cond:
            self._paused = True

    def resume(self) -> None:
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
        """Train until max_iters, stop or cancel. Never raises: a failure becomes a Failed event."""
        try:
            self.state = self._setup()
            self._train(self.state)
        except _NonFinite as error:
            self._fail(str(error), "nan")
        except Exception as error:
            if distributed.is_peer_failure(error):
                self._fail("another process of this distributed run stopped (it failed or was killed: see its "
                           "message, or torchrun's report)", "error", error)
            elif _is_oom(error):
                device = self.state.device if self.state else self.config.device
                self._fail(
                    f"out of memory on {device}: lower batch_size or block_size "
                    "(raise gradient_accumulation_steps to keep the batch), or train a smaller model",
                    "oom", error,
                )
            elif isinstance(error, RunInUse):  # the app offers to watch that run instead
                self._fail(str(error), "in_use", path=str(error.run_dir))
            elif isinstance(error, (ConfigError, DatasetError, CheckpointError, DeviceError)):
                self._fail(str(error), "error")
            elif is_disk_full(error):
                self._fail(no_space_message("write the run's files", self.run_dir or paths.runs_dir()), "error")
            else:
                self._fail(f"{type(error).__name__}: {error}", "error", error)
        finally:
            if self.state is not None and self.state.metrics is not None:
                self.state.metrics.close()  # after a failure's record, which goes in it too
            self._folder.release(set_up=self.state is not None)
            distributed.cleanup()

    def _fail(self, message: str, kind: str, error: BaseException | None = None, path: str = "") -> None:
        details = "".join(traceback.format_exception(error)) if error else ""
        try:
            self._emit(Failed(self.iter_num, message, kind, details, path))
        except Exception:
            pass  # the callback itself broke; there is no one left to tell

    def _setup(self) -> RunState:
        state = setup_run(self.config, self.resume_from, self._folder)
        self.config = state.config
        self.on_event(Started(
            state.run_dir, state.model.get_num_params(), str(state.device), state.config.dtype, state.config,
            state.start_iter, state.config.max_iters, self.resume_from is not None, state.best_val_loss,
            {"steps": list(state.history["steps"]), "evals": list(state.history["evals"])},
        ))
        return state

    def _train(self, state: RunState) -> None:
        cfg = state.config
        state.last_eval = state.history["evals"][-1][0] if state.history["evals"] else None
        # Training time of earlier sessions of this run, so elapsed_s continues across resumes.
        state.elapsed_before = state.history["steps"][-1][3] if state.history["steps"] else 0.0
        if state.dist.is_main:
            metrics.trim(state.run_dir, state.start_iter, state.last_eval)
            state.metrics = open(state.run_dir / metrics.METRICS_FILE, "a", encoding="utf-8")
        # Rank 0 serves control.json; the other ranks follow its requests through distributed.agree().
        state.control = RunControl(self, state) if state.dist.is_main else None
        reason = "completed"
        if cfg.compile:
            self.on_event(Compiling(state.iter_num))
        while True:
            it = state.iter_num
            if self._handle_requests(state):
                reason = "stopped"
                break
            if (it % cfg.eval_interval == 0 or it == cfg.max_iters) and it != state.last_eval:
                self._evaluate(state)
            if cfg.sample_interval and it > state.start_iter and it % cfg.sample_interval == 0:
                self._emit_sample(state)
            if it >= cfg.max_iters:
                break
            self._step(state, it)
            state.iter_num = it + 1
        if state.saved_iter != state.iter_num:
            self._save(state, LATEST)
        self._emit(Finished(state.iter_num, reason))

    def _emit(self, event: Event) -> None:
        """Record the event in metrics.jsonl, so a watcher in another process sees it too, then report it."""
        if self.state is not None and self.state.metrics is not None:  # open from training's start to run()'s end
            metrics.record_event(self.state.metrics, event)
        self.on_event(event)

    def _handle_requests(self, state: RunState) -> bool:
        """Serve save/sample requests and wait out a pause; True when the run should stop."""
        was_paused = False
        while True:
            if state.control is not None:
                state.control.poll()  # requests from control.json become the calls below
            with self._cond:
                stop = self._stop_requested or self.cancel.is_set()
                save, sample, paused = self._save_requested, self._sample_requested, self._paused
                self._save_requested = self._sample_requested = False
            # In a distributed run one rank's request (a Ctrl-C reaches each at its own moment) is everyone's.
            stop, save, sample, paused = distributed.agree([stop, save, sample, paused])
            if save:
                self._save(state, LATEST)
            if sample:
                self._emit_sample(state)
            if stop:
                return True
            if not paused:
                if was_paused:
                    self._emit(Resumed(state.iter_num))
                return False
            if not was_paused:
                self._emit(Paused(state.iter_num))
                was_paused = True
            with self._cond:  # (a rank paused only by another's request does not wait: agree() paces it)
                if self._paused and not (self._stop_requested or self._save_requested or self._sample_requested):
                    # Requests notify the condition; an external cancel Event cannot, so look twice a second.
                    self._cond.wait(timeout=0.5)

    def _step(self, state: RunState, it: int) -> None:
        """One optimizer step over gradient_accumulation_steps micro-batches."""
        cfg = state.config
        log = it % cfg.log_interval == 0 or it == cfg.max_iters - 1
        started = time.perf_counter()
        lr = get_lr(it, cfg)
        for group in state.optimizer.param_groups:
            group["lr"] = group_lr(group, lr, cfg)
        loss_sum = torch.zeros((), device=state.device)
        micro_steps = cfg.gradient_accumulation_steps // state.dist.world_size  # each rank its share
        for micro_step in range(micro_steps):
            if state.dist.enabled:  # as nanoGPT: DDP averages the gradients once, in the last backward pass
                state.train_model.require_backward_grad_sync = micro_step == micro_steps - 1
            x, y = state.batches.next()
            with state.autocast:
                _, loss = state.train_model(x, y)
                loss = loss / micro_steps
            state.batches.prefetch()  # as nanoGPT: on a GPU the copy overlaps the backward pass
            state.scaler.scale(loss).backward()
            loss_sum += loss.detach().float()
        state.nonfinite |= ~torch.isfinite(loss_sum)
        grad_norm = None
        if cfg.grad_clip or log:
            state.scaler.unscale_(state.optimizer)
            # max_norm inf measures without clipping when clipping is off
            grad_norm = torch.nn.utils.clip_grad_norm_(state.model.parameters(), cfg.grad_clip or math.inf)
            if not state.scaler.is_enabled():  # (with the scaler an inf norm is normal: it skips that step)
                state.nonfinite |= ~torch.isfinite(grad_norm)
        state.scaler.step(state.optimizer)
        state.scaler.update()
        state.optimizer.zero_grad(set_to_none=True)
        # The sync: the step's GPU work is done after it. Every rank logs the same steps: the mean is over all.
        loss_value = distributed.mean([loss_sum.item()])[0] if log else 0.0
        step_time = time.perf_counter() - started
        state.train_time += step_time
        state.unlogged_time += step_time
        state.unlogged_steps += 1
        if not log:
            return
        self._check_finite(state, it, loss_value)
        # The time since the last log covers every step since then, GPU work queued by unsynced steps too.
        interval, steps = state.unlogged_time, state.unlogged_steps
        state.unlogged_time, state.unlogged_steps = 0.0, 0
        tokens_seen = (it + 1) * cfg.tokens_per_iter
        elapsed = state.elapsed_before + state.train_time
        event = Step(
            iter=it, loss=loss_value, lr=lr, grad_norm=float(grad_norm),
            tokens_per_sec=steps * cfg.tokens_per_iter / max(interval, 1e-9),
            iter_ms=1000 * interval / steps, tokens_seen=tokens_seen, elapsed_s=elapsed,
        )
        state.history["steps"].append([it, loss_value, tokens_seen, elapsed])
        self._emit(event)

    def _check_finite(self, state: RunState, it: int, *losses: float) -> None:
        """Raise _NonFinite if one of `losses`, or any training loss so far, was NaN or infinite."""
        if all(math.isfinite(v) for v in losses) and not bool(state.nonfinite):
            return
        kept = state.run_dir / LATEST
        last = f" The last good checkpoint is kept: {kept}" if kept.exists() else ""
        raise _NonFinite(
            f"the loss or the weights became NaN or infinite by iteration {it}: training diverged. "
            f"Lower learning_rate (now {state.config.learning_rate}) or use grad_clip.{last}"
        )

    def _evaluate(self, state: RunState) -> None:
        it, cfg = state.iter_num, state.config
        started = time.perf_counter()
        # Re-seeded at every eval: each eval measures the same batches, and training's batches stay put.
        losses = estimate_loss(
            state.forward_model, state.data, cfg.block_size, cfg.batch_size, cfg.eval_iters, cfg.seed + 1,
            state.device, state.autocast, state.dist.rank, state.dist.world_size,
        )
        losses = dict(zip(losses, distributed.mean(list(losses.values())), strict=True))  # each rank measured its rows
        self._check_finite(state, it, losses["train"], losses["val"])
        improved = losses["val"] < state.best_val_loss
        state.best_val_loss = min(state.best_val_loss, losses["val"])
        state.last_eval = it
        state.history["evals"].append([it, losses["train"], losses["val"]])
        self._emit(Eval(it, losses["train"], losses["val"], state.best_val_loss, time.perf_counter() - started))
        if it > 0:  # an untrained model is not worth a file
            self._save(state, LATEST)
            if improved:
                self._save(state, BEST)

    def _emit_sample(self, state: RunState) -> None:
        """Generate sample_tokens tokens from an empty prompt (the sampler has its own RNG, not training's)."""
        if not state.dist.is_main:
            return
        config = SamplingConfig(max_new_tokens=state.config.sample_tokens, seed=state.config.seed + state.iter_num)
        text = "".join(piece.text for piece in generate(state.model, state.tokenizer, "", config, state.device))
        self._emit(Sample(state.iter_num, text))

    def _save(self, state: RunState, filename: str) -> None:
        """Write a checkpoint of the current state, unless the weights may hold NaNs. Rank 0 alone writes."""
        if not state.dist.is_main:
            return
        # Also look at the weights: a step whose gradients were not measured can still have broken them.
        state.nonfinite |= ~torch.stack([torch.isfinite(p).all() for p in state.model.parameters()]).all()
        self._check_finite(state, state.iter_num)
        rng = {"torch": torch.get_rng_state(), "batch": state.batches.generator_state()}
        if state.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(state.device)
        if state.device.type == "mps":  # dropout on MPS draws from its own generator
            rng["mps"] = torch.mps.get_rng_state()
        ckpt = {
            "model": state.model.state_dict(),
            "optimizer": state.optimizer.state_dict(),
            "model_args": dataclasses.asdict(state.model.config),
            "iter_num": state.iter_num,
            "best_val_loss": state.best_val_loss,
            "config": dataclasses.asdict(state.config),
            "tokenizer": state.info.tokenizer,
            "dataset": state.info.to_json(),
            "history": state.history,
            "rng": rng,
            "scaler": state.scaler.state_dict() if state.scaler.is_enabled() else None,
            "version": VERSION,
        }
        path = state.run_dir / filename
        save_checkpoint(path, ckpt)
        if filename == LATEST:
            state.saved_iter = state.iter_num
        self._emit(CheckpointSaved(state.iter_num, path, "best" if filename == BEST else "latest"))
