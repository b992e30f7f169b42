"""Distributed data parallel (DDP) training on torchrun, as nanoGPT does it.

torchrun starts one process per GPU (or a few on a CPU) and tells each its place in environment
variables: RANK (0..WORLD_SIZE-1 over all machines), LOCAL_RANK and LOCAL_WORLD_SIZE (on this machine).
Every rank trains the same model on its own rows of each batch and DDP averages the gradients, so the
run is one process's run with a batch WORLD_SIZE times larger. Rank 0 alone writes files and prints.

Every rank must make the same collective calls in the same order, or the run hangs. So requests (stop,
save, pause) are agreed between steps by an all-reduce on a small CPU (gloo) group, and a rank that
dies breaks its peers' connections (gloo) or trips TIMEOUT (NCCL): the others fail too, and torchrun
stops whatever is left.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from core.common.devices import DeviceError, resolve_device

# How long a collective waits for a rank that stopped answering (hung, or on a machine that vanished)
# before the run fails. Long enough for rank 0 to write a big checkpoint while the others wait.
TIMEOUT = timedelta(minutes=10)

_control: Any = None  # the gloo group that agrees on requests (the default group when that is gloo too)


class DistributedError(RuntimeError):
    """The run's processes cannot work together: a bad torchrun environment, or a rank that stopped."""


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun job; the defaults are a single process."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1
    enabled: bool = False  # started by torchrun: a process group joins the ranks

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes checkpoints and metrics and prints."""
        return self.rank == 0


def from_env(environ: Mapping[str, str] = os.environ) -> Distributed:
    """The torchrun job this process belongs to (read from RANK, WORLD_SIZE, ...), or a single process."""
    if "RANK" not in environ:
        return Distributed()
    try:
        world_size = int(environ["WORLD_SIZE"])
        found = Distributed(int(environ["RANK"]), int(environ["LOCAL_RANK"]), world_size,
                            int(environ.get("LOCAL_WORLD_SIZE", world_size)), enabled=True)
    except (KeyError, ValueError):
        raise DistributedError(
            "RANK is set but WORLD_SIZE or LOCAL_RANK is missing or not a number: start distributed "
            "training with torchrun (or `nanogpt-tui train --nproc N`)"
        ) from None
    if not 0 <= found.rank < found.world_size or not 0 <= found.local_rank < found.local_world_size:
        raise DistributedError(f"bad torchrun environment: RANK {found.rank}, WORLD_SIZE {found.world_size}, "
                               f"LOCAL_RANK {found.local_rank}, LOCAL_WORLD_SIZE {found.local_world_size}")
    return found


def device_for(place: Distributed, name: str) -> torch.device:
    """This rank's device for a device setting: GPU number LOCAL_RANK on CUDA, else the CPU."""
    name = (name or "auto").strip().lower()
    if not place.enabled:
        return resolve_device(name)
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")  # (MPS has no DDP backend: auto means the CPU there)
    if name not in ("auto", "cuda"):
        raise DeviceError(f"device {name!r} cannot be used by a torchrun job: use auto, cuda or cpu "
                          "(each process takes the GPU numbered by its LOCAL_RANK)")
    resolve_device("cuda")  # says why when there is no CUDA
    count = torch.cuda.device_count()
    if place.local_rank >= count:
        raise DeviceError(f"rank {place.rank} needs GPU cuda:{place.local_rank} but this machine has {count}: "
                          f"start at most {count} processes per machine (--nproc_per_node)")
    return torch.device("cuda", place.local_rank)


def init(place: Distributed, device: torch.device) -> None:
    """Join the job's process group: NCCL between GPUs, gloo on the CPU. Requests go over gloo always."""
    global _control
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, timeout=TIMEOUT)
    _control = dist.new_group(backend="gloo", timeout=TIMEOUT) if backend == "nccl" else dist.group.WORLD


def cleanup() -> None:
    """Leave the process group (after a peer died too: its broken connections are closed)."""
    global _control
    if dist.is_initialized():
        dist.destroy_process_group()
    _control = None


def wrap(model: torch.nn.Module, device: torch.device) -> DistributedDataParallel:
    """The model in DDP: it copies rank 0's weights to every rank, then averages gradients in backward."""
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def agree(flags: Sequence[bool]) -> list[bool]:
    """Each flag set if any rank set it: every rank gets the same answer, so all act alike."""
    if _control is None:
        return list(flags)
    votes = torch.tensor([int(flag) for flag in flags], dtype=torch.int32)
    dist.all_reduce(votes, op=dist.ReduceOp.MAX, group=_control)
    return [bool(vote) for vote in votes.tolist()]


def mean(values: Sequence[float]) -> list[float]:
    """Each value averaged over the ranks (each rank measured the same number of rows)."""
    if _control is None:
        return list(values)
    total = torch.tensor(list(values), dtype=torch.float64)
    dist.all_reduce(total, op=dist.ReduceOp.SUM, group=_control)
    return (total / dist.get_world_size()).tolist()


def total(values: Sequence[float]) -> list[float]:
    """Each value summed over the ranks (float64, so the order of the additions barely shows)."""
    if _control is None:
        return list(values)
    summed = torch.tensor(list(values), dtype=torch.float64)
    dist.all_reduce(summed, op=dist.ReduceOp.SUM, group=_control)
    return summed.tolist()


def is_peer_failure(error: BaseException) -> bool:
    """Whether `error` is a collective that broke: another rank died, hung or stopped answering."""
    if _control is None:
        return False
    if isinstance(error, dist.DistError):
        return True
    text = str(error)
    # gloo reports a vanished peer as a plain RuntimeError from its transport.
    return isinstance(error, RuntimeError) and any(
        clue in text for clue in ("gloo", "Connection reset", "Connection closed", "Timed out", "NCCL")
    )
