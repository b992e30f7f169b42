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
one), one holding `nanogpt_tokenizer.json` that learned BPE's spec (our export of a learned-BPE run
writes one); any other folder has GPT-2's tokenizer. An export also writes the run's tokenizer in Hugging
Face's format (core.interop.hf_tokenizer), so transformers' pipeline loads the folder whole.

A folder is input from anywhere: config.json is read through core.common.safe_files (a link to a regular
file is followed: the hub's cache is links) and checked (its shape within the training settings'
ranges, finite numbers); the weights' names, shapes and dtypes (F32, F16, BF16) are read from the
safetensors header and checked before anything is built or loaded (`init_from_shape` lets the trainer
check memory from the folder's shape first). Exports are written with core.common.disk.write_atomic.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors

from core.common.disk import disk_problem, write_bytes_atomic, write_text_atomic
from core.common.safe_files import BadJSON, UnsafeFile, open_regular, parse_json, read_json_object
from core.dataset.format import META_FILE, DatasetError, char_meta, read_meta, tokenizer_from_meta
from core.interop.gpt2_files import FORMATS, HF_CONFIG, HF_WEIGHTS, export_caveat, export_refusals, find_hf_folder
from core.interop.hf_tokenizer import TOKENIZER_CONFIG, TOKENIZER_JSON, tokenizer_files
from core.model.arch import is_ladder
from core.model.gpt import GPT, GPTConfig
from core.runs.checkpoint import CheckpointError, build_model, load_checkpoint, resolve_checkpoint, save_checkpoint
from core.settings.train_config import INT_RANGES, TrainConfig, incompatible_knobs
from core.tokens.bpe import ENDOFTEXT
from core.tokens.bpe import KIND as BPE_KIND
from core.tokens.tokenizers import GPT2_SPEC, CharTokenizer, TokenizerError, load_tokenizer, tokenizer_name

NANOGPT_CKPT = "ckpt.pt"
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
HF_BUFFERS = (".attn.bias", ".attn.masked_bias")  # causal masks in old GPT-2 files, not weights
NANOGPT_MODEL_ARGS = ("n_layer", "n_head", "n_embd", "block_size", "bias", "vocab_size", "dropout")
GELUS = ("gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh")  # exact GELU or its tanh approximation
GPT2_EOT = 50256  # <|endoftext|>
SPEC_FILE = "nanogpt_tokenizer.json"  # a learned BPE's spec (core.tokens.bpe) in a Hugging Face export
MAX_SPEC_BYTES = 16 * 2**20  # a learned BPE of 65,536 tokens is about 1 MB as JSON
HF_DTYPES = ("F32", "F16", "BF16")  # the weights' dtypes that load (as float32)
MAX_HF_CONFIG_BYTES = 2**20  # GPT-2's config.json is under 1 kB
MAX_HEADER_BYTES = 100 * 2**20  # safetensors' own limit on a header
MAX_VOCAB = 2**32  # token ids a dataset can hold (uint32)


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
    """The model shape a GPT-2 config.json describes (block_size = n_positions); refuses what core.model.gpt
    lacks, and a shape outside the training settings' ranges. The file is read through
    core.common.safe_files (a regular file of at most MAX_HF_CONFIG_BYTES, JSON nested at most MAX_DEPTH);
    a link to one is followed, as the hub's cache folders are links."""
    path = folder / HF_CONFIG
    try:
        hf = read_json_object(path, MAX_HF_CONFIG_BYTES, follow_links=True)
    except OSError as error:  # UnsafeFile names the file; a permission error does not
        raise CheckpointError(str(error) if isinstance(error, UnsafeFile) else f"cannot read {path}: {error.strerror}") from None
    if hf.get("model_type", "gpt2") != "gpt2":
        raise CheckpointError(f"{path} describes a {hf['model_type']!r:.60} model; only GPT-2 (model_type gpt2) loads")
    positions = hf.get("n_positions", hf.get("n_ctx"))
    shape = {"n_layer": hf.get("n_layer"), "n_head": hf.get("n_head"), "n_embd": hf.get("n_embd"),
             "vocab_size": hf.get("vocab_size"), "block_size": positions}
    bad = [f"{k}={v!r:.40}" for k, v in shape.items() if not isinstance(v, int) or isinstance(v, bool) or v < 1]
    if bad:
        raise CheckpointError(f"{path} lacks a positive whole number for {', '.join(bad)} (block_size is n_positions)")
    ranges = {**{name: INT_RANGES[name] for name in ("n_layer", "n_head", "n_embd", "block_size")},
              "vocab_size": (1, MAX_VOCAB)}
    out = [f"{k} {v:,} (at most {ranges[k][1]:,})" for k, v in shape.items() if v > ranges[k][1]]
    if out:
        raise CheckpointError(f"{path} describes a model too large to build here: {', '.join(out)}")
    if shape["n_embd"] % shape["n_head"]:
        raise CheckpointError(f"{path}: n_embd ({shape['n_embd']}) is not a multiple of n_head ({shape['n_head']})")
    unsupported = []
    if hf.get("activation_function", "gelu_new") not in GELUS:
        unsupported.append(f"activation_function {hf['activation_function']!r:.40} (only GELU)")
    if hf.get("n_inner") not in (None, 4 * shape["n_embd"]):
        unsupported.append(f"n_inner {hf['n_inner']!r:.40} (the MLP is 4 x n_embd wide)")
    eps = hf.get("layer_norm_epsilon", 1e-5)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or abs(eps - 1e-5) > 1e-9:
        unsupported.append(f"layer_norm_epsilon {eps!r:.40} (it is 1e-5)")
    for flag, plain in (("scale_attn_by_inverse_layer_idx", False), ("scale_attn_weights", True),
                        ("tie_word_embeddings", True)):
        if hf.get(flag, plain) != plain:
            unsupported.append(f"{flag} {hf[flag]!r:.40}")
    if unsupported:
        raise CheckpointError(f"{path}: this GPT-2 variant does not load here: {'; '.join(unsupported)}")
    return GPTConfig(**shape, bias=True)


def read_safetensors_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Each tensor's (dtype, shape) from a safetensors file's header, read without loading a weight: its
    first 8 bytes give the header's length, then the header is JSON (read through core.common.safe_files:
    a regular file, a link to one followed, at most MAX_HEADER_BYTES)."""
    try:
        with open_regular(path, follow_links=True) as file:
            head = file.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else 0
            if not 0 < length <= MAX_HEADER_BYTES:
                raise CheckpointError(f"{path} is not a safetensors file (no header of at most {MAX_HEADER_BYTES:,} bytes)")
            raw = file.read(length)
            if len(raw) < length:
                raise CheckpointError(f"{path} is not a safetensors file (truncated in its header)")
            header = parse_json(raw)
    except OSError as error:
        raise CheckpointError(str(error) if isinstance(error, UnsafeFile) else f"cannot read {path}: {error.strerror}") from None
    except BadJSON as error:
        raise CheckpointError(f"{path} is not a safetensors file: its header {error}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is not a safetensors file: its header is not a JSON object")
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
            raise CheckpointError(f"{path} is not a safetensors file: tensor {name!r:.60} has no shape")
        tensors[name] = (str(entry.get("dtype")), tuple(shape))
    return tensors


def _check_hf_weights(path: Path, config: GPTConfig) -> None:
    """CheckpointError unless the file holds exactly the weights a GPT of `config` needs, each of its
    shape and of a float dtype; read from the header alone, before anything is built or loaded."""
    with torch.device("meta"):  # shapes only: nothing is allocated
        expected = {k: tuple(v.shape) for k, v in GPT(config).state_dict().items() if k != "lm_head.weight"}
    found = {}
    for key, (dtype, shape) in read_safetensors_header(path).items():
        name = key.removeprefix("transformer.")
        if name.endswith(HF_BUFFERS) or name == "lm_head.weight":
            continue
        if dtype not in HF_DTYPES:
            raise CheckpointError(f"{path}: weight {key!r:.60} is {dtype:.20}, not a float type ({', '.join(HF_DTYPES)})")
        found[f"transformer.{name}"] = shape[::-1] if name.endswith(CONV1D) else shape
    problems = [f"missing {k}" for k in expected if k not in found]
    problems += [f"unexpected {k!r:.60}" for k in found if k not in expected]
    problems += [f"{k} is {found[k]}, not {shape}" for k, shape in expected.items() if k in found and found[k] != shape]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise CheckpointError(f"{path} does not match its {HF_CONFIG}: {'; '.join(problems[:3])}{more}")


def folder_tokenizer(folder: Path) -> dict[str, Any]:
    """The tokenizer spec of a Hugging Face folder: its meta.pkl's characters, the learned BPE of its
    SPEC_FILE (our export of a learned-BPE run writes one), else GPT-2's."""
    spec_file = folder / SPEC_FILE
    if spec_file.is_file():
        try:
            return load_tokenizer(read_json_object(spec_file, MAX_SPEC_BYTES, follow_links=True)).to_dict()
        except (OSError, TokenizerError) as error:  # UnsafeFile (too big, too deep, not JSON) is an OSError
            raise CheckpointError(f"cannot use {spec_file}: {error}") from None
    meta = folder / META_FILE
    if not meta.is_file():
        return dict(GPT2_SPEC)
    try:
        return tokenizer_from_meta(read_meta(meta), meta).to_dict()
    except (DatasetError, TokenizerError) as error:
        raise CheckpointError(f"cannot use {meta}: {error}") from None


