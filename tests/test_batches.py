"""BatchStream: prefetching changes neither the batches nor what a checkpoint records; with shuffle every
window of an epoch is drawn once, and a restored stream draws what the saved one would have."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.dataset.batches import BatchStream, epoch_starts

CPU = torch.device("cpu")
DATA = np.arange(1000, dtype=np.uint16)  # a window's first token is its offset


def stream(shuffle: bool, seed: int = 7, **kwargs: int) -> BatchStream:
    kwargs = {"batch_size": 4} | kwargs
    return BatchStream(DATA, block_size=8, generator=torch.Generator().manual_seed(seed), device=CPU,
                       shuffle=shuffle, **kwargs)  # type: ignore[arg-type]


def offsets(batches: BatchStream, count: int) -> list[int]:
    return [int(x[row, 0]) for x, _ in (batches.next() for _ in range(count)) for row in range(x.size(0))]


@pytest.mark.parametrize("shuffle", [False, True])
def test_prefetched_batches_are_the_batches_without_prefetch(shuffle: bool) -> None:
    plain, ahead = stream(shuffle), stream(shuffle)
    for _ in range(40):  # with shuffle, past an epoch's end (124 windows)
        x, y = plain.next()
        ahead.prefetch()
        ahead.prefetch()  # a second call fetches nothing more
        x2, y2 = ahead.next()
        assert torch.equal(x, x2) and torch.equal(y, y2)
        assert torch.equal(y[:, :-1], x[:, 1:]) and x.dtype == torch.int64  # targets are inputs shifted by one


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drawn", [0, 1, 30, 31, 32])  # an epoch here is 31 batches
def test_a_restored_stream_draws_what_the_saved_one_would(shuffle: bool, drawn: int) -> None:
    batches = stream(shuffle)
    offsets(batches, drawn)
    batches.prefetch()
    saved = batches.state()  # what a checkpoint written now records: the batch fetched ahead left out
    resumed = stream(shuffle, seed=99)  # a resumed run seeds its generator, then restores the checkpoint's
    resumed.restore(*saved)
    assert offsets(resumed, 40) == offsets(batches, 40)


def test_shuffled_windows_read_every_token_once_an_epoch() -> None:
    batches = stream(True)
    first, second = offsets(batches, 31), offsets(batches, 31)
    for epoch in (first, second):
        # 124 windows a block apart from one phase: the epoch's 992 tokens, each read once
        assert len(set(epoch)) == len(epoch) == 124 and len({offset % 8 for offset in epoch}) == 1
        assert max(epoch) + 8 < len(DATA)  # every window's targets fit
    assert first != sorted(first) and first != second  # random order, a new one each epoch
    random = offsets(stream(False), 31)
    assert len(set(random)) < len(random) or len({offset % 8 for offset in random}) > 1


@pytest.mark.parametrize("shuffle", [False, True])
def test_ranks_share_out_the_windows_one_process_would_draw(shuffle: bool) -> None:
    one = offsets(stream(shuffle, batch_size=8), 20)
    ranks = [offsets(stream(shuffle, rank=rank, world=2), 20) for rank in (0, 1)]
    for rank in (0, 1):
        assert ranks[rank] == [o for i, o in enumerate(one) if i % 8 % 2 == rank]


@pytest.mark.parametrize("length", [10, 11, 17, 100])
def test_an_epoch_fits_any_split_longer_than_a_block(length: int) -> None:
    for seed in range(20):
        starts = epoch_starts(length, 8, torch.Generator().manual_seed(seed))
        assert starts and all(0 <= s and s + 8 < length for s in starts) and len(set(starts)) == len(starts)
