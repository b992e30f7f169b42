"""GPT-2 weight files: their names, where they are looked for, the export formats and what an export cannot
carry of a run's tokenizer (torch-free, for the CLI's help and the export dialog)."""

from __future__ import annotations

from pathlib import Path

from core.common import paths

HF_CONFIG = "config.json"
HF_WEIGHTS = "model.safetensors"
GPT2_MODELS = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")
HUB_OWNER = "openai-community"  # the hub's home of the four GPT-2 models
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


def where_to_put(name: str) -> str:
    """Which files to download from where, and into which folder, for GPT-2 model `name` (else gpt2)."""
    model = name if name in GPT2_MODELS else "gpt2"
    return (f"download {HF_CONFIG} and {HF_WEIGHTS} from https://huggingface.co/{HUB_OWNER}/{model}/tree/main "
            f"into {models_dir() / model}")
