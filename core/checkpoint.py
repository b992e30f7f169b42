"""Checkpoints: atomic save, safe load (weights_only), nanoGPT import, lookup and listing.

A checkpoint is a `torch.save`d dict with nanoGPT's keys (`model`, `optimizer`, `model_args`,
`iter_num`, `best_val_loss`, `config`) plus `tokenizer` (spec), `dataset` (dataset.json contents),
`history`, `rng` (tensors only), `scaler` and `version`; see DEVELOPERS.md. A nanoGPT `ckpt.pt`
(no `version`) is normalized on load into the same shape.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import re
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from core import paths
from core.dataset import DatasetError, read_meta, tokenizer_from_meta
from core.disk import is_disk_full, no_space_message
from core.metrics import METRICS_FILE
from core.model import GPT, GPTConfig
from core.run_lock import holder, remove_leftovers
from core.tokenizers import GPT2_SPEC, Tokenizer, TokenizerError, load_tokenizer, tokenizer_name

VERSION = 1
LATEST = "ckpt.pt"  # nanoGPT's name, so a run folder is also a nanoGPT out_dir
BEST = "best.pt"


class CheckpointError(Exception):
    """A checkpoint that cannot be found, read, trusted or used."""


def save_checkpoint(path: str | os.PathLike[str], ckpt: dict[str, Any]) -> None:
    """Write `ckpt` to `path` atomically: readers see the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            torch.save(ckpt, file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if is_disk_full(error):
            raise CheckpointError(no_space_message(f"save checkpoint {path.name}", path.parent)) from error
        if isinstance(error, Exception):
            raise CheckpointError(f"could not save checkpoint {path}: {error}") from error
        raise


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu", meta: str | None = None, mmap: bool = False
) -> dict[str, Any]:
    """Read a checkpoint safely (no code can run) and normalize it; `meta` is a nanoGPT meta.pkl."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file")
    # Only torch's zip format can be memory-mapped; anything else (old format, garbage) is read whole,
    # so a corrupt file gets torch's real complaint rather than one about mmap.
    mmap = mmap and zipfile.is_zipfile(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        # torch's safe unpickler names the forbidden callable ("GLOBAL posix.system") when it refuses one;
        # other unpickling errors (an unknown opcode) mean the bytes are not a pickle at all.
        message = str(error)
        if re.search("global|allowlist", message, re.IGNORECASE):
            culprit = re.search(r"GLOBAL (\S+)", message)
            what = f" ({culprit.group(1)})" if culprit else ""
            raise CheckpointError(
                f"refused to load {path}: it holds Python objects that could run code when loaded{what}, "
                "not just tensors and plain data. Only checkpoints saved by nanoGPT or this program load."
            ) from None
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupt file: not a torch pickle)") from None
    except Exception as error:  # garbage bytes break the unpickler in many ways (EOF, IndexError, ...)
        raise CheckpointError(
            f"{path} is not a readable checkpoint (corrupt or truncated file): {_first_line(error)}"
        ) from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_args" not in ckpt:
        raise CheckpointError(f"{path} is a torch file but not a GPT checkpoint (no 'model' and 'model_args')")
    _check_shape(ckpt, path)
    return normalize_checkpoint(ckpt, path, meta)


def _check_shape(ckpt: dict[str, Any], path: Path) -> None:
    """CheckpointError unless the parts normalize_checkpoint and its users read have the right types."""
    for key in ("model", "model_args", "config", "tokenizer", "dataset", "history"):
        if key in ckpt and not isinstance(ckpt[key], dict):
            raise CheckpointError(
                f"{path} is not a usable GPT checkpoint: its {key!r} is a {type(ckpt[key]).__name__}, not a dict"
            )
    bad = next((k for k, v in ckpt["model"].items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise CheckpointError(f"{path} is not a usable GPT checkpoint: its weight {bad!r} is not a tensor")


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def normalize_checkpoint(ckpt: dict[str, Any], path: Path | None = None, meta: str | None = None) -> dict[str, Any]:
    """Give a nanoGPT checkpoint our keys: clean weight names, a tokenizer, dataset, history, version."""
    prefix = "_orig_mod."  # added by torch.compile
    ckpt["model"] = {
        key.removeprefix(prefix): value
        for key, value in ckpt["model"].items()
        # old nanoGPT saved its causal mask buffer ("attn.bias"); it is not a weight
        if not key.endswith(".attn.bias")
    }
    ckpt["iter_num"] = int(ckpt.get("iter_num", 0))
    best = ckpt.get("best_val_loss", float("inf"))
    ckpt["best_val_loss"] = float(best.item() if isinstance(best, torch.Tensor) else best)
    config = ckpt.setdefault("config", {})
    if "tokenizer" not in ckpt:
        ckpt["tokenizer"] = _nanogpt_tokenizer(config.get("dataset"), path, meta)
    ckpt.setdefault("dataset", {"name": str(config.get("dataset", "unknown"))})
    ckpt.setdefault("history", {"steps": [], "evals": []})
    ckpt.setdefault("rng", None)
    ckpt.setdefault("scaler", None)
    ckpt.setdefault("version", 0)  # 0 = came from nanoGPT
    return ckpt


def _nanogpt_tokenizer(dataset: str | None, path: Path | None, meta: str | None) -> dict[str, Any]:
    """nanoGPT's rule: the dataset's meta.pkl gives a char vocabulary, else the model is gpt2."""
    candidates: list[Path] = []
    if meta:
        candidates.append(Path(meta).expanduser())
        if not candidates[0].is_file():
            raise CheckpointError(f"meta file {meta} does not exist")
    elif dataset:
        candidates.append(Path("data") / dataset / "meta.pkl")
        if path is not None:  # nanoGPT's out_dir usually sits beside its data/ folder
            candidates.append(path.resolve().parent.parent / "data" / dataset / "meta.pkl")
    for candidate in candidates:
        if candidate.is_file():
            try:
                return tokenizer_from_meta(read_meta(candidate), candidate).to_dict()
            except (DatasetError, TokenizerError) as error:
                raise CheckpointError(f"cannot use {candidate}: {error}") from None
    return dict(GPT2_SPEC)


def resolve_checkpoint(spec: str | os.PathLike[str], meta: str | None = None) -> Path:
    """A checkpoint file from a run name, a file path, or a folder holding ckpt.pt (nanoGPT's out_dir)."""
    spec = os.fspath(spec)
    if meta and not Path(meta).expanduser().is_file():
        raise CheckpointError(f"meta file {meta} does not exist")
    given = Path(spec).expanduser()
    candidates = [given]
    if spec and os.sep not in spec and not spec.endswith(".pt"):
        candidates.append(paths.runs_dir() / spec / LATEST)
    candidates.append(given / LATEST)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = "\n  ".join(str(c) for c in candidates)
    raise CheckpointError(f"no checkpoint called {spec!r}; tried:\n  {tried}")


@dataclass
class CheckpointSummary:
    name: str  # the run's folder name
    path: Path
    run_dir: Path
    dataset: str = ""
    tokenizer: str = ""
    n_params: int = 0
    iter_num: int = 0
    best_val_loss: float = float("inf")
    size_bytes: int = 0
    modified: datetime | None = None
    kind: str = "latest"  # "latest", "best", "nanogpt", or "none" for a run folder without a checkpoint
    error: str | None = None


def count_params(state: dict[str, torch.Tensor], tied: bool = True) -> int:
    """Parameters in a state dict, counted like GPT.get_num_params(): a tied head once, no positions.

    `tied` is False for a model with `untie_head`: its lm_head.weight is a parameter of its own."""
    total = sum(t.numel() for key, t in state.items() if key != "transformer.wpe.weight")
    head, wte = state.get("lm_head.weight"), state.get("transformer.wte.weight")
    if tied and head is not None and wte is not None and head.shape == wte.shape:
        total -= head.numel()
    return total


def summarize(path: Path, kind: str) -> CheckpointSummary:
    """One checkpoint's summary; a file that cannot be read gives a summary with `error` set."""
    stat = path.stat()
    summary = CheckpointSummary(
        name=path.parent.name, path=path, run_dir=path.parent, kind=kind,
        size_bytes=stat.st_size, modified=datetime.fromtimestamp(stat.st_mtime),
    )
    try:
        # mmap reads only what the summary needs, not every weight
        ckpt = load_checkpoint(path, mmap=True)
    except CheckpointError as error:
        summary.error = str(error)
        return summary
    summary.dataset = str(ckpt["dataset"].get("name", ""))
    summary.tokenizer = tokenizer_name(ckpt["tokenizer"])
    summary.n_params = count_params(ckpt["model"], tied=not ckpt["model_args"].get("untie_head", False))
    summary.iter_num = ckpt["iter_num"]
    summary.best_val_loss = ckpt["best_val_loss"]
    if ckpt["version"] == 0:
        summary.kind = "nanogpt"
    return summary


def unsaved_run(run_dir: Path) -> CheckpointSummary:
    """The summary of a run folder without a checkpoint: training stopped (or is still) before its first save."""
    pid = holder(run_dir)
    why = (f"no checkpoint yet: process {pid} is training it" if pid else
           f"no checkpoint: training stopped before its first save. Start it again with "
           f"`nanogpt-tui train --name {run_dir.name}` (or from the Train screen), or delete the folder")
    modified = datetime.fromtimestamp(run_dir.stat().st_mtime) if run_dir.exists() else None
    return CheckpointSummary(name=run_dir.name, path=run_dir / LATEST, run_dir=run_dir, kind="none",
                             modified=modified, error=why)


def list_checkpoints(runs_root: str | os.PathLike[str] | None = None) -> list[CheckpointSummary]:
    """Every run's latest and best checkpoints (or that a started run has none), newest first; never
    raises for one bad file. Temporary files that killed writers left in a run folder are removed on the way."""
    root = Path(runs_root) if runs_root is not None else paths.runs_dir()
    if not root.is_dir():
        return []
    summaries = []
    for run in sorted(p for p in root.iterdir() if p.is_dir()):
        remove_leftovers(run)
        found = [(run / filename, kind) for filename, kind in ((LATEST, "latest"), (BEST, "best")) if (run / filename).is_file()]
        summaries += [summarize(path, kind) for path, kind in found]
        if not found and (run / METRICS_FILE).is_file():  # a run that started but never saved
            summaries.append(unsaved_run(run))
    return sorted(summaries, key=lambda s: s.modified or datetime.min, reverse=True)


def build_model(ckpt: dict[str, Any]) -> GPT:
    """A GPT with the checkpoint's architecture and weights."""
    known = {f.name for f in dataclasses.fields(GPTConfig)}
    args = {k: v for k, v in ckpt["model_args"].items() if k in known}
    try:
        model = GPT(GPTConfig(**args))
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, TypeError, ValueError) as error:
        raise CheckpointError(f"the checkpoint's weights do not fit its model_args: {_first_line(error)}") from None
    return model


def load_model(
    path: str | os.PathLike[str], device: str | torch.device = "cpu", meta: str | None = None
) -> tuple[GPT, Tokenizer, dict[str, Any]]:
    """The model (in eval mode, on `device`), its tokenizer and the checkpoint dict."""
    ckpt = load_checkpoint(path, meta=meta)
    try:
        tokenizer = load_tokenizer(ckpt["tokenizer"])
    except TokenizerError as error:
        raise CheckpointError(f"{path}: its tokenizer cannot be built: {error}") from None
    model = build_model(ckpt).to(device)
    model.eval()
    return model, tokenizer, ckpt
