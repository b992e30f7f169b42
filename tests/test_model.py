"""The GPT model: nanoGPT's names, loss at init, learning, and the KV cache against the plain forward."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from core.model.gpt import GPT, ContextWindow, GPTConfig, KVCache, ModelError, keep_tokens
from core.settings.train_config import NANOGPT_INCOMPATIBLE


def tiny(vocab_size: int = 37, block_size: int = 16, bias: bool = True, n_layer: int = 2) -> GPT:
    torch.manual_seed(0)
    config = GPTConfig(
        block_size=block_size, vocab_size=vocab_size, n_layer=n_layer, n_head=2, n_embd=16, dropout=0.0, bias=bias
    )
    return GPT(config).eval()


def nanogpt_keys(n_layer: int, bias: bool) -> set[str]:
    """The state_dict keys of nanoGPT's GPT, written out from its structure."""
    def linear_or_norm(prefix: str) -> list[str]:
        return [f"{prefix}.weight"] + ([f"{prefix}.bias"] if bias else [])

    keys = ["transformer.wte.weight", "transformer.wpe.weight", "lm_head.weight"]
    keys += linear_or_norm("transformer.ln_f")
    for i in range(n_layer):
        for part in ("ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj"):
            keys += linear_or_norm(f"transformer.h.{i}.{part}")
    return set(keys)


@pytest.mark.parametrize("bias", [True, False])
def test_parameter_names_are_nanogpts(bias: bool) -> None:
    model = tiny(bias=bias, n_layer=3)
    assert set(model.state_dict()) == nanogpt_keys(3, bias)
    # A nanoGPT checkpoint (compiled: "_orig_mod." prefixes) loads strictly once the prefix is stripped.
    compiled_style = {f"_orig_mod.{k}": v.clone() for k, v in tiny(bias=bias, n_layer=3).state_dict().items()}
    stripped = {k.removeprefix("_orig_mod."): v for k, v in compiled_style.items()}
    GPT(model.config).load_state_dict(stripped, strict=True)


def test_head_is_tied_and_params_counted_once() -> None:
    model = tiny()
    assert model.lm_head.weight is model.transformer.wte.weight
    c, v, b, layers = 16, 37, 16, 2
    per_block = 2 * 2 * c + (3 * c * c + 3 * c) + (c * c + c) + (4 * c * c + 4 * c) + (4 * c * c + c)
    total = v * c + b * c + layers * per_block + 2 * c
    assert model.get_num_params(non_embedding=False) == total
    assert model.get_num_params() == total - b * c


def test_bad_config_is_explained() -> None:
    with pytest.raises(ModelError, match="divisible"):
        GPTConfig(n_embd=30, n_head=4)
    with pytest.raises(ModelError, match="block_size"):
        GPTConfig(block_size=0)


def test_init_loss_is_near_uniform() -> None:
    vocab = 65
    model = tiny(vocab_size=vocab, block_size=32)
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(vocab, (4, 32), generator=gen)
    y = torch.randint(vocab, (4, 32), generator=gen)
    logits, loss = model(x, y)
    assert logits.shape == (4, 32, vocab)
    assert abs(loss.item() - math.log(vocab)) < 0.3


def test_ignore_index_and_last_position_only() -> None:
    model = tiny()
    x = torch.randint(37, (2, 8))
    y = torch.full((2, 8), -1)
    y[:, 3] = x[:, 4]
    logits, loss = model(x, y)
    expected = torch.nn.functional.cross_entropy(logits[:, 3], x[:, 4])
    assert torch.allclose(loss, expected)
    last, no_loss = model(x)
    assert no_loss is None and last.shape == (2, 1, 37)
    assert torch.allclose(last[:, 0], logits[:, -1], atol=1e-6)


def test_tiny_model_overfits_one_batch() -> None:
    model = tiny(vocab_size=20, block_size=16).train()
    gen = torch.Generator().manual_seed(2)
    x = torch.randint(20, (4, 16), generator=gen)
    y = torch.randint(20, (4, 16), generator=gen)
    optimizer = model.configure_optimizers(0.0, 1e-2, (0.9, 0.99), "cpu")
    for _ in range(150):
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1


def test_optimizer_decays_only_matrices() -> None:
    model = tiny()
    optimizer = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


@torch.inference_mode()
def test_kv_cache_equals_uncached_forward() -> None:
    model = tiny(block_size=16)
    x = torch.randint(37, (2, 16), generator=torch.Generator().manual_seed(3))
    full, _ = model(x, x)  # (2, 16, V): logits at every position
    cache = KVCache(model.config, batch_size=2)
    prefill, _ = model(x[:, :5], kv_cache=cache)
    assert torch.allclose(prefill[:, 0], full[:, 4], atol=1e-5)
    chunk, _ = model(x[:, 5:9], kv_cache=cache)  # several tokens at once after a prefill
    assert torch.allclose(chunk[:, 0], full[:, 8], atol=1e-5)
    for t in range(9, 16):
        step, _ = model(x[:, t : t + 1], kv_cache=cache)
        assert torch.allclose(step[:, 0], full[:, t], atol=1e-5)
    assert cache.length == 16
    with pytest.raises(ModelError, match="block size"):
        model(x[:, :1], kv_cache=cache)


