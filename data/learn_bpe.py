"""`prepare --tokenizer bpe`: the request for a learned BPE, and learning it from a source's train split.

prepare (data.prepare) reads the source once to check it and count its characters; then, for a learned
BPE, it reads the text again and hands it here: the train split alone (the first `n_train` characters)
goes to the trainer (core.tokens.bpe_train), so nothing of val leaks into the vocabulary. A train split
longer than LEARN_MAX_CHARS is sampled, a chunk here and there spread evenly over it, so learning takes
bounded time and memory whatever the size; then prepare encodes the whole text with what was learned.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from core.tokens.bpe import DEFAULT_PATTERN, ENDOFTEXT, BpeTokenizer, check_pattern, check_vocab_size
from core.tokens.bpe_train import learn_bpe

BPE = "bpe"  # prepare's tokenizer name for a BPE learned from the text
DEFAULT_VOCAB = 4096
LEARN_MAX_CHARS = 100_000_000  # of the train split learned from; a longer one is sampled


@dataclass(frozen=True)
class BpeRequest:
    """A BPE to learn: its vocabulary size (the 256 bytes, the merges, <|endoftext|>) and split regex."""

    vocab_size: int = DEFAULT_VOCAB
    pattern: str = DEFAULT_PATTERN

    def __post_init__(self) -> None:
        check_vocab_size(self.vocab_size)
        check_pattern(self.pattern)


def tokenizer_label(tokenizer: str, vocab_size: int | None = None) -> str:
    """What a dataset's default name ends with: the tokenizer's name, "bpe4096" for a learned BPE."""
    return f"{BPE}{vocab_size or DEFAULT_VOCAB}" if tokenizer == BPE else tokenizer


def train_split(texts: Iterable[str], n_train: int, max_chars: int = LEARN_MAX_CHARS) -> Iterator[str]:
    """The first `n_train` characters of `texts`; past `max_chars` of them, an even sample of its pieces:
    a piece is kept while what was kept is at most its share of what was read."""
    position = kept = 0
    for text in texts:
        if position >= n_train:
            return
        text = text[: n_train - position] if text else text  # (an empty text ends a document: kept as is)
        position += len(text)
        if kept <= position * max_chars / n_train:
            kept += len(text)
            yield text


def document_ends(texts: Iterable[str]) -> Iterator[str]:
    """`texts` with each <|endoftext|> replaced by an empty text, the trainer's end of a document (so no merge
    learns the separator or spans two documents)."""
    for text in texts:
        for index, part in enumerate(text.split(ENDOFTEXT)):
            if index:
                yield ""
            if part:
                yield part


def learn_from(
    texts: Iterable[str], n_train: int, request: BpeRequest,
    on_merges: Callable[[int, int], None] | None = None, cancel: threading.Event | None = None,
    documents: bool = False,
) -> BpeTokenizer:
    """Learn `request`'s BPE from the train split of `texts` (see the module docstring); with `documents`,
    an <|endoftext|> in the text ends a document (as the encoder will read it: the end-of-text token)."""
    split = train_split(texts, n_train)
    return learn_bpe(document_ends(split) if documents else split, request.vocab_size, request.pattern,
                     on_merges, cancel)
