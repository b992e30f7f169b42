"""The sampler: greedy and filtered sampling, seeds, stop strings, cancel, UTF-8-safe streaming."""

from __future__ import annotations

import threading

import pytest
import torch

from core.inference.sampler import SamplerError, SamplingConfig, TokenPiece, generate
from core.model.gpt import GPT, GPTConfig
from core.tokens.tokenizers import CharTokenizer, get_tokenizer

TEXT = "Quiet Baker: we knead the dough at dawn, then sell warm loaves by noon.\n"


def char_model(block_size: int = 64, vocab_size: int | None = None) -> tuple[GPT, CharTokenizer]:
    tokenizer = CharTokenizer.from_text(TEXT)
    torch.manual_seed(0)
    config = GPTConfig(
        block_size=block_size, vocab_size=vocab_size or tokenizer.vocab_size, n_layer=2, n_head=2, n_embd=16
    )
    return GPT(config).eval(), tokenizer


def run(model: GPT, tokenizer, prompt: str, **settings) -> list[TokenPiece]:
    return list(generate(model, tokenizer, prompt, SamplingConfig(**settings)))


@torch.inference_mode()
def reference_greedy(model: GPT, ids: list[int], n: int, penalty: float = 1.0) -> list[int]:
    """Greedy decoding with the plain forward over the whole text (it must fit the block)."""
    ids = list(ids)
    for _ in range(n):
        logits, _ = model(torch.tensor([ids]))
        logits = logits[0, -1]
        if penalty != 1.0:
            for seen in set(ids):
                value = logits[seen]
                logits[seen] = value / penalty if value > 0 else value * penalty
        ids.append(int(logits.argmax()))
    return ids[-n:]


def test_greedy_equals_argmax_of_uncached_forward() -> None:
    model, tok = char_model()
    pieces = run(model, tok, "Quiet", temperature=0, max_new_tokens=20, alternatives=3)
    assert [p.token_id for p in pieces] == reference_greedy(model, tok.encode("Quiet"), 20)
    assert "".join(p.text for p in pieces) == tok.decode([p.token_id for p in pieces])
    # prob is the model's softmax (temperature 1 for greedy), computed here from the plain forward.
    with torch.inference_mode():
        logits, _ = model(torch.tensor([tok.encode("Quiet")]))
    assert pieces[0].prob == pytest.approx(torch.softmax(logits[0, -1], -1)[pieces[0].token_id].item(), abs=1e-6)


def test_repetition_penalty_matches_reference() -> None:
    model, tok = char_model()
    pieces = run(model, tok, "we are", temperature=0, max_new_tokens=20, repetition_penalty=1.8)
    assert [p.token_id for p in pieces] == reference_greedy(model, tok.encode("we are"), 20, penalty=1.8)


def test_top_k_one_is_greedy() -> None:
    model, tok = char_model()
    greedy = run(model, tok, "the", temperature=0, max_new_tokens=15)
    top1 = run(model, tok, "the", temperature=1.5, top_k=1, max_new_tokens=15, seed=3)
    assert [p.token_id for p in top1] == [p.token_id for p in greedy]


def test_top_p_tiny_is_greedy_and_min_p_one_is_greedy() -> None:
    model, tok = char_model()
    greedy = [p.token_id for p in run(model, tok, "the", temperature=0, max_new_tokens=15)]
    assert [p.token_id for p in run(model, tok, "the", top_p=1e-6, max_new_tokens=15, seed=1)] == greedy
    assert [p.token_id for p in run(model, tok, "the", min_p=1.0, max_new_tokens=15, seed=1)] == greedy


def test_seeded_sampling_is_reproducible() -> None:
    model, tok = char_model()
    a = run(model, tok, "we", temperature=1.0, max_new_tokens=30, seed=7)
    b = run(model, tok, "we", temperature=1.0, max_new_tokens=30, seed=7)
    c = run(model, tok, "we", temperature=1.0, max_new_tokens=30, seed=8)
    assert [p.token_id for p in a] == [p.token_id for p in b]
    assert [p.token_id for p in a] != [p.token_id for p in c]


def test_cache_and_no_cache_agree_past_the_block() -> None:
    model, tok = char_model(block_size=8)
    settings = SamplingConfig(temperature=1.0, max_new_tokens=40, seed=5)
    cached = [p.token_id for p in generate(model, tok, "noon", settings, use_cache=True)]
    uncached = [p.token_id for p in generate(model, tok, "noon", settings, use_cache=False)]
    assert len(cached) == 40 and cached == uncached


def test_padded_vocabulary_ids_are_never_sampled() -> None:
    model, tok = char_model(vocab_size=64)
    pieces = run(model, tok, "the", temperature=5.0, max_new_tokens=100, seed=0)
    assert all(p.token_id < tok.vocab_size for p in pieces)


def test_stop_string_ends_and_is_not_yielded() -> None:
    model, tok = char_model()
    full = "".join(p.text for p in run(model, tok, "the", temperature=0, max_new_tokens=30))
    stop = full[12:15]  # three characters: the first two must be held back until the third decides
    pieces = run(model, tok, "the", temperature=0, max_new_tokens=30, stop=["never there", stop])
    assert "".join(p.text for p in pieces) == full[: full.find(stop)]
    assert len(pieces) == full.find(stop) + len(stop)  # one piece per token, the stop's tokens included
    assert pieces[-1].stop == stop and all(p.stop is None for p in pieces[:-1])  # the last says why it ended
    assert "".join(p.text for p in run(model, tok, "the", temperature=0, max_new_tokens=30, stop=["\x00"])) == full


