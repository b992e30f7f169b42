"""GPT-2 weights in and out: Hugging Face's GPT-2 folder layout, and nanoGPT's ckpt.pt.

A Hugging Face GPT-2 folder (a downloaded gpt2, gpt2-medium, gpt2-large or gpt2-xl) holds
`config.json` and `model.safetensors`. GPT2LMHeadModel keeps its attention and MLP matrices in
Conv1D modules, whose weight is (in, out): the transpose of nn.Linear's (out, in), so c_attn, c_proj
and c_fc are transposed on the way in and out, as nanoGPT's GPT.from_pretrained does. The hub's
original GPT-2 files name their tensors without the `transformer.` prefix and carry causal-mask
buffers (`attn.bias`, `attn.masked_bias`); newer saves have the prefix and no buffers: both load.
lm_head is wte (tied), so it is never stored.

GELU: GPT-2 was trained with tanh-approximated GELU ("gelu_new"); core.model.gpt has exact GELU, as
nanoGPT has when it loads GPT-2, so its logits differ from GPT2LMHeadModel's in the third decimal.
An export says "gelu" (exact): GPT2LMHeadModel then computes exactly this model's math.

A folder holding nanoGPT's `meta.pkl` has that character vocabulary (our export of a char run writes
one); any other folder has GPT-2's tokenizer.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from core.common.disk import write_atomic
from core.dataset.format import META_FILE, DatasetError, char_meta, read_meta, tokenizer_from_meta
from core.interop.gpt2_files import (
    FORMATS,
    HF_CONFIG,
    HF_WEIGHTS,
    export_refusals,
    find_hf_folder,
)
from core.model.gpt import GPT, GPTConfig
from core.runs.checkpoint import CheckpointError, build_model, load_checkpoint, resolve_checkpoint, save_checkpoint
from core.settings.train_config import TrainConfig, incompatible_knobs
from core.tokens.tokenizers import GPT2_SPEC, CharTokenizer, TokenizerError

NANOGPT_CKPT = "ckpt.pt"
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
HF_BUFFERS = (".attn.bias", ".attn.masked_bias")  # causal masks in old GPT-2 files, not weights
NANOGPT_MODEL_ARGS = ("n_layer", "n_head", "n_embd", "block_size", "bias", "vocab_size", "dropout")
GELUS = ("gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh")  # exact GELU or its tanh approximation
GPT2_EOT = 50256  # <|endoftext|>


class ExportExists(CheckpointError):
    """An export would replace files that are already there."""

    def __init__(self, folder: Path, names: list[str]) -> None:
        super().__init__(f"{folder} already holds {', '.join(names)}")
        self.folder = folder
        self.names = names


def resolve_hf_folder(spec: str | os.PathLike[str]) -> Path:
    """The Hugging Face folder `spec` names (core.interop.gpt2_files.find_hf_folder), or a CheckpointError why not."""
    found = find_hf_folder(spec)
    if isinstance(found, str):
        raise CheckpointError(found)
    return found


def read_hf_config(folder: Path) -> GPTConfig:
    """The model shape a GPT-2 config.json describes (block_size = n_positions); refuses what core.model.gpt lacks."""
    path = folder / HF_CONFIG
    try:
        hf = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not a readable JSON file: {error}") from None
    if not isinstance(hf, dict):
        raise CheckpointError(f"{path} does not hold a JSON object")
    if hf.get("model_type", "gpt2") != "gpt2":
        raise CheckpointError(f"{path} describes a {hf['model_type']!r} model; only GPT-2 (model_type gpt2) loads")
    positions = hf.get("n_positions", hf.get("n_ctx"))
    shape = {"n_layer": hf.get("n_layer"), "n_head": hf.get("n_head"), "n_embd": hf.get("n_embd"),
             "vocab_size": hf.get("vocab_size"), "block_size": positions}
    bad = [f"{k}={v!r}" for k, v in shape.items() if not isinstance(v, int) or isinstance(v, bool) or v < 1]
    if bad:
        raise CheckpointError(f"{path} lacks a positive whole number for {', '.join(bad)} (block_size is n_positions)")
    if shape["n_embd"] % shape["n_head"]:
        raise CheckpointError(f"{path}: n_embd ({shape['n_embd']}) is not a multiple of n_head ({shape['n_head']})")
    unsupported = []
    if hf.get("activation_function", "gelu_new") not in GELUS:
        unsupported.append(f"activation_function {hf['activation_function']!r} (only GELU)")
    if hf.get("n_inner") not in (None, 4 * shape["n_embd"]):
        unsupported.append(f"n_inner {hf['n_inner']} (the MLP is 4 x n_embd wide)")
    eps = hf.get("layer_norm_epsilon", 1e-5)
    if not isinstance(eps, (int, float)) or abs(eps - 1e-5) > 1e-9:
        unsupported.append(f"layer_norm_epsilon {hf['layer_norm_epsilon']} (it is 1e-5)")
    for flag, plain in (("scale_attn_by_inverse_layer_idx", False), ("scale_attn_weights", True),
                        ("tie_word_embeddings", True)):
        if hf.get(flag, plain) != plain:
            unsupported.append(f"{flag} {hf[flag]}")
    if unsupported:
        raise CheckpointError(f"{path}: this GPT-2 variant does not load here: {'; '.join(unsupported)}")
    return GPTConfig(**shape, bias=True)


def folder_tokenizer(folder: Path) -> dict[str, Any]:
    """The tokenizer spec of a Hugging Face folder: its meta.pkl's characters, else GPT-2's."""
    meta = folder / META_FILE
    if not meta.is_file():
        return dict(GPT2_SPEC)
    try:
        return tokenizer_from_meta(read_meta(meta), meta).to_dict()
    except (DatasetError, TokenizerError) as error:
        raise CheckpointError(f"cannot use {meta}: {error}") from None


def load_hf_gpt2(spec: str | os.PathLike[str], block_size: int | None = None, dropout: float = 0.0) -> GPT:
    """A GPT holding the weights of a Hugging Face GPT-2 folder, its positions cropped to `block_size`."""
    folder = resolve_hf_folder(spec)
    config = read_hf_config(folder)
    if block_size is not None and block_size > config.block_size:
        raise CheckpointError(f"block_size {block_size} exceeds the {config.block_size} positions of {folder}")
    path = folder / HF_WEIGHTS
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file: {error}") from None
    state = {}
    for key, tensor in tensors.items():
        name = key.removeprefix("transformer.")
        if name.endswith(HF_BUFFERS) or name == "lm_head.weight":  # masks; the head is wte (tied)
            continue
        tensor = tensor.float()
        state[f"transformer.{name}"] = tensor.t() if name.endswith(CONV1D) else tensor
    keep = block_size or config.block_size
    if "transformer.wpe.weight" in state:  # cropping keeps the first positions, like nanoGPT's crop_block_size
        state["transformer.wpe.weight"] = state["transformer.wpe.weight"][:keep]
    config = dataclasses.replace(config, block_size=keep, dropout=dropout)
    model = GPT(config)
    expected = {k: v.shape for k, v in model.state_dict().items() if k != "lm_head.weight"}
    problems = [f"missing {k}" for k in expected if k not in state]
    problems += [f"unexpected {k}" for k in state if k not in expected]
    problems += [f"{k} is {tuple(state[k].shape)}, not {tuple(shape)}"
                 for k, shape in expected.items() if k in state and state[k].shape != shape]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise CheckpointError(f"{path} does not match its {HF_CONFIG}: {'; '.join(problems[:3])}{more}")
    state["lm_head.weight"] = state["transformer.wte.weight"]
    model.load_state_dict(state)
    return model


def init_from(config: TrainConfig, dataset_tokenizer: dict[str, Any], vocab_size: int) -> tuple[GPT, TrainConfig]:
    """The model `config.init_from` names, at config's block_size and dropout, and config with its shape.

    The dataset must use the folder's tokenizer: its token ids are the rows of the embedding."""
    assert config.init_from
    folder = resolve_hf_folder(config.init_from)
    wanted = folder_tokenizer(folder)
    if dataset_tokenizer != wanted:
        used = dataset_tokenizer.get("name", dataset_tokenizer.get("kind"))
        if wanted == GPT2_SPEC:
            fix = "prepare the text with GPT-2's tokenizer (gpt2 on the Data screen, or `prepare ... --tokenizer gpt2`)"
            kind = "GPT-2's BPE (gpt2)"
        else:
            fix = "train on a dataset with that vocabulary (the one the model was exported from)"
            kind = "the character vocabulary of its meta.pkl"
        raise CheckpointError(f"{folder} expects text tokenized with {kind}, but dataset {config.dataset!r} "
                              f"uses {used}: {fix}")
    model = load_hf_gpt2(folder, config.block_size, config.dropout)
    shape = model.config
    if shape.vocab_size < vocab_size:
        raise CheckpointError(f"{folder} has {shape.vocab_size} token embeddings, fewer than the {vocab_size} "
                              f"tokens of dataset {config.dataset!r}")
    return model, dataclasses.replace(config, n_layer=shape.n_layer, n_head=shape.n_head, n_embd=shape.n_embd, bias=True)


