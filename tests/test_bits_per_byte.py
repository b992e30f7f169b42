"""Bits per byte: the byte lengths of ids, the sums of estimate_loss, the trainer's evals and `eval`'s output."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from core.model.gpt import GPT, GPTConfig
from core.tokens.bits_per_byte import bits_per_byte, token_byte_lengths
from core.tokens.tokenizers import CharTokenizer, get_tokenizer
from core.training.evaluation import add_bits_per_byte, estimate_loss


def test_byte_lengths_of_ids() -> None:
    chars = CharTokenizer(["a", "é", "€", "🎉"])
    assert token_byte_lengths(chars).tolist() == [1, 2, 3, 4]
    gpt2 = get_tokenizer("gpt2")
    lengths = token_byte_lengths(gpt2)
    assert lengths[50256] == 0  # <|endoftext|> stands for no text
    ids = gpt2.encode("Hello wörld, π ≈ 3")
    assert int(lengths[ids].sum()) == len("Hello wörld, π ≈ 3".encode())
    assert bits_per_byte(math.log(2) * 10, 5) == pytest.approx(2.0)
    assert math.isnan(bits_per_byte(1.0, 0))


def zero_model(vocab_size: int) -> GPT:
    model = GPT(GPTConfig(block_size=8, vocab_size=vocab_size, n_layer=1, n_head=1, n_embd=8))
    with torch.no_grad():
        for param in model.parameters():
            param.zero_()  # every logit 0: each target costs ln(vocab_size) nats
    return model


def test_estimate_loss_sums_nats_and_bytes_of_the_targets() -> None:
    vocab = 20
    model, cpu = zero_model(vocab), torch.device("cpu")
    token_bytes = torch.tensor([3] * (vocab - 1) + [0])  # id 19 is special: no bytes
    data = {"plain": np.full(100, 7, dtype=np.uint16), "special": np.full(100, 19, dtype=np.uint16)}
    losses = estimate_loss(model, data, 8, 2, 3, seed=0, device=cpu, token_bytes=token_bytes)
    targets = 3 * 2 * 8  # eval_iters x batch x block
    assert losses["plain_nats"] == pytest.approx(targets * math.log(vocab))
    assert losses["plain_bytes"] == 3 * targets
    assert losses["special_nats"] == 0 and losses["special_bytes"] == 0  # left out of both sums
    result = add_bits_per_byte(losses)
    assert set(result) == {"plain", "special", "plain_bpb", "special_bpb"}
    assert result["plain"] == pytest.approx(math.log(vocab))
    assert result["plain_bpb"] == pytest.approx(math.log(vocab) / (3 * math.log(2)))
    assert math.isnan(result["special_bpb"])
    # Without byte lengths, the losses alone (as before).
    assert set(estimate_loss(model, data, 8, 2, 3, seed=0, device=cpu)) == {"plain", "special"}


def test_the_trainer_records_bits_per_byte(tiny_run: Path) -> None:
    evals = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["type"] == "eval"]
    assert evals
    for record in evals:  # an ASCII char dataset: one byte per token, so bits per byte is the loss in bits
        assert record["val_bpb"] == pytest.approx(record["val_loss"] / math.log(2), rel=1e-4)
        assert record["train_bpb"] == pytest.approx(record["train_loss"] / math.log(2), rel=1e-4)