@pytest.mark.parametrize("token_shift", [False, True])
@torch.inference_mode()
def test_generation_past_the_block_matches_uncached_window(token_shift: bool) -> None:
    block = 8
    model = knobbed(block_size=block, token_shift=True) if token_shift else tiny(block_size=block)
    keep = keep_tokens(block)
    assert keep == 6
    cached, uncached = ContextWindow(model, use_cache=True), ContextWindow(model, use_cache=False)
    tokens = [1, 2, 3]
    start = 0  # the window policy, computed here on its own: jump to the last `keep` tokens on overflow
    for _ in range(30):
        if len(tokens) - start > block:
            start = len(tokens) - keep
        reference, _ = model(torch.tensor([tokens[start:]]))
        a, b = cached.next_logits(tokens), uncached.next_logits(tokens)
        assert torch.allclose(a, reference[0, -1], atol=1e-5)
        assert torch.allclose(b, reference[0, -1], atol=1e-5)
        tokens.append(int(a.argmax()))
    assert len(tokens) > 3 * block


# ---- the modern recipe knobs --------------------------------------------------------------------

KNOBS = tuple(NANOGPT_INCOMPATIBLE)


def knobbed(block_size: int = 16, **knobs: bool) -> GPT:
    """A small model with these knobs; a token shift's gain as if learned (it starts at zero: no shift)."""
    torch.manual_seed(0)
    config = GPTConfig(block_size=block_size, vocab_size=37, n_layer=2, n_head=2, n_embd=16, dropout=0.0,
                       bias=False, **knobs)
    model = GPT(config).eval()
    if config.token_shift:
        torch.nn.init.normal_(model.shift_gain)
    return model


def test_defaults_are_nanogpts_state_dict() -> None:
    model = tiny(bias=False)
    assert not any(getattr(model.config, k) for k in KNOBS)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert set(shapes) == nanogpt_keys(2, bias=False)
    assert shapes["transformer.wpe.weight"] == (16, 16) and shapes["lm_head.weight"] == (37, 16)
    assert model.lm_head.weight is model.transformer.wte.weight