def load_hf_gpt2(spec: str | os.PathLike[str], block_size: int | None = None, dropout: float = 0.0) -> GPT:
    """A GPT holding the weights of a Hugging Face GPT-2 folder, its positions cropped to `block_size`.
    Its config and the weights' names, shapes and dtypes are checked before anything is built."""
    folder = resolve_hf_folder(spec)
    config = read_hf_config(folder)
    if block_size is not None and block_size > config.block_size:
        raise CheckpointError(f"block_size {block_size} exceeds the {config.block_size} positions of {folder}")
    path = folder / HF_WEIGHTS
    _check_hf_weights(path, config)
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
    model = GPT(dataclasses.replace(config, block_size=keep, dropout=dropout))
    state["lm_head.weight"] = state["transformer.wte.weight"]
    model.load_state_dict(state)
    return model


def init_from_shape(config: TrainConfig) -> tuple[TrainConfig, int]:
    """`config` with the shape of the folder `config.init_from` names (its n_layer, n_head, n_embd and
    biases), and that model's vocabulary size: read and checked from its config.json alone, so the
    memory check sees the model that will be built before anything is."""
    assert config.init_from
    folder = resolve_hf_folder(config.init_from)
    shape = read_hf_config(folder)
    if config.block_size > shape.block_size:
        raise CheckpointError(f"block_size {config.block_size} exceeds the {shape.block_size} positions of {folder}")
    return (dataclasses.replace(config, n_layer=shape.n_layer, n_head=shape.n_head, n_embd=shape.n_embd, bias=True),
            shape.vocab_size)


