"""core.model.anatomy and core.inference.inspect_model: counts, attention, logit lens, embeddings, loss at init."""

from __future__ import annotations

import math

import pytest
import torch

from core.inference.inspect_model import (
    InspectError,
    attention_and_values,
    attention_weights,
    capture,
    encode,
    logit_lens,
    measure_loss,
    model_config,
    nearest_tokens,
    param_infos,
    untrained_model,
)
from core.model.anatomy import (
    Node,
    build_anatomy,
    flops_per_token,
    memory_table,
)
from core.model.forward_pass import forward_steps
from core.model.gpt import GPT, GPTConfig
from core.tokens.tokenizers import CharTokenizer

CONFIG = GPTConfig(block_size=16, vocab_size=40, n_layer=3, n_head=4, n_embd=32, bias=True)


@pytest.fixture
def model() -> GPT:
    torch.manual_seed(0)
    model = GPT(CONFIG)
    # Trained-looking weights: make the attention patterns and lens non-trivial.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return model.eval()


def walk(node: Node):
    yield node
    for child in node.children.values():
        yield from walk(child)


def test_counts_equal_numel_per_module(model: GPT) -> None:
    anatomy = build_anatomy(param_infos(model), model_config(model))
    modules = dict(model.named_modules())
    tied = {"lm_head.weight"}  # the head is the token embedding: counted once, under wte
    for node in walk(anatomy.root):
        module = modules[node.name]
        named = module.named_parameters(prefix=node.name, remove_duplicate=False)
        assert node.count == sum(p.numel() for name, p in named if name not in tied), node.name
    assert anatomy.total == sum(p.numel() for p in model.parameters())
    assert anatomy.non_embedding == model.get_num_params()  # nanoGPT's count
    # the tied head is listed, under its own name, as tied
    lm = [p for n in walk(anatomy.root) for p in n.params if p.name == "lm_head.weight"]
    assert lm and lm[0].tied_to == "transformer.wte.weight"


def test_estimate_within_its_known_error() -> None:
    # 12·L·d² leaves out embeddings, biases and LayerNorms: per block 13d + 2·2d small terms.
    for cfg in (CONFIG, GPTConfig(block_size=64, vocab_size=65, n_layer=4, n_head=4, n_embd=128)):
        model = GPT(cfg)
        anatomy = build_anatomy(param_infos(model), model_config(model))
        blocks = sum(node.count for node in anatomy.root.children["transformer"].children["h"].children.values())
        L, d = cfg.n_layer, cfg.n_embd
        assert blocks - anatomy.estimate == L * 13 * d  # biases (9d) and two LayerNorms (4d) per block
        assert anatomy.non_embedding - anatomy.estimate == L * 13 * d + cfg.vocab_size * d + 2 * d
        assert abs(anatomy.estimate_error) < 0.25  # small models: the embedding is a large share


def test_flops_memory_and_shapes_follow_nanogpt() -> None:
    config = {"n_layer": 12, "n_head": 12, "n_embd": 768, "block_size": 1024, "vocab_size": 50304}
    n = 124_337_664 - 1024 * 768  # GPT-2 small without wpe (nanoGPT prints 123.69M)
    assert flops_per_token(n, config) == 6 * n + 12 * 12 * 12 * 64 * 1024
    rows = {name: (w, g, a) for name, w, g, a in memory_table(1000)}
    assert rows["float32"] == (4000, 4000, 8000) and rows["bfloat16"] == (2000, 2000, 4000)
    shapes = {row.step: row.shape for row in forward_steps(config, T=8)}
    assert shapes["  att = softmax(q·kᵀ/√hs)"] == "(B, 12, 8, 8)"
    assert shapes["lm_head -> logits"] == "(B, 8, 50304)"


def test_attention_rows_sum_to_one_and_are_causal(model: GPT) -> None:
    idx = torch.randint(0, 40, (2, 11))
    att = attention_weights(model, idx)
    assert att.shape == (3, 2, 4, 11, 11)
    torch.testing.assert_close(att.sum(-1), torch.ones(3, 2, 4, 11))
    assert torch.all(att.triu(diagonal=1) == 0)


@pytest.mark.parametrize("knobs", [{}, {"rope": True}, {"qk_norm": True, "rope": True, "rmsnorm": True}])
def test_attention_weights_reproduce_the_blocks_attention_output(knobs: dict[str, bool]) -> None:
    """weights @ v, heads joined, c_proj: the attention module's own output, with every attention knob.
    A model change that breaks attention_and_values fails here."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=16, vocab_size=40, n_layer=3, n_head=4, n_embd=32, **knobs)).eval()
    idx = torch.randint(0, 40, (2, 13))
    seen = capture(model, idx)
    rotary = model.rotation(0, 13)
    for block, x, out in zip(model.transformer.h, seen.attn_inputs, seen.attn_outputs):
        att, v = attention_and_values(block.attn, x, rotary)
        B, nh, T, hs = v.shape
        y = (att @ v).transpose(1, 2).reshape(B, T, nh * hs)
        torch.testing.assert_close(block.attn.c_proj(y), out, rtol=1e-4, atol=1e-5)


def test_last_layer_lens_is_the_models_own_prediction(model: GPT) -> None:
    tokenizer = CharTokenizer([chr(ord("a") + i) if i < 26 else chr(ord("A") + i - 26) for i in range(40)])
    ids = tokenizer.encode("abcabcabdef")
    for position in (0, 5, len(ids) - 1):
        rows = logit_lens(model, tokenizer, ids, position)
        assert [r.label for r in rows] == ["embeddings", "block 0", "block 1", "block 2"]
        logits, _ = model(torch.tensor([ids[: position + 1]]))
        probs = torch.softmax(logits[0, -1], -1)
        top = probs.topk(5)
        assert [t for t, _, _ in rows[-1].top] == top.indices.tolist()
        assert [p for _, _, p in rows[-1].top] == pytest.approx(top.values.tolist(), abs=1e-5)
        assert all(0 <= p <= 1 for row in rows for _, _, p in row.top)


def test_nearest_tokens_by_cosine(model: GPT) -> None:
    with torch.no_grad():
        model.transformer.wte.weight[7] = model.transformer.wte.weight[3] * 2.5  # same direction
    near = nearest_tokens(model, 3, k=5)
    assert near[0][0] == 7 and near[0][1] == pytest.approx(1.0, abs=1e-5)
    assert all(i != 3 for i, _ in near) and [s for _, s in near] == sorted((s for _, s in near), reverse=True)
    with pytest.raises(InspectError):
        nearest_tokens(model, 40)


def test_encode_cuts_to_the_block() -> None:
    tokenizer = CharTokenizer(list("ab "))
    tokens = encode(tokenizer, "ab " * 10, 16)
    assert len(tokens.ids) == 16 and tokens.total == 30 and tokens.cut
    assert tokens.texts[:3] == ["a", "b", " "]
    with pytest.raises(InspectError, match="empty"):
        encode(tokenizer, "", 16)


def test_untrained_loss_is_ln_vocab(char_dataset) -> None:
    model = untrained_model({"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32, "bias": False,
                             "dropout": 0.0, "learning_rate": 1e-3}, char_dataset.vocab_size)
    loss = measure_loss(model, char_dataset, batches=4, batch_size=8)
    assert abs(loss - math.log(char_dataset.vocab_size)) < 0.1