def test_each_knob_changes_what_it_should(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = set(knobbed().state_dict())
    rope = knobbed(rope=True)
    assert set(rope.state_dict()) == plain - {"transformer.wpe.weight"}  # rotary buffers are not saved
    assert rope.get_num_params() == knobbed().get_num_params()  # wpe was never counted
    assert rope.get_num_params(non_embedding=False) == knobbed().get_num_params(non_embedding=False) - 16 * 16
    untied = knobbed(untie_head=True)
    assert untied.lm_head.weight is not untied.transformer.wte.weight
    assert set(untied.state_dict()) == plain
    assert untied.get_num_params() == knobbed().get_num_params() + 37 * 16
    from core.runs.listing import count_params
    assert count_params(untied.state_dict(), tied=False) == untied.get_num_params()
    assert count_params(knobbed().state_dict()) == knobbed().get_num_params()

    calls: list[tuple[int, ...]] = []
    real = torch.nn.functional.rms_norm
    monkeypatch.setattr(torch.nn.functional, "rms_norm", lambda x, shape, *a, **k: calls.append(shape) or real(x, shape, *a, **k))
    x = torch.randint(37, (1, 8))
    knobbed()(x)
    assert calls == []
    knobbed(rmsnorm=True)(x)
    assert calls == [(16,)] * 5  # ln_1 and ln_2 of 2 blocks, ln_f
    assert not any(isinstance(m, torch.nn.LayerNorm) or type(m).__name__ == "LayerNorm" for m in knobbed(rmsnorm=True).modules())
    calls.clear()
    knobbed(qk_norm=True)(x)
    assert calls == [(8,)] * 2  # q and k of each head together (head size 8), in each of 2 layers

    # ReLU² changes the MLP's output; each knob changes the logits
    reference, _ = knobbed()(x)
    for knob in KNOBS:
        logits, _ = knobbed(**{knob: True})(x)
        assert not torch.allclose(logits, reference), knob
    mlp = knobbed(relu2=True).transformer.h[0].mlp
    h = torch.randn(1, 3, 16)
    expected = mlp.c_proj(torch.relu(mlp.c_fc(h)) ** 2)
    assert torch.allclose(mlp(h), expected)


def test_the_token_shift_adds_its_share_of_the_previous_embedding() -> None:
    plain = knobbed(rope=True)  # rope: no wpe is added to the token embeddings
    torch.manual_seed(0)
    shifted = GPT(dataclasses.replace(plain.config, token_shift=True))
    assert set(shifted.state_dict()) == set(plain.state_dict()) | {"shift_gain"}
    x = torch.randint(37, (2, 8))
    assert torch.equal(shifted(x, x)[0], plain(x, x)[0])  # its gain starts at zero: the plain model
    gain = torch.randn(16)
    with torch.no_grad():
        shifted.shift_gain.copy_(gain)
    seen = {}
    shifted.transformer.h[0].register_forward_pre_hook(lambda _m, args: seen.setdefault("x", args[0]))
    shifted(x, x)
    tok = shifted.transformer.wte(x)  # (2, 8, 16)
    assert torch.allclose(seen["x"][:, 0], tok[:, 0])  # the first token has none before it
    assert torch.allclose(seen["x"][:, 1:], tok[:, 1:] + gain * tok[:, :-1])


def test_rope_positions_are_relative() -> None:
    """With RoPE and no wpe, attention depends only on relative positions: the same two tokens at
    positions (0, 1) and (5, 6) give the second the same query-key score."""
    from core.model.gpt import apply_rotary, rotary_tables
    cos, sin = rotary_tables(16, 8)
    rotation = torch.complex(cos, sin)  # (16, 4)
    q, k = torch.randn(8), torch.randn(8)

    def score(i: int, j: int) -> torch.Tensor:
        return (apply_rotary(q, rotation[i]) * apply_rotary(k, rotation[j])).sum()

    assert torch.allclose(score(1, 0), score(6, 5), atol=1e-5)
    assert not torch.allclose(score(1, 0), score(6, 0), atol=1e-3)
    assert torch.allclose(apply_rotary(q, rotation[0]), q)  # position 0 is no rotation
    assert torch.allclose(apply_rotary(q, rotation[3]).norm(), q.norm())  # a rotation keeps lengths


@pytest.mark.parametrize("knobs", [
    *({knob: True} for knob in KNOBS), dict(rope=True, qk_norm=True, relu2=True), dict.fromkeys(KNOBS, True),
])
@torch.inference_mode()
def test_knobs_kv_cache_equals_uncached(knobs: dict[str, bool]) -> None:
    model = knobbed(**knobs)
    x = torch.randint(37, (2, 16), generator=torch.Generator().manual_seed(3))
    full, _ = model(x, x)
    cache = KVCache(model.config, batch_size=2)
    prefill, _ = model(x[:, :5], kv_cache=cache)
    assert torch.allclose(prefill[:, 0], full[:, 4], atol=1e-5)
    chunk, _ = model(x[:, 5:9], kv_cache=cache)
    assert torch.allclose(chunk[:, 0], full[:, 8], atol=1e-5)
    for t in range(9, 16):
        step, _ = model(x[:, t : t + 1], kv_cache=cache)
        assert torch.allclose(step[:, 0], full[:, t], atol=1e-5)


@torch.inference_mode()
def test_rope_generation_past_the_block_matches_uncached_window() -> None:
    block = 8
    model = knobbed(block_size=block, rope=True, qk_norm=True)
    cached, uncached = ContextWindow(model, use_cache=True), ContextWindow(model, use_cache=False)
    tokens, start = [1, 2, 3], 0
    for _ in range(30):
        if len(tokens) - start > block:
            start = len(tokens) - keep_tokens(block)
        reference, _ = model(torch.tensor([tokens[start:]]))
        a, b = cached.next_logits(tokens), uncached.next_logits(tokens)
        assert torch.allclose(a, reference[0, -1], atol=1e-5) and torch.allclose(b, reference[0, -1], atol=1e-5)
        tokens.append(int(a.argmax()))


def test_rope_needs_an_even_head_size() -> None:
    with pytest.raises(ModelError, match="even head size"):
        GPTConfig(n_embd=18, n_head=2, rope=True)


def test_knobs_round_trip_through_a_checkpoint(tmp_path) -> None:
    import dataclasses

    from core.runs.checkpoint import build_model, load_checkpoint, save_checkpoint
    model = knobbed(**{k: True for k in KNOBS})
    save_checkpoint(tmp_path / "c.pt", {"model": model.state_dict(), "model_args": dataclasses.asdict(model.config)})
    ckpt = load_checkpoint(tmp_path / "c.pt")
    assert {k: ckpt["model_args"][k] for k in KNOBS} == {k: True for k in KNOBS}
    loaded = build_model(ckpt).eval()
    x = torch.randint(37, (1, 8))
    assert torch.equal(loaded(x)[0], model(x)[0])
    # an old checkpoint's model_args (no knobs) builds nanoGPT's model
    plain = knobbed()
    args = {k: v for k, v in dataclasses.asdict(plain.config).items() if k not in KNOBS}
    assert build_model({"model": plain.state_dict(), "model_args": args}).config == plain.config


def test_config_from_args_takes_gpt_fields_only_and_round_trips_the_knobs() -> None:
    import dataclasses

    ours = GPTConfig(block_size=16, vocab_size=37, n_layer=2, n_head=2, n_embd=16, **dict.fromkeys(KNOBS, True))
    assert GPTConfig.from_args(dataclasses.asdict(ours)) == ours
    # nanoGPT's model_args have seven keys: the knobs it lacks stay off; anything else in a dict is ignored.
    nanogpt = dict(n_layer=2, n_head=2, n_embd=16, block_size=16, bias=False, vocab_size=37, dropout=0.1)
    config = GPTConfig.from_args({**nanogpt, "learning_rate": 1e-3, "out_dir": "out"})
    assert {k: getattr(config, k) for k in nanogpt} == nanogpt
    assert not any(getattr(config, knob) for knob in KNOBS)