# -- export ------------------------------------------------------------------------------------------


def _check_exportable(ckpt: dict[str, Any], path: Path, fmt: str) -> None:
    refused = export_refusals(incompatible_knobs(ckpt["model_args"])).get(fmt)
    if refused:
        raise CheckpointError(f"{path} cannot be exported as {fmt}: {refused} (only runs with the modern recipe knobs off export)")


def _write_meta(tokenizer: dict[str, Any], folder: Path) -> Path | None:
    """nanoGPT's meta.pkl for a character vocabulary (nothing for GPT-2's BPE)."""
    if tokenizer.get("kind") != "char":
        return None
    meta = char_meta(CharTokenizer(tokenizer["chars"]))
    path = folder / META_FILE
    write_atomic(path, lambda tmp: tmp.write_bytes(pickle.dumps(meta)))
    return path


def export_nanogpt(ckpt: dict[str, Any], folder: Path) -> list[Path]:
    """nanoGPT's ckpt.pt (and a char run's meta.pkl) in `folder`: loads in nanoGPT's sample.py and train.py."""
    out = {
        "model": ckpt["model"],  # our weight names are nanoGPT's
        "model_args": {k: ckpt["model_args"][k] for k in NANOGPT_MODEL_ARGS},  # its GPTConfig takes no others
        "iter_num": ckpt["iter_num"],
        "best_val_loss": ckpt["best_val_loss"],
        # sample.py looks for data/<config['dataset']>/meta.pkl
        "config": {**ckpt["config"], "dataset": str(ckpt["dataset"].get("name", ckpt["config"].get("dataset", "")))},
        "tokenizer": ckpt["tokenizer"],  # nanoGPT ignores it; this program reads the vocabulary from it
    }
    groups = (ckpt.get("optimizer") or {}).get("param_groups", [])
    if groups and not any(group.get("muon") for group in groups):
        out["optimizer"] = ckpt["optimizer"]  # nanoGPT's AdamW groups, so its train.py can resume
    written = [folder / NANOGPT_CKPT]
    save_checkpoint(written[0], out)
    meta = _write_meta(ckpt["tokenizer"], folder)
    return written + ([meta] if meta else [])


