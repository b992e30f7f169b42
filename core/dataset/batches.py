"""Training batches: random windows of a token array, with the next batch fetched ahead (as nanoGPT does).

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


class BatchStream:
    """The training batches of a run, drawn from `generator`, one fetched ahead on request.

    The trainer calls `prefetch()` right after a forward pass is queued, so on a GPU the next batch's
    host-to-device copy overlaps the backward pass. `generator_state()` is the state before any
    batch fetched ahead, so a checkpoint resumes with exactly the batch that was next.
    """

    def __init__(
        self, data: np.ndarray, block_size: int, batch_size: int, generator: torch.Generator, device: torch.device,
        rank: int = 0, world: int = 1,
    ) -> None:
        self.data = data
        self.rank = rank
        self.world = world
        self.block_size = block_size
        self.batch_size = batch_size
        self.generator = generator
        self.device = device
        self._ahead: tuple[torch.Tensor, torch.Tensor] | None = None
        self._state_before_ahead: torch.Tensor | None = None

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next batch: the one fetched ahead, else a new one."""
        if self._ahead is not None:
            batch, self._ahead, self._state_before_ahead = self._ahead, None, None
            return batch
        return get_batch(self.data, self.block_size, self.batch_size, self.generator, self.device, self.rank, self.world)

    def prefetch(self) -> None:
        """Fetch the next batch now (once; a second call before `next()` does nothing)."""
        if self._ahead is None:
            self._state_before_ahead = self.generator.get_state()
            self._ahead = get_batch(self.data, self.block_size, self.batch_size, self.generator, self.device, self.rank, self.world)

    def generator_state(self) -> torch.Tensor:
        """The generator's state as if no batch had been fetched ahead."""
        return self._state_before_ahead if self._ahead is not None else self.generator.get_state()