def test_cancel_stops_generation() -> None:
    model, tok = char_model()
    cancel = threading.Event()
    pieces = []
    for piece in generate(model, tok, "we", SamplingConfig(max_new_tokens=50, seed=1), cancel=cancel):
        pieces.append(piece)
        if len(pieces) == 3:
            cancel.set()
    assert len(pieces) == 3
    assert list(generate(model, tok, "we", SamplingConfig(seed=1), cancel=cancel)) == []


def test_alternatives_are_sorted_and_probabilities_bounded() -> None:
    model, tok = char_model()
    for piece in run(model, tok, "we", temperature=0.7, max_new_tokens=10, alternatives=5, seed=2):
        probs = [p for _, _, p in piece.alternatives]
        assert len(probs) == 5 and probs == sorted(probs, reverse=True)
        assert sum(probs) <= 1 + 1e-6 and 0 < piece.prob <= 1
        assert all(text == tok.decode([i]) for i, text, _ in piece.alternatives)


def test_empty_prompt_starts_from_newline_for_char() -> None:
    model, tok = char_model()
    pieces = run(model, tok, "", temperature=0, max_new_tokens=10)
    assert [p.token_id for p in pieces] == reference_greedy(model, [tok.stoi["\n"]], 10)


def test_bad_prompt_and_settings_are_explained() -> None:
    model, tok = char_model()
    with pytest.raises(SamplerError, match=r"'Z'.*'é'"):
        generate(model, tok, "Zé we", SamplingConfig())
    with pytest.raises(SamplerError, match="temperature"):
        generate(model, tok, "we", SamplingConfig(temperature=-1))
    with pytest.raises(SamplerError, match="top_p"):
        generate(model, tok, "we", SamplingConfig(top_p=0))
    with pytest.raises(SamplerError, match="stop"):
        generate(model, tok, "we", SamplingConfig(stop=[""]))


def scripted_model(script: list[int], vocab_size: int) -> GPT:
    """A GPT whose greedy output from a one-token prompt is `script`, set by hand.

    The blocks add nothing (their output projections are zero), so the last hidden state is
    wte[token] + wpe[position]. Each scripted token gets its own embedding direction, and position p
    points strongly along the direction of script[p], so the tied head's argmax there is script[p].
    """
    distinct = sorted(set(script))
    config = GPTConfig(block_size=len(script) + 1, vocab_size=vocab_size, n_layer=1, n_head=1, n_embd=32)
    assert len(distinct) <= config.n_embd
    model = GPT(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "c_proj" in name:
                param.zero_()
        model.transformer.wte.weight.zero_()
        model.transformer.wpe.weight.zero_()
        for dim, token in enumerate(distinct):
            model.transformer.wte.weight[token, dim] = 1.0
        for position, token in enumerate(script):
            model.transformer.wpe.weight[position, distinct.index(token)] = 10.0
    return model


def test_utf8_characters_split_over_tokens_arrive_whole() -> None:
    tok = get_tokenizer("gpt2")
    text = "日本語の🙂と🎉!"
    script = tok.encode(text)
    split = [i for i in script if not _is_utf8(tok.token_bytes(i))]
    assert split, "the text should have tokens that hold part of a character"
    model = scripted_model(script, vocab_size=50304)
    pieces = run(model, tok, "", temperature=0, max_new_tokens=len(script))
    assert [p.token_id for p in pieces] == script  # the empty prompt started from <|endoftext|>
    assert "".join(p.text for p in pieces) == text
    assert all("\ufffd" not in p.text for p in pieces)
    assert any(p.text == "" for p in pieces)


def test_incomplete_character_at_the_end_is_replaced_not_dropped() -> None:
    tok = get_tokenizer("gpt2")
    script = tok.encode("a🙂")
    model = scripted_model(script, vocab_size=tok.vocab_size)
    pieces = run(model, tok, "", temperature=0, max_new_tokens=len(script) - 1)
    assert "".join(p.text for p in pieces) == "a\ufffd"


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_modes_are_left_as_found_between_and_after_pieces() -> None:
    model, tok = char_model()
    model.train()
    for _ in generate(model, tok, "we", SamplingConfig(max_new_tokens=3, seed=0)):
        assert not torch.is_inference_mode_enabled()
    assert model.training


@pytest.mark.parametrize("temperature", [1e-6, 1e-40])
def test_tiny_temperature_is_greedy(temperature: float) -> None:
    # 1e-40 would overflow the logits (x / 1e-40 = inf) and make the distribution NaN.
    model, tok = char_model()
    pieces = run(model, tok, "Quiet", temperature=temperature, max_new_tokens=10)
    assert [p.token_id for p in pieces] == reference_greedy(model, tok.encode("Quiet"), 10)


def test_nan_weights_are_explained() -> None:
    model, tok = char_model()
    with torch.no_grad():
        model.lm_head.weight.fill_(float("nan"))
    with pytest.raises(SamplerError, match="NaN"):
        run(model, tok, "Quiet", max_new_tokens=3)
