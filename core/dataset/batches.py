"""Training batches: random windows of a token array, with the next batch fetched ahead (as nanoGPT does).

nanoGPT draws each window anywhere, independently: in a run that sees its data twice some tokens are
read four times and others never. With `shuffle` a run draws an epoch at a time instead (`epoch_starts`):
windows a block apart from a random phase, in a random order, so every token is read once per epoch. 3x96
trained 1,850 iterations (about two epochs of Tiny Shakespeare; val on bench budget's windows): 1.578,
1.576, 1.573, 1.577 against 1.587, 1.579, 1.588, 1.590 (seeds 1337, 1, 2, 3). Shorter runs gain less or
nothing beyond the seed's spread: at 1,400 iterations 1.618 and 1.613 against 1.605 and 1.614 (seeds
1337, 7); 2x64 at 275 iterations (half an epoch) 1.856 against 1.850 over three seeds.

In a distributed run (core.training.distributed) every rank draws the same `world` x batch_size windows from
the same generator and keeps rows rank, rank + world, ...: together the ranks train on exactly the
batch one process would draw with a batch world times larger, and each rank's data differ. Evaluation
(core.training.evaluation) shares out whole batches instead (`draw_starts`, `windows`), so its figure does
not depend on the number of processes.
"""

from __future__ import annotations

import numpy as np
import torch


def get_batch(
    data: np.ndarray, block_size: int, batch_size: int, generator: torch.Generator, device: torch.device,
    rank: int = 0, world: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """batch_size random windows of `data` (offsets drawn from `generator`): inputs and next-token targets.

    With `world` > 1: this rank's rows of the world x batch_size windows drawn (see the module docstring).
    """
    return windows(data, draw_starts(data, block_size, batch_size * world, generator)[rank::world], block_size, device)


def draw_starts(data: np.ndarray, block_size: int, count: int, generator: torch.Generator) -> list[int]:
    """`count` random window offsets in `data`, drawn from `generator` (a batch's worth advances it the same
    whether or not its windows are then read: a rank skips the eval batches another one measures)."""
    return torch.randint(len(data) - block_size, (count,), generator=generator).tolist()


def windows(
    data: np.ndarray, starts: list[int], block_size: int, device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The windows of `data` at `starts`: inputs and next-token targets, on `device`."""
    rows = torch.from_numpy(np.stack([data[i : i + block_size + 1] for i in starts]).astype(np.int64))
    x, y = rows[:, :-1].contiguous(), rows[:, 1:].contiguous()
    if device.type == "cuda":  # pinned memory lets the copy run while the GPU computes (non_blocking)
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)


def epoch_starts(length: int, block_size: int, generator: torch.Generator) -> list[int]:
    """One epoch's window offsets in a token array of `length` (> block_size): from a random phase, every
    block_size-th offset whose window (block_size + 1 tokens, the targets' last included) fits, shuffled."""
    phase = int(torch.randint(min(block_size, length - block_size), (1,), generator=generator))
    count = (length - 1 - phase) // block_size  # offset phase + block_size * (count - 1) is the last that fits
    return (phase + block_size * torch.randperm(count, generator=generator)).tolist()


class BatchStream:
    """The training batches of a run, drawn from `generator`, one fetched ahead on request.

    The trainer calls `prefetch()` right after a forward pass is queued, so on a GPU the next batch's
    host-to-device copy overlaps the backward pass. `state()` is what a checkpoint records: as if no batch
    had been fetched ahead, so a resumed run (`restore`) draws exactly the batch that was next.
    """

    def __init__(
        self, data: np.ndarray, block_size: int, batch_size: int, generator: torch.Generator, device: torch.device,
        rank: int = 0, world: int = 1, shuffle: bool = False,
    ) -> None:
        self.data = data
        self.rank = rank
        self.world = world
        self.block_size = block_size
        self.batch_size = batch_size
        self.generator = generator
        self.device = device
        self.shuffle = shuffle
        # With shuffle: the epoch's offsets, how many were drawn, and the generator's state before the epoch.
        self._epoch: list[int] = []
        self._used = 0
        self._epoch_state: torch.Tensor | None = None
        self._ahead: tuple[torch.Tensor, torch.Tensor] | None = None
        self._state_before_ahead: tuple[torch.Tensor, int] | None = None

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next batch: the one fetched ahead, else a new one."""
        if self._ahead is not None:
            batch, self._ahead, self._state_before_ahead = self._ahead, None, None
            return batch
        return self._draw()

    def prefetch(self) -> None:
        """Fetch the next batch now (once; a second call before `next()` does nothing)."""
        if self._ahead is None:
            self._state_before_ahead = self.state()
            self._ahead = self._draw()

    def _draw(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.shuffle:
            return get_batch(self.data, self.block_size, self.batch_size, self.generator, self.device, self.rank, self.world)
        count = self.batch_size * self.world  # every rank draws the world's windows and keeps its rows
        starts: list[int] = []
        while len(starts) < count:
            if self._used == len(self._epoch):  # (also before the first epoch)
                self._epoch_state = self.generator.get_state()
                self._epoch, self._used = epoch_starts(len(self.data), self.block_size, self.generator), 0
            taken = self._epoch[self._used : self._used + count - len(starts)]
            starts += taken
            self._used += len(taken)
        return windows(self.data, starts[self.rank :: self.world], self.block_size, self.device)

    def state(self) -> tuple[torch.Tensor, int]:
        """(the generator's state, windows of the epoch drawn) as if no batch had been fetched ahead. With
        shuffle the state is the one the epoch was drawn from (0 drawn before the first epoch)."""
        if self._ahead is not None:
            assert self._state_before_ahead is not None
            return self._state_before_ahead
        if self.shuffle and self._epoch_state is not None:
            return self._epoch_state, self._used
        return self.generator.get_state(), 0

    def restore(self, generator_state: torch.Tensor, used: int = 0) -> None:
        """Continue from a `state()`: a shuffled epoch is drawn again from its state, `used` of it skipped."""
        self.generator.set_state(generator_state)
        self._ahead = self._state_before_ahead = None
        self._epoch, self._used, self._epoch_state = [], 0, None
        if self.shuffle and used > 0:
            self._epoch_state = generator_state
            self._epoch = epoch_starts(len(self.data), self.block_size, self.generator)
            self._used = min(used, len(self._epoch))
