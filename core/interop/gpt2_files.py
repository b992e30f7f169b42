"""GPT-2 weight files: their names, where they are looked for, the export formats, which runs each takes
and what an export cannot carry of a run's tokenizer (torch-free: for the CLI's help, and for the app to
offer only the formats a run can be exported to)."""

from __future__ import annotations

import os
from pathlib import Path

from core.common import paths

HF_CONFIG = "config.json"
HF_WEIGHTS = "model.safetensors"
GPT2_MODELS = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")
HUB_OWNER = "openai-community"  # the hub's home of the four GPT-2 models
# The settings a GPT-2 folder decides when a run starts from it (init_from); block_size and dropout stay yours.
FOLDER_SHAPE = ("n_layer", "n_head", "n_embd", "bias")
FORMATS = {
    "nanogpt": "nanoGPT: ckpt.pt (its sample.py and train.py load it)",
    "hf": "Hugging Face GPT-2: model.safetensors + config.json + tokenizer.json",
}


def export_caveat(tokenizer_kind: str, tokenizer: str, fmt: str) -> str | None:
    """What an export in `fmt` of a run whose tokenizer is of `tokenizer_kind` (a spec's kind) and called
    `tokenizer` cannot carry, said before exporting; None when it carries everything."""
    if fmt == "nanogpt" and tokenizer_kind == "bpe":
        return (f"nanoGPT's sample.py cannot decode this run: its tokenizer is a BPE learned from its dataset "
                f"({tokenizer}), and sample.py knows only GPT-2's BPE and meta.pkl's characters. ckpt.pt carries "
                "the learned BPE for this program (nanogpt-tui sample --checkpoint DIR/ckpt.pt); "
                "--format hf writes it as tokenizer.json")
    if fmt == "hf" and tokenizer == "cl100k_base":
        return ("no Hugging Face tokenizer files for cl100k_base: encode with tiktoken's cl100k_base "
                "(tiktoken.get_encoding('cl100k_base')) and pass the ids to the model")
    return None


def models_dir() -> Path:
    """Where `--init-from NAME` looks for a folder called NAME (and `download-gpt2` puts one)."""
    return paths.home() / "models"


def how_to_get(name: str) -> str:
    """Where to put which files to start from GPT-2 model `name` (else gpt2), offline or not; in words that
    fit both the Train screen's init_from field and the CLI's --init-from."""
    model = name if name in GPT2_MODELS else "gpt2"
    return (f"{where_to_put(model)}, then start from {model!r}; or let `nanogpt-tui download-gpt2 {model}` "
            "fetch them (needs the huggingface_hub package)")


def find_hf_folder(spec: str | os.PathLike[str]) -> Path | str:
    """The Hugging Face GPT-2 folder `spec` names (a path, or a folder of that name under models_dir()), or
    what is wrong, in words for the user. A few stats, no reading: the Train form checks init_from with it."""
    text = os.fspath(spec)
    given = Path(text).expanduser()
    candidates = [given]
    if text and os.sep not in text and not given.exists():
        candidates.append(models_dir() / text)
    for folder in candidates:
        if folder.is_dir():
            missing = [name for name in (HF_CONFIG, HF_WEIGHTS) if not (folder / name).is_file()]
            if missing:
                return (f"{folder} is not a Hugging Face GPT-2 folder: it lacks {' and '.join(missing)}; "
                        + how_to_get(folder.name))
            return folder
    if given.is_file():
        return f"{given} is a file: init_from takes a folder holding {HF_CONFIG} and {HF_WEIGHTS}"
    tried = " nor ".join(str(c) for c in candidates)
    return f"no GPT-2 weights: there is no folder {tried}; " + how_to_get(given.name)


def where_to_put(name: str) -> str:
    """Which files to download from where, and into which folder, for GPT-2 model `name` (else gpt2)."""
    model = name if name in GPT2_MODELS else "gpt2"
    return (f"download {HF_CONFIG} and {HF_WEIGHTS} from https://huggingface.co/{HUB_OWNER}/{model}/tree/main "
            f"into {models_dir() / model}")


def export_refusals(recipe_knobs: list[str]) -> dict[str, str]:
    """Why each format cannot take a model using `recipe_knobs` (core.settings.train_config.incompatible_knobs),
    by format; a format missing here can. Every export checks this, and the app offers only the others."""
    if not recipe_knobs:
        return {}
    reason = f"it uses {', '.join(recipe_knobs)}, which nanoGPT's and GPT-2's architecture lack"
    return {fmt: reason for fmt in FORMATS}
