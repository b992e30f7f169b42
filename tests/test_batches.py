"""BatchStream: prefetching changes neither the batches nor what a checkpoint records."""

from __future__ import annotations

import numpy as np
import torch

from core.dataset.batches import BatchStream, get_batch

CPU = torch.device("cpu")


def stream(data: np.ndarray, seed: int = 7) -> BatchStream:
    return BatchStream(data, block_size=8, batch_size=4, generator=torch.Generator().manual_seed(seed), device=CPU)


def test_prefetched_batches_are_the_batches_without_prefetch() -> None:
    data = np.arange(1000, dtype=np.uint16)
    plain, ahead = stream(data), stream(data)
    for _ in range(5):
        x, y = plain.next()
        ahead.prefetch()
        ahead.prefetch()  # a second call fetches nothing more
        x2, y2 = ahead.next()
        assert torch.equal(x, x2) and torch.equal(y, y2)
        assert torch.equal(y[:, :-1], x[:, 1:]) and x.dtype == torch.int64  # targets are inputs shifted by one


def test_generator_state_leaves_out_the_batch_fetched_ahead() -> None:
    data = np.arange(1000, dtype=np.uint16)
    batches = stream(data)
    batches.next()
    batches.prefetch()
    saved = batches.generator_state()  # what a checkpoint written now records
    expected = batches.next()
    restored = torch.Generator()
    restored.set_state(saved)
    x, y = get_batch(data, 8, 4, restored, CPU)  # a resumed run's first batch
    assert torch.equal(x, expected[0]) and torch.equal(y, expected[1])
