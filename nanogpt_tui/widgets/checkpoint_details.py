"""CheckpointDetails: the Checkpoints screen's pane for the selected checkpoint: settings, loss curve, a sample.

The screen calls `show(summary)` when the cursor rests on a row (or `show_none()` when there is none).
Reading a checkpoint imports torch, so its settings, history and sample come from a thread worker, which
posts DetailLoaded and SampleReady; an answer for a checkpoint no longer shown is dropped.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from core.common import paths
from core.runs import metrics
from core.runs.curves import with_recorded_lr
from core.settings.train_config import incompatible_knobs
from nanogpt_tui.widgets.loss_plot import LossPlot

if TYPE_CHECKING:
    from core.runs.listing import CheckpointSummary

SAMPLE_TOKENS = 200  # enough to judge a model: several lines of a char model, a paragraph of BPE
SAMPLE_SEED = 1337  # fixed, so the same checkpoint always shows the same sample


def describe_config(ckpt: dict[str, Any]) -> str:
    """The model's shape and the training settings of a loaded checkpoint, one `key=value` list each."""
    model = "  ".join(f"{k}={v}" for k, v in ckpt.get("model_args", {}).items())
    train = "  ".join(f"{k}={v}" for k, v in ckpt.get("config", {}).items())
    dataset = ckpt.get("dataset", {})
    # The recipe knobs are model_args (the architecture); an older checkpoint lacks them: nanoGPT's values.
    knobs = incompatible_knobs(ckpt.get("model_args", {}))
    lines = [
        f"model: {model}",
        f"dataset: {dataset.get('name', '?')}  ({dataset.get('train_tokens', '?')} train tokens)",
        f"training: {train or '(not recorded)'}",
        f"nanoGPT: cannot load this checkpoint (it uses {', '.join(knobs)})" if knobs
        else "nanoGPT: can load this checkpoint (its model.py, same weight names)",
    ]
    return "\n".join(lines)


class DetailLoaded(Message):
    """A checkpoint's settings and saved loss history."""

    def __init__(self, path: Path, config: str, history: dict[str, Any]) -> None:
        super().__init__()
        self.path = path
        self.config = config
        self.history = history


class SampleReady(Message):
    """A short sample from a checkpoint, or the reason there is none."""

    def __init__(self, path: Path, text: str, error: str | None = None) -> None:
        super().__init__()
        self.path = path
        self.text = text
        self.error = error


class CheckpointDetails(VerticalScroll):
    """The selected checkpoint's path and settings, its loss curve and a short sample."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The checkpoint whose details are on screen, and its file's time (a newer file is shown afresh).
        self._shown: tuple[str, datetime | None, str | None] | None = None  # path, modified, error: what is shown

    def compose(self) -> ComposeResult:
        yield Static("Loading checkpoints…", id="ckpt-info")
        yield LossPlot(title="loss", id="ckpt-plot")
        yield Static("", id="ckpt-sample")

    def show_none(self) -> None:
        self._shown = None
        self.query_one("#ckpt-info", Static).update(
            "No checkpoints yet. Train a model (f3), or press o to open a nanoGPT out_dir."
        )
        self.query_one("#ckpt-plot", LossPlot).display = False
        self.query_one("#ckpt-sample", Static).update("")

    def show(self, summary: CheckpointSummary) -> None:
        shown = (str(summary.path), summary.modified, summary.error)  # a run's error changes with its writer's life
        if shown == self._shown:
            return
        self._shown = shown
        info = self.query_one("#ckpt-info", Static)
        plot = self.query_one("#ckpt-plot", LossPlot)
        plot.clear()
        plot.display = not summary.error
        plot.show_dataset(str(summary.config.get("dataset") or summary.dataset) or None)  # its reference lines
        sample = self.query_one("#ckpt-sample", Static)
        if summary.error:
            info.update(Text.assemble((f"{paths.shown(summary.path)}\n\n", "bold"), (summary.error, "red")))
            sample.update("")
            return
        info.update(Text(f"{paths.shown(summary.path)}\n\nreading…"))
        sample.update(Text("generating a sample…", style="dim"))
        self.load_details(summary.path)

    @work(thread=True, exclusive=True, exit_on_error=False, group="checkpoints-detail")
    def load_details(self, path: Path) -> None:
        """Settings and history first (cheap), then a short sample from the model."""
        from core.inference.sampler import SamplingConfig, generate
        from core.runs.checkpoint import build_model, load_checkpoint
        from core.tokens.tokenizers import load_tokenizer

        worker = get_current_worker()
        try:
            ckpt = load_checkpoint(path, mmap=True)  # only what the details and the sample touch is read
        except Exception as error:
            self.post_message(SampleReady(path, "", str(error)))
            return
        if worker.is_cancelled:
            return
        history = with_recorded_lr(ckpt["history"], metrics.read_curves(path.parent))  # for the plot's lr curve
        self.post_message(DetailLoaded(path, describe_config(ckpt), history))
        if worker.is_cancelled:
            return  # another row is selected: its sample is wanted, not this one
        try:
            model, tokenizer = build_model(ckpt), load_tokenizer(ckpt["tokenizer"])
            config = SamplingConfig(max_new_tokens=SAMPLE_TOKENS, temperature=0.8, seed=SAMPLE_SEED)
            pieces = generate(model, tokenizer, "", config, cancel=worker.cancelled_event)
            text = "".join(piece.text for piece in pieces)
        except Exception as error:
            self.post_message(SampleReady(path, "", str(error)))
            return
        if not worker.is_cancelled:
            self.post_message(SampleReady(path, text))

    def showing(self, path: Path) -> bool:
        """Whether `path` is the checkpoint whose details are on screen (a worker's answer may be late)."""
        return self._shown is not None and self._shown[0] == str(path)

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        if not self.showing(message.path):
            return
        self.query_one("#ckpt-info", Static).update(Text.assemble((f"{paths.shown(message.path)}\n\n", "bold"), message.config))
        self.query_one("#ckpt-plot", LossPlot).load_history(message.history)

    def on_sample_ready(self, message: SampleReady) -> None:
        if not self.showing(message.path):
            return
        sample = self.query_one("#ckpt-sample", Static)
        if message.error:
            sample.update(Text(f"no sample: {message.error}", style="red"))
        else:
            sample.update(Text.assemble(("sample (seed %d):\n" % SAMPLE_SEED, "bold"), message.text))
