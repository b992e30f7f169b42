"""Checkpoints: atomic save, safe load (weights_only), nanoGPT import, lookup (listing: core.runs.listing).

A checkpoint is a `torch.save`d dict with nanoGPT's keys (`model`, `optimizer`, `model_args`,
`iter_num`, `best_val_loss`, `config`) plus `tokenizer` (spec), `dataset` (dataset.json contents),
`history`, `rng` (generator states, and a count of windows), `scaler` and `version`; see FORMATS.md. A nanoGPT `ckpt.pt`
(no `version`) is normalized on load into the same shape. `model_args["arch"]` names one of "Let's build
GPT"'s step models (core.model.ladder); without it the model is the GPT.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import typing
import zipfile
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import torch

from core.common import paths
from core.common.disk import DiskWriteError, disk_problem, write_atomic
from core.dataset.files import PASS_VOCABULARY, DatasetError, read_meta, tokenizer_from_meta
from core.dataset.format import META_FILE, DatasetInfo, load_dataset
from core.model.arch import UnknownArch
from core.model.gpt import GPT, ModelError
from core.model.ladder import LadderModel, build, config_class
from core.runs.files import LATEST
from core.settings.train_config import field_types
from core.tokens.bpe import KIND as BPE_KIND
from core.tokens.tokenizers import GPT2_SPEC, Tokenizer, TokenizerError, load_tokenizer

VERSION = 1


class CheckpointError(Exception):
    """A checkpoint that cannot be found, read, trusted or used."""


def save_checkpoint(path: str | os.PathLike[str], ckpt: dict[str, Any]) -> None:
    """Write `ckpt` to `path` atomically (core.common.disk.write_atomic): readers see the old file or the
    new one, never half of one. CheckpointError saying why when it cannot be written."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda file: torch.save(ckpt, file), what=f"save checkpoint {path.name}")
    except DiskWriteError as error:
        raise CheckpointError(str(error)) from error
    except Exception as error:
        problem = disk_problem(error, f"save checkpoint {path.name}", path.parent)  # (a failed mkdir)
        raise CheckpointError(str(problem) if problem else f"could not save checkpoint {path}: {error}") from error


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu", meta: str | None = None, mmap: bool = False
) -> dict[str, Any]:
    """Read a checkpoint safely (no code can run) and normalize it; `meta` is a nanoGPT meta.pkl."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file")
    try:
        open(path, "rb").close()  # unreadable (permissions) is said as such, not as a corrupt file
    except OSError as error:
        raise CheckpointError(f"cannot read {path}: {error.strerror or error}") from None
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
        raise CheckpointError(f"{path} {_what_it_is(path) or 'is not a readable checkpoint (corrupt file: not a torch pickle)'}") from None
    except Exception as error:  # garbage bytes break the unpickler in many ways (EOF, IndexError, ...)
        # torch's first sentence says what broke; the rest of its message is advice for programmers
        damage = f"is not a readable checkpoint (corrupt or truncated file): {_first_line(error).split('. ')[0]}"
        raise CheckpointError(f"{path} {_what_it_is(path) or damage}") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_args" not in ckpt:
        raise CheckpointError(f"{path} is a torch file but not a GPT checkpoint (no 'model' and 'model_args')")
    try:
        return checked_checkpoint(ckpt, path, meta)
    except CheckpointError as error:
        raise CheckpointError(f"{path} is not a usable GPT checkpoint: {error}") from None


def _what_it_is(path: Path) -> str | None:
    """What a file torch cannot read is when it is plainly something else (empty, text); None if it may
    be a damaged checkpoint."""
    try:
        with open(path, "rb") as file:
            head = file.read(4096)
    except OSError:
        return None
    if not head:
        return "is empty, not a PyTorch checkpoint"
    try:
        head.decode("utf-8")  # (a character cut at byte 4096 fails: then it is called corrupt, not text)
    except UnicodeDecodeError:
        return None
    return "is a text file, not a PyTorch checkpoint" if b"\0" not in head else None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _kind(value: Any) -> str:
    return f"{value!r:.40} (a {type(value).__name__})"


WANTED = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}


def _whole(value: Any, what: str) -> int:
    """A whole number >= 0 (a one-element tensor too: nanoGPT's values may be tensors)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CheckpointError(f"its {what} is {_kind(value)}, not {WANTED[int]}")
    return value


def _number(value: Any, what: str) -> float:
    """A float (an int or a one-element tensor too: nanoGPT saves best_val_loss as a tensor)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CheckpointError(f"its {what} is {_kind(value)}, not {WANTED[float]}")
    return float(value)


def _check_fields(values: dict[str, Any], types: Mapping[str, Any], what: str) -> None:
    """Each known key of `values` has its dataclass field's type (int, float, bool, str, str | None)."""
    for key, kind in types.items():
        if key not in values:
            continue
        value = values[key]
        ok = {int: isinstance(value, int) and not isinstance(value, bool),
              float: isinstance(value, (int, float)) and not isinstance(value, bool),
              bool: isinstance(value, bool), str: isinstance(value, str)}.get(kind, isinstance(value, (str, type(None))))
        if not ok:
            raise CheckpointError(f"its {what}'s {key} is {_kind(value)}, not {WANTED.get(kind, 'a string or None')}")


def _check_history(history: dict[str, Any]) -> None:
    for key, width in (("steps", 4), ("evals", 3)):
        rows = history.get(key)
        if not isinstance(rows, list) or not all(
            isinstance(row, (list, tuple)) and len(row) == width
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row)
            for row in rows
        ):
            raise CheckpointError(f"its history's {key} is not a list of rows of {width} numbers")


