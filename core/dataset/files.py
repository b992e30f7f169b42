"""Reading a dataset's metadata files safely: dataset.json, checked field by field, and nanoGPT's meta.pkl,
through an unpickler that cannot run code. Whatever the files hold, the only error is DatasetError.
No torch here (the app lists datasets before torch loads).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.common.lazy import lazy
from core.common.safe_files import UnsafeFile, read_bytes, read_json_object
from core.tokens.tokenizers import CharTokenizer, Tokenizer, TokenizerError, get_tokenizer

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy("numpy")

MAX_INFO_BYTES = 16 * 2**20  # a dataset.json is a few kB (a huge char vocabulary: a few MB)
MAX_META_BYTES = 16 * 2**20  # a meta.pkl holds a character vocabulary twice (itos and stoi)
DTYPES = ("uint16", "uint32")
# dataset.json's fields (its `name` aside: a dataset is named by its folder) and the types each may hold.
INFO_TYPES: dict[str, tuple[type, ...]] = {
    "source": (str,), "tokenizer": (dict,), "vocab_size": (int,), "dtype": (str,), "chars": (int, type(None)),
    "train_tokens": (int,), "val_tokens": (int,), "val_fraction": (float, int, type(None)), "created": (str,),
}

JSON_KINDS = {str: "a string", dict: "an object", int: "a whole number", float: "a number", type(None): "null"}


# What every vocabulary-mismatch message adds: a nanoGPT checkpoint does not hold its vocabulary, and
# without its dataset's meta.pkl it is taken for GPT-2's BPE (nanoGPT's own rule).
PASS_VOCABULARY = ("a nanoGPT character-level checkpoint takes its vocabulary from its dataset's meta.pkl: "
                   "put that file beside ckpt.pt, or pass it with --meta FILE")


class DatasetError(ValueError):
    """A dataset that is missing, malformed, or cannot be written."""


class _RestrictedUnpickler(pickle.Unpickler):
    """Loads builtin containers and scalars only: a meta.pkl cannot run code."""

    ALLOWED = {("builtins", name) for name in ("set", "frozenset", "tuple", "list", "dict", "bytearray")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_meta(path: Path) -> dict[str, Any]:
    """nanoGPT's meta.pkl, read safely: a regular file (core.common.safe_files) of at most MAX_META_BYTES,
    unpickled without running code."""
    try:
        data = read_bytes(path, MAX_META_BYTES)
    except UnsafeFile as error:
        raise DatasetError(str(error)) from None
    except OSError as error:
        raise DatasetError(f"cannot read {path}: {error.strerror}") from None
    try:
        meta = _RestrictedUnpickler(io.BytesIO(data)).load()
    except Exception as error:  # a hostile or corrupt pickle can raise nearly anything
        raise DatasetError(f"{path} is not a plain nanoGPT meta.pkl: {error}") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"{path} does not hold a dict")
    return meta


def tokenizer_from_meta(meta: dict[str, Any], path: Path) -> Tokenizer:
    """The tokenizer a nanoGPT meta.pkl describes: its character vocabulary, or gpt2 without one."""
    itos = meta.get("itos")
    if itos is None:
        return get_tokenizer("gpt2")
    try:
        vocab_size = int(meta.get("vocab_size", len(itos)))
        return CharTokenizer([itos[i] for i in range(vocab_size)])
    except (KeyError, TypeError, ValueError, TokenizerError) as error:
        raise DatasetError(f"{path} has a malformed character vocabulary: {error}") from None


def read_info_json(path: Path) -> dict[str, Any]:
    """dataset.json's contents as a dict, or DatasetError saying what is wrong with the file (read through
    core.common.safe_files: a regular file of at most MAX_INFO_BYTES, JSON nested at most MAX_DEPTH)."""
    try:
        return read_json_object(path, MAX_INFO_BYTES)
    except UnsafeFile as error:
        raise DatasetError(str(error)) from None
    except OSError as error:
        raise DatasetError(f"cannot read {path}: {error.strerror}") from None


def info_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with dataset.json's fields (a missing one, a wrong type, an impossible value), or None."""
    missing = sorted(INFO_TYPES.keys() - data.keys())
    if missing:
        return f"lacks {', '.join(missing)}"
    for key, types in INFO_TYPES.items():
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, types):
            wanted = " or ".join(JSON_KINDS[t] for t in types if t is not int or float not in types)
            return f"has {key} = {value!r:.40}, not {wanted}"
    for key in ("vocab_size", "train_tokens", "val_tokens", "chars"):
        if data[key] is not None and data[key] < (1 if key == "vocab_size" else 0):
            return f"has {key} = {data[key]}, below {1 if key == 'vocab_size' else 0}"
    fraction = data["val_fraction"]
    if fraction is not None and not 0 < fraction < 1:  # (NaN fails this too)
        return f"has val_fraction = {fraction}, not between 0 and 1"
    if data["dtype"] not in DTYPES:
        return f"names dtype {data['dtype']!r:.40}, not one of {', '.join(DTYPES)}"
    if data["vocab_size"] > np.iinfo(data["dtype"]).max + 1:
        return f"has vocab_size {data['vocab_size']:,}, more ids than {data['dtype']} holds"
    chars = data["tokenizer"].get("chars")
    if data["tokenizer"].get("kind") == "char" and isinstance(chars, list) and len(chars) != data["vocab_size"]:
        return f"has vocab_size {data['vocab_size']} but its tokenizer has {len(chars)} characters"
    return None
