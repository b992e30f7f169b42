"""A byte-level BPE learned from a dataset's text (`prepare --tokenizer bpe`): its portable spec and tokenizer.

The spec (version 1) is JSON-safe; dataset.json stores it and every checkpoint trained on the dataset
copies it, so the tokenizer is rebuilt anywhere without the dataset:

    {"kind": "bpe", "version": 1, "pattern": "gpt4", "pat_str": "<the split regex>",
     "ranks": ["<base64 of token 0's bytes>", ...], "special_tokens": {"<|endoftext|>": N}}

Token i's bytes are `ranks[i]` (i is also its merge rank, as in a .tiktoken file): the first 256 are the
single bytes 0..255 in order, each later one the two tokens it was merged from, concatenated. The special
tokens follow the N ranks (ids N, N+1, ...), so the vocabulary is N + their number. tiktoken encodes with
it: `pat_str` pre-splits the text, the ranks merge within each piece. `pattern` names the split regex
(SPLIT_PATTERNS); the regex itself is stored for other tools, and a spec whose regex is not the one its
name stands for is refused, so a file can never hand this program a regex of its own to run.
Training: core.tokens.bpe_train. The merges and their counts: core.tokens.merges.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import tiktoken
from tiktoken_ext import openai_public

from core.tokens.base import ENDOFTEXT, EncodingTokenizer, TokenizerError

KIND = "bpe"
SPEC_VERSION = 1
# GPT-4's (cl100k_base's) pre-split regex: tiktoken_ext names GPT-2's but keeps this one inside a function.
GPT4_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
SPLIT_PATTERNS = {"gpt2": openai_public.r50k_pat_str, "gpt4": GPT4_PATTERN}
DEFAULT_PATTERN = "gpt4"
# What `prepare --vocab-size` accepts: the 256 bytes and <|endoftext|> at least, and ids that fit uint16.
MIN_VOCAB, MAX_VOCAB = 257, 2**16
MAX_SPEC_TOKENS = 2**20  # a spec read from a file holds at most this many tokens
MAX_TOKEN_BYTES = 4096  # and no token longer than this
MAX_SPECIAL_TOKENS = 16


def check_vocab_size(vocab_size: int) -> int:
    """`vocab_size` if a BPE can be learned with it, else TokenizerError saying the range."""
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or not MIN_VOCAB <= vocab_size <= MAX_VOCAB:
        raise TokenizerError(
            f"a learned BPE's vocabulary size is a whole number from {MIN_VOCAB} (the 256 bytes and "
            f"{ENDOFTEXT}) to {MAX_VOCAB:,}, not {vocab_size!r}"
        )
    return vocab_size


def check_pattern(pattern: str) -> str:
    """`pattern` if it names a split regex, else TokenizerError listing them."""
    if pattern not in SPLIT_PATTERNS:
        raise TokenizerError(f"unknown split pattern {pattern!r} (choose from {', '.join(SPLIT_PATTERNS)})")
    return pattern


class BpeTokenizer(EncodingTokenizer):
    """A learned byte-level BPE: `ranks[i]` is token i's bytes, then the special tokens (see the module)."""

    def __init__(self, ranks: list[bytes], pattern: str = DEFAULT_PATTERN, special: tuple[str, ...] = (ENDOFTEXT,)) -> None:
        _check_ranks(ranks)
        self.pattern = check_pattern(pattern)
        self.ranks = list(ranks)
        # Two merges can make the same bytes (rare): tiktoken keeps the first; the other id is never produced.
        mergeable: dict[bytes, int] = {}
        for rank, token in enumerate(ranks):
            mergeable.setdefault(token, rank)
        specials = {token: len(ranks) + i for i, token in enumerate(special)}
        vocab_size = len(ranks) + len(specials)
        encoding = tiktoken.Encoding(
            name=f"bpe{vocab_size}", pat_str=SPLIT_PATTERNS[pattern], mergeable_ranks=mergeable, special_tokens=specials
        )
        super().__init__(f"bpe{vocab_size}", encoding)
        self.vocab_size = vocab_size  # (tiktoken's n_vocab agrees, holes included)

    @property
    def n_merges(self) -> int:
        return len(self.ranks) - 256

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "version": SPEC_VERSION,
            "pattern": self.pattern,
            "pat_str": SPLIT_PATTERNS[self.pattern],
            "ranks": [base64.b64encode(token).decode("ascii") for token in self.ranks],
            "special_tokens": dict(self.special_tokens),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> BpeTokenizer:
        """Rebuild the tokenizer of a version-1 spec; TokenizerError says what is wrong with one."""
        version = spec.get("version")
        if isinstance(version, int) and not isinstance(version, bool) and version > SPEC_VERSION:
            raise TokenizerError(f"this learned BPE's spec is version {version}, newer than this program reads "
                                 f"({SPEC_VERSION}): upgrade nanogpt-tui")
        if version != SPEC_VERSION:
            raise TokenizerError(f"a learned BPE spec needs version {SPEC_VERSION}, not {version!r:.40}")
        pattern = spec.get("pattern")
        if not isinstance(pattern, str):
            raise TokenizerError("a learned BPE spec needs a 'pattern' name")
        check_pattern(pattern)
        if spec.get("pat_str") != SPLIT_PATTERNS[pattern]:
            raise TokenizerError(f"a learned BPE spec's pat_str is not the {pattern} split regex")
        encoded = spec.get("ranks")
        if not isinstance(encoded, list) or not all(isinstance(token, str) for token in encoded):
            raise TokenizerError("a learned BPE spec needs 'ranks', a list of base64 strings")
        if len(encoded) > MAX_SPEC_TOKENS:
            raise TokenizerError(f"a learned BPE spec holds {len(encoded):,} tokens, more than {MAX_SPEC_TOKENS:,}")
        try:
            ranks = [base64.b64decode(token, validate=True) for token in encoded]
        except (binascii.Error, ValueError):
            raise TokenizerError("a learned BPE spec's ranks are not all base64") from None
        _check_ranks(ranks)
        return cls(ranks, pattern, _special_names(spec.get("special_tokens"), len(ranks)))


def _check_ranks(ranks: list[bytes]) -> None:
    if len(ranks) < 256 or any(ranks[i] != bytes([i]) for i in range(256)):
        raise TokenizerError("a learned BPE's first 256 tokens must be the bytes 0..255 in order")
    for rank in range(256, len(ranks)):
        if not 2 <= len(ranks[rank]) <= MAX_TOKEN_BYTES:
            raise TokenizerError(f"a learned BPE's token {rank} has {len(ranks[rank])} bytes: a merge has 2 to "
                                 f"{MAX_TOKEN_BYTES}")


def _special_names(special: Any, first_id: int) -> tuple[str, ...]:
    """The special tokens of a spec, in id order; they must take the ids right after the ranks."""
    if not isinstance(special, dict) or len(special) > MAX_SPECIAL_TOKENS:
        raise TokenizerError(f"a learned BPE spec needs 'special_tokens', an object of at most {MAX_SPECIAL_TOKENS}")
    if not all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in special.items()):
        raise TokenizerError("a learned BPE spec's special tokens map names to ids")
    names = tuple(sorted(special, key=special.__getitem__))
    if [special[name] for name in names] != list(range(first_id, first_id + len(names))):
        raise TokenizerError(f"a learned BPE spec's special tokens must take the ids from {first_id} on")
    return names
