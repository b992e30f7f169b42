"""Text as token spans, both ways: text -> spans (encode) and ids -> spans (decode). Torch-free.

A span is a piece of text and the ids that make it. Byte-level BPE can cut one character into several
tokens: their bytes are gathered until they decode, so the character shows once, carrying all its ids.
A character that a char vocabulary lacks, and an id that a vocabulary lacks, become spans marked as
unknown instead of errors, so the Tokens screen and `nanogpt-tui tokens` can show them as `?`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from core.tokens.tokenizers import CharTokenizer, Tokenizer, TokenizerError


@dataclass
class TokenSpan:
    """A piece of the text and the token ids that make it (several when a character spans tokens)."""

    text: str
    ids: list[int]  # empty: characters the vocabulary lacks
    special: bool = False
    untrained: bool = False
    bad_id: int | None = None  # decode: an id the vocabulary lacks (the span shows it, with no text)

    @property
    def unknown(self) -> bool:
        return not self.ids


def count_tokens(spans: Sequence[TokenSpan]) -> int:
    """Tokens as shown: each id, and one `?` for each character or id the vocabulary lacks."""
    return sum(len(span.ids) if span.ids else max(1, len(span.text)) for span in spans)


def count_unknown(spans: Sequence[TokenSpan]) -> int:
    """The `?`s among `count_tokens`: characters (or ids) the vocabulary lacks."""
    return sum(max(1, len(span.text)) for span in spans if not span.ids)


def split_tokens(tokenizer: Tokenizer, text: str, allow_special: bool = False) -> list[TokenSpan]:
    """Split `text` into spans of whole characters, each with the ids of the tokens that make it."""
    if isinstance(tokenizer, CharTokenizer):
        return [TokenSpan(c, [tokenizer.stoi[c]] if c in tokenizer.stoi else []) for c in text]
    specials = set(tokenizer.special_tokens.values()) if allow_special else set()
    return _gather(tokenizer, tokenizer.encode(text, allow_special=allow_special), specials)


def decode_spans(tokenizer: Tokenizer, ids: Sequence[int]) -> list[TokenSpan]:
    """The spans that `ids` decode to; an id outside the vocabulary is a span of its own, marked bad."""
    specials = set(tokenizer.special_tokens.values())
    spans: list[TokenSpan] = []
    run: list[int] = []
    for token_id in ids:
        try:
            tokenizer.token_bytes(token_id)
        except TokenizerError:
            spans += _gather(tokenizer, run, specials)
            spans.append(TokenSpan("", [], bad_id=token_id))
            run = []
            continue
        run.append(token_id)
    return spans + _gather(tokenizer, run, specials)


def parse_ids(text: str) -> list[int]:
    """Token ids typed as text: integers separated by spaces, commas or brackets ("[15496, 995]")."""
    words = [word for word in re.split(r"[\s,\[\]()]+", text) if word]
    bad = [word for word in words if not re.fullmatch(r"\d+", word)]
    if bad:
        raise TokenizerError(f"not a token id: {bad[0]!r} (type ids as whole numbers, separated by spaces or commas)")
    return [int(word) for word in words]


def _gather(tokenizer: Tokenizer, ids: Sequence[int], specials: set[int]) -> list[TokenSpan]:
    """Group `ids` into spans of whole characters (a partial character at the end decodes with U+FFFD)."""
    spans: list[TokenSpan] = []
    pending, group = b"", []
    for token_id in ids:
        pending += tokenizer.token_bytes(token_id)
        group.append(token_id)
        try:
            piece = pending.decode("utf-8")
        except UnicodeDecodeError:
            continue  # part of a character: wait for the tokens that complete it
        spans.append(TokenSpan(piece, group, special=token_id in specials))
        pending, group = b"", []
    if group:
        spans.append(TokenSpan(pending.decode("utf-8", "replace"), group))
    return spans