def init_from(config: TrainConfig, dataset_tokenizer: dict[str, Any], vocab_size: int) -> tuple[GPT, TrainConfig]:
    """The model `config.init_from` names, at config's block_size and dropout, and config with its shape.

    The dataset must use the folder's tokenizer: its token ids are the rows of the embedding."""
    assert config.init_from
    folder = resolve_hf_folder(config.init_from)
    wanted = folder_tokenizer(folder)
    if dataset_tokenizer != wanted:
        used = dataset_tokenizer.get("name", dataset_tokenizer.get("kind"))
        if wanted == GPT2_SPEC:
            fix = ("prepare the text with GPT-2's tokenizer (gpt2 on the Data screen, or `prepare ... --tokenizer gpt2`); "
                   f"a character-level model's folder needs its {META_FILE} beside the weights")
            kind = "GPT-2's BPE (gpt2)"
        elif wanted.get("kind") == BPE_KIND:
            fix = "train on the dataset the model was exported from (the same learned BPE)"
            kind = f"the BPE learned for it ({tokenizer_name(wanted)}, in {SPEC_FILE})"
        else:
            fix = "train on a dataset with that vocabulary (the one the model was exported from)"
            kind = "the character vocabulary of its meta.pkl"
        raise CheckpointError(f"{folder} expects text tokenized with {kind}, but dataset {config.dataset!r} "
                              f"uses {used}: {fix}")
    model = load_hf_gpt2(folder, config.block_size, config.dropout)
    shape = model.config
    if shape.vocab_size < vocab_size:
        raise CheckpointError(f"{folder} has {shape.vocab_size} token embeddings, fewer than the {vocab_size} "
                              f"tokens of dataset {config.dataset!r}: for a character-level model put its "
                              f"{META_FILE} beside the weights and train on that vocabulary")
    return model, dataclasses.replace(config, n_layer=shape.n_layer, n_head=shape.n_head, n_embd=shape.n_embd, bias=True)