def _check_weights(ckpt: dict[str, Any]) -> None:
    """The weights are the ones the model its model_args describe has (a GPT, or a ladder step's model
    when they name one: core.model.arch), each of its shape."""
    args = ckpt["model_args"]
    try:
        _check_fields(args, typing.get_type_hints(config_class(args)), "model_args")
        with torch.device("meta"):  # shapes only: nothing is allocated
            expected = build(args).state_dict()
    except UnknownArch as error:
        raise CheckpointError(str(error)) from None
    except ModelError as error:
        raise CheckpointError(f"its model_args are impossible: {error}") from None
    weights = ckpt["model"]
    for key, tensor in expected.items():
        if key not in weights:
            raise CheckpointError(f"it lacks the weight {key} that its model_args need")
        if weights[key].shape != tensor.shape:
            raise CheckpointError(
                f"its weight {key} has shape {tuple(weights[key].shape)}, but its model_args need {tuple(tensor.shape)}"
            )
    extra = next((key for key in weights if key not in expected), None)
    if extra is not None:
        raise CheckpointError(f"it has a weight {extra} that a model with its model_args does not have")


def checked_checkpoint(ckpt: dict[str, Any], path: Path | None = None, meta: str | None = None) -> dict[str, Any]:
    """The checkpoint with nanoGPT's gaps filled in (clean weight names, a tokenizer, dataset, history,
    version) and every field its readers use checked: CheckpointError names the first that is wrong.

    The one place a checkpoint's contents are checked: listing, sampling, eval and resume all read
    checkpoints through load_checkpoint, which calls this.
    """
    for key in ("model", "model_args", "config", "tokenizer", "dataset", "history", "rng", "scaler", "optimizer"):
        may_be_none = key in ("rng", "scaler", "optimizer")
        if key in ckpt and not isinstance(ckpt[key], dict) and not (may_be_none and ckpt[key] is None):
            raise CheckpointError(f"its {key!r} is a {type(ckpt[key]).__name__}, not a dict")
    bad = next((k for k, v in ckpt["model"].items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise CheckpointError(f"its weight {bad!r} is not a tensor")
    prefix = "_orig_mod."  # added by torch.compile
    ckpt["model"] = {
        key.removeprefix(prefix): value
        for key, value in ckpt["model"].items()
        # old nanoGPT saved its causal mask buffer ("attn.bias"); it is not a weight
        if not key.endswith(".attn.bias")
    }
    ckpt["iter_num"] = _whole(ckpt.get("iter_num", 0), "iter_num")
    ckpt["best_val_loss"] = _number(ckpt.get("best_val_loss", float("inf")), "best_val_loss")
    config = ckpt.setdefault("config", {})
    _check_fields(config, field_types(), "config")
    if "tokenizer" not in ckpt:
        ckpt["tokenizer"] = _nanogpt_tokenizer(config.get("dataset"), path, meta)
    spec = ckpt["tokenizer"]
    if not (spec.get("kind") == "char" and isinstance(spec.get("chars"), list)
            or spec.get("kind") == "tiktoken" and isinstance(spec.get("name"), str)
            or spec.get("kind") == BPE_KIND and isinstance(spec.get("ranks"), list)):
        raise CheckpointError(f"its tokenizer {spec!r:.60} is neither a char vocabulary, a tiktoken name nor a learned BPE")
    ckpt.setdefault("dataset", {"name": str(config.get("dataset", "unknown"))})
    if not isinstance(ckpt["dataset"].get("name", ""), str):
        raise CheckpointError(f"its dataset name is {_kind(ckpt['dataset']['name'])}, not {WANTED[str]}")
    ckpt.setdefault("history", {"steps": [], "evals": []})
    _check_history(ckpt["history"])
    ckpt.setdefault("rng", None)
    if ckpt["rng"] is not None:
        if "batch_used" in ckpt["rng"]:  # the windows of a shuffled epoch drawn (core.dataset.batches)
            ckpt["rng"]["batch_used"] = _whole(ckpt["rng"]["batch_used"], "rng batch_used")
        if not all(isinstance(v, torch.Tensor) and v.dtype == torch.uint8 for k, v in ckpt["rng"].items() if k != "batch_used"):
            raise CheckpointError("its rng holds something other than generator states (byte tensors)")
    ckpt.setdefault("scaler", None)
    ckpt["version"] = _whole(ckpt.get("version", 0), "version")  # 0 = came from nanoGPT
    _check_weights(ckpt)
    return ckpt


def _nanogpt_tokenizer(dataset: str | None, path: Path | None, meta: str | None) -> dict[str, Any]:
    """nanoGPT's rule: the dataset's meta.pkl gives a char vocabulary, else the model is gpt2.

    Looked for in this order: `meta` (--meta), beside the checkpoint (where our nanoGPT export writes it,
    so an out_dir copied anywhere keeps its vocabulary), then nanoGPT's data/<dataset>/meta.pkl under the
    working folder (where nanoGPT's sample.py looks) and beside the out_dir.
    """
    candidates: list[Path] = []
    if meta:
        candidates.append(Path(meta).expanduser())
        if not candidates[0].is_file():
            raise CheckpointError(f"meta file {meta} does not exist")
    else:
        if path is not None:
            candidates.append(path.parent / META_FILE)
        if dataset:
            try:  # a name from the file: it must not lead out of data/
                paths.check_name(dataset, "dataset name in its config")
            except paths.BadName as error:
                raise CheckpointError(f"{error}; pass the dataset's meta.pkl (--meta) instead") from None
            candidates.append(Path("data") / dataset / META_FILE)
            if path is not None:  # nanoGPT's out_dir usually sits beside its data/ folder
                candidates.append(path.resolve().parent.parent / "data" / dataset / META_FILE)
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
    if not spec.endswith(".pt"):
        with contextlib.suppress(paths.BadName):  # a run name is a plain name; anything else is a path
            candidates.append(paths.run_dir(spec) / LATEST)
    candidates.append(given / LATEST)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = "\n  ".join(str(c) for c in candidates)
    raise CheckpointError(f"no checkpoint called {spec!r}; tried:\n  {tried}")


def training_dataset(ckpt: dict[str, Any]) -> DatasetInfo:
    """The dataset a checkpoint was trained on, with its tokenizer: the folder its settings name (what the
    trainer opened), else a dataset called by the name it records. DatasetError says what was tried."""
    tried: list[str] = []
    given, name = ckpt["config"].get("dataset"), ckpt["dataset"].get("name")
    for candidate in dict.fromkeys(c for c in (given, name) if c):  # (the same one once)
        try:
            info = load_dataset(candidate if candidate == given else paths.dataset_dir(candidate))
        except (DatasetError, paths.BadName) as error:
            tried.append(str(error))
            continue
        if info.tokenizer == ckpt["tokenizer"]:
            return info
        # (a nanoGPT checkpoint whose meta.pkl was not found is taken for GPT-2's: say how to give it)
        hint = f" ({PASS_VOCABULARY})" if ckpt["version"] == 0 else ""
        tried.append(f"dataset {candidate!r} has another tokenizer now{hint}")
    raise DatasetError("cannot find the dataset this checkpoint was trained on" + (f" ({'; '.join(tried)})" if tried else ""))


def build_model(ckpt: dict[str, Any]) -> GPT | LadderModel:
    """The checkpoint's model (a GPT, or the ladder step its model_args name) with its weights."""
    try:
        model = build(ckpt["model_args"])
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, TypeError, ValueError) as error:
        raise CheckpointError(f"the checkpoint's weights do not fit its model_args: {_first_line(error)}") from None
    return model


def load_model(
    path: str | os.PathLike[str], device: str | torch.device = "cpu", meta: str | None = None
) -> tuple[GPT | LadderModel, Tokenizer, dict[str, Any]]:
    """The model (in eval mode, on `device`), its tokenizer and the checkpoint dict."""
    ckpt = load_checkpoint(path, meta=meta)
    try:
        tokenizer = load_tokenizer(ckpt["tokenizer"])
    except TokenizerError as error:
        raise CheckpointError(f"{path}: its tokenizer cannot be built: {error}") from None
    model = build_model(ckpt).to(device)
    model.eval()
    return model, tokenizer, ckpt
