"""prepare --tokenizer bpe: learned from the train split only, documents separated, cancellable."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from core.common import paths
from core.dataset.format import load_dataset, open_split, token_counts, tokenizer_of
from core.tokens.bpe import ENDOFTEXT, BpeTokenizer
from data.prepare import PrepareCancelled, PrepareError, Progress, prepare

pytest.importorskip("rustbpe")


def decoded(info) -> str:
    tokenizer = tokenizer_of(info)
    return "".join(tokenizer.decode(open_split(info, split).tolist()) for split in ("train", "val"))


def test_learned_dataset_holds_the_text_and_its_tokenizer(small_text: Path) -> None:
    stages: list[str] = []
    info = prepare(str(small_text), tokenizer="bpe", vocab_size=300, block_size=16,
                   progress=lambda p: stages.append((p.stage, p.unit)))
    assert info.name == "small-bpe300"
    assert [s for s, _ in dict.fromkeys(stages)] == ["read", "learn", "merge", "encode"]
    assert ("merge", "merges") in stages
    text = small_text.read_text(encoding="utf-8")
    assert decoded(info) == text
    assert info.text_bytes == len(text.encode("utf-8")) and info.bytes_per_token > info.chars_per_token * 0.99
    saved = json.loads((info.path / "dataset.json").read_text(encoding="utf-8"))
    assert saved["tokenizer"]["kind"] == "bpe" and saved["tokenizer"]["pattern"] == "gpt4"
    assert saved["vocab_size"] == 300 and saved["text_bytes"] == info.text_bytes
    loaded = load_dataset(info.name)
    assert loaded.text_bytes == info.text_bytes and isinstance(tokenizer_of(loaded), BpeTokenizer)
    # Its tokens are the tokenizer's encoding of each split, and the counts are train's.
    tokenizer = tokenizer_of(loaded)
    cut = int(len(text) * 0.9)
    assert open_split(loaded, "train").tolist() == tokenizer.encode(text[:cut])
    assert token_counts(loaded).tolist() == np.bincount(tokenizer.encode(text[:cut]), minlength=300).tolist()


def test_nothing_of_val_is_learned(tmp_path: Path, small_text: Path) -> None:
    """A word that only val holds, however frequent, never becomes a token."""
    text = small_text.read_text(encoding="utf-8")
    source = tmp_path / "leak.txt"
    source.write_text(text + " xqzv" * (len(text) // 100), encoding="utf-8")  # all of it past the 90% cut
    info = prepare(str(source), tokenizer="bpe", vocab_size=400, block_size=16, split_pattern="gpt2")
    assert info.train_chars < len(text)
    tokenizer = tokenizer_of(info)
    assert not any(b"xq" in token or b"qz" in token or b"zv" in token for token in tokenizer.ranks)
    assert decoded(info) == source.read_text(encoding="utf-8")


def test_documents_of_a_folder_are_separated_by_endoftext(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    bodies = [f"document {i}: " + " ".join(f"word{j % (i + 3)}" for j in range(600)) for i in range(4)]
    for i, body in enumerate(bodies):
        (folder / f"{i}.txt").write_text(body, encoding="utf-8")
    info = prepare(str(folder), tokenizer="bpe", vocab_size=280, block_size=16, val_fraction=0.2)
    eot = tokenizer_of(info).special_tokens[ENDOFTEXT]
    ids = np.concatenate([open_split(info, "train"), open_split(info, "val")])
    assert int((ids == eot).sum()) == 3
    assert decoded(info) == ENDOFTEXT.join(bodies)
    # The separators count as text (as in a .txt holding them, read with --special): the same documents
    # split at the same place whether they come as files, records or one text file.
    assert info.chars == len(ENDOFTEXT.join(bodies))
    # A typed <|endoftext|> stays text: it encodes to other ids than the separator's.
    assert eot not in tokenizer_of(info).encode(ENDOFTEXT)


@pytest.mark.parametrize("stage", ["learn", "merge"])
def test_cancel_while_learning_leaves_nothing(small_text: Path, stage: str) -> None:
    cancel = threading.Event()

    def progress(p: Progress) -> None:
        if p.stage == stage:
            cancel.set()

    with pytest.raises(PrepareCancelled):
        prepare(str(small_text), tokenizer="bpe", vocab_size=2000, block_size=16, progress=progress, cancel=cancel)
    assert os.listdir(paths.datasets_dir()) == []


def test_bad_requests(small_text: Path) -> None:
    with pytest.raises(PrepareError, match="vocabulary size is for a learned BPE"):
        prepare(str(small_text), tokenizer="char", vocab_size=300)
    with pytest.raises(PrepareError, match="from 257"):
        prepare(str(small_text), tokenizer="bpe", vocab_size=100)
    with pytest.raises(PrepareError, match="split pattern"):
        prepare(str(small_text), tokenizer="bpe", split_pattern="gpt5")