# -- export ------------------------------------------------------------------------------------------


def _check_exportable(ckpt: dict[str, Any], path: Path, fmt: str) -> None:
    args = ckpt["model_args"]
    if is_ladder(args):
        raise CheckpointError(
            f"{path} cannot be exported: it is the lecture ladder's {args['arch']!r} step (core.model.ladder), "
            "not a GPT; nanoGPT and Hugging Face load GPTs only (arch=gpt)"
        )
    refused = export_refusals(incompatible_knobs(args)).get(fmt)
    if refused:
        raise CheckpointError(f"{path} cannot be exported as {fmt}: {refused} (only runs with the modern recipe knobs off export)")


def _write_meta(tokenizer: dict[str, Any], folder: Path) -> Path | None:
    """nanoGPT's meta.pkl for a character vocabulary (nothing for GPT-2's BPE)."""
    if tokenizer.get("kind") != "char":
        return None
    meta = char_meta(CharTokenizer(tokenizer["chars"]))
    path = folder / META_FILE
    write_bytes_atomic(path, pickle.dumps(meta), what=f"export {META_FILE}")
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
    eot = GPT2_EOT if tokenizer == GPT2_SPEC else (tokenizer.get("special_tokens") or {}).get(ENDOFTEXT)
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
    """model.safetensors + config.json + the tokenizer's files (and a char run's meta.pkl) in `folder`,
    loadable by GPT2LMHeadModel and transformers' pipeline."""
    model = build_model(ckpt)
    if not model.config.bias:  # GPT-2 has biases everywhere: zeros compute the same
        with_bias = GPT(dataclasses.replace(model.config, bias=True))
        missing = with_bias.load_state_dict(model.state_dict(), strict=False).missing_keys
        assert all(key.endswith(".bias") for key in missing), missing
        for key in missing:
            with_bias.get_parameter(key).data.zero_()
        model = with_bias
    weights, config = folder / HF_WEIGHTS, folder / HF_CONFIG
    data = save_safetensors(hf_tensors(model), metadata={"format": "pt"})
    write_bytes_atomic(weights, data, what=f"export {HF_WEIGHTS}")
    del data
    text = json.dumps(hf_config(model.config, ckpt["tokenizer"]), indent=2) + "\n"
    write_text_atomic(config, text, what=f"export {HF_CONFIG}")
    written = [weights, config]
    for name, content in (tokenizer_files(ckpt["tokenizer"], model.config.block_size) or {}).items():
        write_text_atomic(folder / name, content, what=f"export {name}")
        written.append(folder / name)
    if ckpt["tokenizer"].get("kind") == BPE_KIND:  # for --init-from, which reads it back (folder_tokenizer)
        write_text_atomic(folder / SPEC_FILE, json.dumps(ckpt["tokenizer"]) + "\n", what=f"export {SPEC_FILE}")
        written.append(folder / SPEC_FILE)
    meta = _write_meta(ckpt["tokenizer"], folder)
    return written + ([meta] if meta else [])


