"""GPT-2 weight files: their names, where they are looked for, the export formats and which runs each takes
(torch-free: for the CLI's help, and for the app to offer only the formats a run can be exported to)."""

from __future__ import annotations

from pathlib import Path

from core.common import paths

HF_CONFIG = "config.json"
HF_WEIGHTS = "model.safetensors"
GPT2_MODELS = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")
HUB_OWNER = "openai-community"  # the hub's home of the four GPT-2 models
FORMATS = {
    "nanogpt": "nanoGPT: ckpt.pt (its sample.py and train.py load it)",
    "hf": "Hugging Face GPT-2: model.safetensors + config.json",
}


def models_dir() -> Path:
    """Where `--init-from NAME` looks for a folder called NAME (and `download-gpt2` puts one)."""
    return paths.home() / "models"


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
