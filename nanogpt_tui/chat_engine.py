"""The model the Chat screen talks to: loaded from a checkpoint, with the version of the file it came from.

`load_engine` imports torch: call it from thread workers only. The file's stat signature at loading
time lets the screen notice when the checkpoint changes on disk (a run still training saves over it)
and load it again, so the model that answers is the one the label names.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.common.formatting import human_count
from core.tokens.tokenizers import tokenizer_name
from nanogpt_tui.listings import file_signature


@dataclass(frozen=True, eq=False)  # two engines are the same only if they are one object
class Engine:
    """A loaded model and what the info line says about it."""

    path: Path
    precision: str  # the one asked for (auto, or a precision's name)
    signature: tuple[int, int, int] | None  # of the file, taken before it was read
    model: Any
    tokenizer: Any
    device: Any
    iter_num: int
    facts: str  # params, tokenizer, block: what does not change with the file's name
    chosen: str = ""  # the precision the weights are in (what auto chose), when it differs from `precision`'s name
    note: str = ""  # auto: what it chose and why

    @property
    def description(self) -> str:
        precision = f"auto: {self.chosen}" if self.chosen and self.chosen != self.precision else self.precision
        return f"{self.path.parent.name}/{self.path.name}: {self.facts}, {self.iter_num:,} iters, {precision} on {self.device}"

    def moved_to(self, path: Path) -> Engine:
        """The same model, its file renamed (a run renamed on the Checkpoints screen)."""
        return replace(self, path=path)

    def is_stale(self) -> bool:
        """Whether the file now differs from the one loaded (a missing file is not: nothing newer to load)."""
        now = file_signature(self.path)
        return now is not None and now != self.signature


def load_engine(path: Path, precision: str) -> Engine:
    """Load `path` on the best device, its Linear weights at `precision` (auto: the fastest that holds, timed here)."""
    from core.common.devices import resolve_device
    from core.inference.auto_precision import at_precision
    from core.runs.checkpoint import load_model

    signature = file_signature(path)
    device = resolve_device("auto")
    model, tokenizer, ckpt = load_model(path, device)
    n_params = model.get_num_params()  # counted as nanoGPT does, whatever the knobs (an untied head too)
    model, chosen, note = at_precision(model, precision, tokenizer, ckpt, device)
    facts = (
        f"{human_count(n_params)} params, {tokenizer_name(ckpt['tokenizer'])} tokens, "
        f"block {model.config.block_size}"
    )
    return Engine(path, precision, signature, model, tokenizer, device, int(ckpt["iter_num"]), facts, chosen, note)