@dataclasses.dataclass
class Exported:
    """What an export wrote, and what the user should know about its vocabulary."""

    files: list[Path]
    note: str


def export_note(tokenizer: dict[str, Any], fmt: str, dataset: str) -> str:
    """What a user should know about the exported vocabulary."""
    if fmt == "hf" and tokenizer.get("name") != "cl100k_base":
        return ("The tokenizer is in tokenizer.json: transformers loads it with the model "
                "(pipeline('text-generation', model=DIR), or AutoTokenizer.from_pretrained(DIR)).")
    if tokenizer.get("kind") == BPE_KIND:
        return f"The tokenizer is a BPE learned from {dataset}: ckpt.pt carries it for this program."
    if tokenizer.get("kind") != "char":
        return "The tokenizer is GPT-2's BPE (in transformers: AutoTokenizer.from_pretrained('gpt2'))."
    return (f"A character-level vocabulary, in meta.pkl beside ckpt.pt (where this program finds it): "
            f"nanoGPT's sample.py reads it from data/{dataset}/meta.pkl.")


def export_checkpoint(spec: str | os.PathLike[str], fmt: str, folder: str | os.PathLike[str],
                      overwrite: bool = False, warn: Callable[[str], None] | None = None) -> Exported:
    """Export checkpoint `spec` (a run, folder or file) as `fmt` ("nanogpt" or "hf") into `folder`.

    `warn` hears what the export cannot carry of the run's tokenizer (gpt2_files.export_caveat) before
    anything is written."""
    if fmt not in FORMATS:
        raise CheckpointError(f"unknown export format {fmt!r}: choose {' or '.join(FORMATS)}")
    if not os.fspath(folder).strip():
        raise CheckpointError("no folder to export into: name one (--out DIR)")
    path = resolve_checkpoint(spec)
    ckpt = load_checkpoint(path)
    _check_exportable(ckpt, path, fmt)
    out = Path(folder).expanduser()
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"{out} is a file: export into a folder")
    names = [NANOGPT_CKPT] if fmt == "nanogpt" else [HF_WEIGHTS, HF_CONFIG, TOKENIZER_JSON, TOKENIZER_CONFIG]
    if ckpt["tokenizer"].get("kind") == "char":
        names.append(META_FILE)
    if ckpt["tokenizer"].get("kind") == BPE_KIND and fmt == "hf":
        names.append(SPEC_FILE)
    caveat = export_caveat(str(ckpt["tokenizer"].get("kind")), tokenizer_name(ckpt["tokenizer"]), fmt)
    if caveat and warn is not None:
        warn(caveat)
    existing = [name for name in names if (out / name).exists()]
    if existing and not overwrite:
        raise ExportExists(out, existing)
    try:
        out.mkdir(parents=True, exist_ok=True)
        files = export_nanogpt(ckpt, out) if fmt == "nanogpt" else export_hf(ckpt, out)
    except OSError as error:  # (a full or read-only disk: DiskWriteError's line says it all)
        problem = disk_problem(error, "export", out)
        raise CheckpointError(str(problem) if problem else f"could not export into {out}: {error}") from None
    dataset = str(ckpt["dataset"].get("name", ""))
    return Exported(files, export_note(ckpt["tokenizer"], fmt, dataset))