def hf_tensors(model: GPT) -> dict[str, torch.Tensor]:
    """The model's weights under GPT2LMHeadModel's names, Conv1D matrices transposed, the tied head left out."""
    return {
        name: (tensor.t() if name.endswith(CONV1D) else tensor).contiguous().clone()
        for name, tensor in model.state_dict().items()
        if name != "lm_head.weight"
    }


def hf_config(config: GPTConfig, tokenizer: dict[str, Any]) -> dict[str, Any]:
    """GPT2LMHeadModel's config.json for this shape; exact GELU (see the module docstring)."""
    eot = GPT2_EOT if tokenizer == GPT2_SPEC else None
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "vocab_size": config.vocab_size, "n_positions": config.block_size, "n_ctx": config.block_size,
        "n_embd": config.n_embd, "n_layer": config.n_layer, "n_head": config.n_head, "n_inner": None,
        "activation_function": "gelu", "layer_norm_epsilon": 1e-5, "initializer_range": 0.02,
        "resid_pdrop": config.dropout, "embd_pdrop": config.dropout, "attn_pdrop": config.dropout,
        "scale_attn_weights": True, "tie_word_embeddings": True, "bos_token_id": eot, "eos_token_id": eot,
        "torch_dtype": "float32",
    }


def export_hf(ckpt: dict[str, Any], folder: Path) -> list[Path]:
    """model.safetensors + config.json (and a char run's meta.pkl) in `folder`, loadable by GPT2LMHeadModel."""
    model = build_model(ckpt)
    if not model.config.bias:  # GPT-2 has biases everywhere: zeros compute the same
        with_bias = GPT(dataclasses.replace(model.config, bias=True))
        missing = with_bias.load_state_dict(model.state_dict(), strict=False).missing_keys
        assert all(key.endswith(".bias") for key in missing), missing
        for key in missing:
            with_bias.get_parameter(key).data.zero_()
        model = with_bias
    weights, config = folder / HF_WEIGHTS, folder / HF_CONFIG
    write_atomic(weights, lambda tmp: save_file(hf_tensors(model), str(tmp), metadata={"format": "pt"}))
    text = json.dumps(hf_config(model.config, ckpt["tokenizer"]), indent=2) + "\n"
    write_atomic(config, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    meta = _write_meta(ckpt["tokenizer"], folder)
    return [weights, config] + ([meta] if meta else [])


@dataclasses.dataclass
class Exported:
    """What an export wrote, and what the user should know about its vocabulary."""

    files: list[Path]
    note: str


def export_note(tokenizer: dict[str, Any], fmt: str, dataset: str) -> str:
    """What a user should know about the exported vocabulary."""
    if tokenizer.get("kind") != "char":
        return "The tokenizer is GPT-2's BPE (in transformers: AutoTokenizer.from_pretrained('gpt2'))."
    if fmt == "nanogpt":
        return (f"A character-level vocabulary, in meta.pkl: nanoGPT's sample.py reads it from "
                f"data/{dataset}/meta.pkl.")
    return ("A character-level vocabulary, not GPT-2's tokenizer: meta.pkl holds it (nanoGPT's itos/stoi); "
            "a GPT-2 tokenizer would give the wrong ids.")


def export_checkpoint(spec: str | os.PathLike[str], fmt: str, folder: str | os.PathLike[str],
                      overwrite: bool = False) -> Exported:
    """Export checkpoint `spec` (a run, folder or file) as `fmt` ("nanogpt" or "hf") into `folder`."""
    if fmt not in FORMATS:
        raise CheckpointError(f"unknown export format {fmt!r}: choose {' or '.join(FORMATS)}")
    path = resolve_checkpoint(spec)
    ckpt = load_checkpoint(path)
    _check_exportable(ckpt, path, fmt)
    out = Path(folder).expanduser()
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"{out} is a file: export into a folder")
    names = [NANOGPT_CKPT] if fmt == "nanogpt" else [HF_WEIGHTS, HF_CONFIG]
    if ckpt["tokenizer"].get("kind") == "char":
        names.append(META_FILE)
    existing = [name for name in names if (out / name).exists()]
    if existing and not overwrite:
        raise ExportExists(out, existing)
    try:
        out.mkdir(parents=True, exist_ok=True)
        files = export_nanogpt(ckpt, out) if fmt == "nanogpt" else export_hf(ckpt, out)
    except OSError as error:
        raise CheckpointError(f"could not export into {out}: {error}") from None
    dataset = str(ckpt["dataset"].get("name", ""))
    return Exported(files, export_note(ckpt["tokenizer"], fmt, dataset))
