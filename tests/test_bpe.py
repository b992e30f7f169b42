"""A BPE learned from text (core.tokens.bpe, bpe_train, merges): training, the portable spec, the merges."""

from __future__ import annotations

import base64
import json
import threading

import numpy as np
import pytest

from core.tokens.bpe import ENDOFTEXT, MAX_VOCAB, MIN_VOCAB, SPLIT_PATTERNS, BpeTokenizer
from core.tokens.bpe_train import BpeCancelled, learn_bpe, whole_pieces
from core.tokens.merges import merge_table
from core.tokens.tokenizers import TokenizerError, load_tokenizer, tokenizer_name

pytest.importorskip("rustbpe")

ODD = "naïve café, π ≈ 3.14 🎉\ttabs\r\n  spaces <|endoftext|> end"


@pytest.fixture(scope="module")
def text() -> str:
    """About 90 kB of varied words (no corpus file needed)."""
    words = ("the quick brown fox jumps over a lazy dog while seven wizards quietly judge boxing matches; how "
             "vexingly quick daft zebras jump! pack my box with five dozen liquor jugs, said Ophelia.").split()
    return "\n".join(" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(i % 11 + 3)) for i in range(3000))


@pytest.fixture(scope="module")
def learned(text: str) -> BpeTokenizer:
    return learn_bpe([text], 300, pattern="gpt2")


def test_learns_the_vocabulary_asked_for_and_round_trips(learned: BpeTokenizer, text: str) -> None:
    assert learned.vocab_size == 300 and learned.n_merges == 300 - 257
    assert learned.special_tokens == {ENDOFTEXT: 299}
    ids = learned.encode(text)
    assert len(ids) < len(text.encode("utf-8")) * 0.7  # merges shorten the text
    assert learned.decode(ids) == text
    for sample in (ODD, "", " ", "\n\n\n"):
        assert learned.decode(learned.encode(sample)) == sample
    assert learned.encode_array(text).dtype == np.uint16
    # Special tokens are plain text unless allowed.
    assert 299 not in learned.encode(ENDOFTEXT)
    assert learned.encode(ENDOFTEXT, allow_special=True) == [299]
    assert learned.token_bytes(299) == ENDOFTEXT.encode()


def test_the_most_frequent_pair_is_merged_first(text: str, learned: BpeTokenizer) -> None:
    # Count pairs of bytes within the pre-split pieces, as BPE does, and compare with merge 256.
    import regex  # tiktoken's dependency

    counts: dict[bytes, int] = {}
    for piece in regex.findall(SPLIT_PATTERNS["gpt2"], text):
        data = piece.encode("utf-8")
        for i in range(len(data) - 1):
            counts[data[i : i + 2]] = counts.get(data[i : i + 2], 0) + 1
    assert counts[learned.ranks[256]] == max(counts.values())  # (ties: rustbpe takes the lowest pair)


def test_streamed_in_pieces_learns_the_same_as_whole(text: str, learned: BpeTokenizer) -> None:
    chunks = [text[i : i + 777] for i in range(0, len(text), 777)]
    assert "".join(whole_pieces(chunks, 1000)) == text
    assert learn_bpe(chunks, 300, pattern="gpt2").ranks == learned.ranks


def test_a_small_text_gives_a_smaller_vocabulary() -> None:
    tokenizer = learn_bpe(["ab ab ab"], 5000)
    assert tokenizer.vocab_size < 5000
    assert tokenizer.decode(tokenizer.encode("ab ab")) == "ab ab"


def test_bad_sizes_and_patterns_are_refused() -> None:
    for size in (MIN_VOCAB - 1, MAX_VOCAB + 1, 1.5, True):
        with pytest.raises(TokenizerError, match="vocabulary size"):
            learn_bpe(["text"], size)  # type: ignore[arg-type]
    with pytest.raises(TokenizerError, match="split pattern"):
        learn_bpe(["text"], 300, pattern="gpt3")


def test_merge_progress_and_cancel(text: str) -> None:
    seen: list[tuple[int, int]] = []
    learn_bpe([text], 280, on_merges=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (280 - 257, 280 - 257)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)

    cancel = threading.Event()

    def texts():
        yield text
        cancel.set()
        yield text

    with pytest.raises(BpeCancelled):
        learn_bpe(texts(), 280, cancel=cancel)


def test_spec_round_trip_through_json(learned: BpeTokenizer, text: str) -> None:
    spec = json.loads(json.dumps(learned.to_dict()))
    assert spec["kind"] == "bpe" and spec["version"] == 1 and spec["pattern"] == "gpt2"
    assert spec["pat_str"] == SPLIT_PATTERNS["gpt2"]
    assert base64.b64decode(spec["ranks"][290]) == learned.ranks[290]
    rebuilt = load_tokenizer(spec)
    assert isinstance(rebuilt, BpeTokenizer) and rebuilt.to_dict() == spec
    assert rebuilt.encode(text + ODD) == learned.encode(text + ODD)
    assert rebuilt.decode(learned.encode(ODD)) == ODD
    assert tokenizer_name(spec) == "bpe300"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 2}, "newer"),
        ({"version": "1"}, "version"),
        ({"pattern": "gpt3"}, "split pattern"),
        ({"pat_str": ".*"}, "pat_str"),
        ({"ranks": "abc"}, "base64 strings"),
        ({"ranks": ["!!"] * 300}, "base64"),
        ({"ranks": [base64.b64encode(bytes([i ^ 1])).decode() for i in range(256)]}, "first 256"),
        ({"special_tokens": {ENDOFTEXT: 5}}, "ids from"),
        ({"special_tokens": []}, "special_tokens"),
    ],
)
def test_bad_specs_are_refused(learned: BpeTokenizer, change: dict, message: str) -> None:
    with pytest.raises(TokenizerError, match=message):
        load_tokenizer({**learned.to_dict(), **change})


def test_merge_table_counts_agree_with_encoding(learned: BpeTokenizer, text: str) -> None:
    counts = np.bincount(learned.encode_array(text), minlength=learned.vocab_size)
    table = merge_table(learned, counts)
    assert all(pair is not None for pair in table.pairs)
    for rank, pair in enumerate(table.pairs, start=256):
        assert pair is not None and max(pair) < rank
        assert learned.ranks[pair[0]] + learned.ranks[pair[1]] == learned.ranks[rank]
    assert table.train_bytes == len(text.encode("utf-8"))
    # The first merge joins the most frequent pair: it is applied as often as any later one.
    assert table.applied[256] == table.applied[256:].max()
    # Stopping after k merges: the counted curve equals encoding with the first 256 + k ranks.
    for k in (0, 1, 20, learned.n_merges):
        truncated = BpeTokenizer(learned.ranks[: 256 + k], "gpt2")
        assert table.tokens[k] == len(truncated.encode(text)), k


def test_a_trainer_that_dies_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from core.tokens import bpe_train

    dies = [sys.executable, "-c", "import sys; sys.stdin.buffer.read(); sys.stderr.write('out of memory\\n'); sys.exit(3)"]
    monkeypatch.setattr(bpe_train, "module_command", lambda module: dies)
    with pytest.raises(TokenizerError, match="exited with status 3: out of memory"):
        learn_bpe(["some text " * 100], 300)
