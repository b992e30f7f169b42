"""Devices: what is there, which dtypes each takes, autocast, grad scaling and CPU threads.

Device names are "auto", "cpu", "cuda", "cuda:N" and "mps". "auto" picks cuda, then mps, then cpu.
MPS is its own autocast device type: it never goes through CUDA's code path.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from typing import ContextManager

import torch

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}

MPS_REASON = "MPS needs Apple silicon and macOS 12.3+"


class DeviceError(ValueError):
    """A device or dtype that cannot be used here, with a message that says why."""


@dataclass
class DeviceInfo:
    name: str  # "cpu", "cuda", "cuda:N" or "mps"
    available: bool
    detail: str = ""  # e.g. GPU name and memory, or the CPU core count
    reason: str = ""  # why it is unavailable


def cpu_count() -> int:
    """Cores this process may run on (respects affinity masks and containers' CPU sets)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _cuda_reason() -> str:
    """Why CUDA cannot be used, or "" when it can."""
    if not torch.backends.cuda.is_built():
        return "this PyTorch build has no CUDA"
    if not torch.cuda.is_available():
        return "no CUDA GPU found"
    return ""


def _mps_reason() -> str:
    """Why MPS cannot be used, or "" when it can."""
    if sys.platform == "darwin" and not torch.backends.mps.is_built():
        return "this PyTorch build has no MPS"
    if not torch.backends.mps.is_available():
        return MPS_REASON
    return ""


def _gpu_detail(index: int) -> str:
    props = torch.cuda.get_device_properties(index)
    return f"{props.name}, {props.total_memory / 2**30:.1f} GiB"


def list_devices() -> list[DeviceInfo]:
    """cpu, cuda (plus cuda:N for each further GPU) and mps, each with its availability."""
    devices = [DeviceInfo("cpu", True, f"{cpu_count()} CPU cores")]
    cuda_reason = _cuda_reason()
    if cuda_reason:
        devices.append(DeviceInfo("cuda", False, reason=cuda_reason))
    else:
        devices.append(DeviceInfo("cuda", True, _gpu_detail(0)))
        for i in range(1, torch.cuda.device_count()):
            devices.append(DeviceInfo(f"cuda:{i}", True, _gpu_detail(i)))
    mps_reason = _mps_reason()
    devices.append(DeviceInfo("mps", not mps_reason, "Apple GPU" if not mps_reason else "", mps_reason))
    return devices


def resolve_device(name: str = "auto") -> torch.device:
    """The torch.device for a name; DeviceError when it is unknown or not available here."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if not _cuda_reason():
            return torch.device("cuda")
        if not _mps_reason():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        reason = _mps_reason()
        if reason:
            raise DeviceError(f"device 'mps' is not available: {reason}. Use --device cpu or auto.")
        return torch.device("mps")
    if name == "cuda" or name.startswith("cuda:"):
        reason = _cuda_reason()
        if reason:
            raise DeviceError(f"device '{name}' is not available: {reason}. Use --device cpu or auto.")
        index_text = name.partition(":")[2] or "0"
        if not index_text.isdigit():
            raise DeviceError(f"bad device '{name}': write cuda:N with N a GPU number, e.g. cuda:0")
        count = torch.cuda.device_count()
        if int(index_text) >= count:
            raise DeviceError(f"device '{name}' is not available: this machine has {count} GPU(s), "
                              f"numbered cuda:0 to cuda:{count - 1}")
        return torch.device(name)
    raise DeviceError(f"unknown device '{name}': use auto, cpu, cuda, cuda:N or mps")


def _mps_has_bfloat16() -> bool:
    # torch offers no query for this; bfloat16 on MPS depends on the macOS version.
    try:
        torch.ones(1, dtype=torch.bfloat16, device="mps")
    except (RuntimeError, TypeError):
        return False
    return True


def supported_dtypes(device: torch.device) -> dict[str, str | None]:
    """For each dtype name: None when it works on this device, else the reason it does not."""
    result: dict[str, str | None] = {"float32": None}
    if device.type == "cuda":
        result["bfloat16"] = None if torch.cuda.is_bf16_supported() else "this GPU has no bfloat16 support"
        result["float16"] = None
    elif device.type == "mps":
        result["bfloat16"] = None if _mps_has_bfloat16() else "bfloat16 on MPS needs a newer macOS"
        result["float16"] = None
    else:
        result["bfloat16"] = None
        result["float16"] = "float16 is for GPUs; on CPU use bfloat16 or float32"
    return result


def check_dtype(device: torch.device, dtype: str) -> torch.dtype:
    """The torch dtype for a name, or DeviceError when it is unknown or unsupported on the device."""
    if dtype not in DTYPES:
        raise DeviceError(f"unknown dtype '{dtype}': use one of {', '.join(DTYPES)}")
    reason = supported_dtypes(device)[dtype]
    if reason:
        raise DeviceError(f"dtype {dtype} cannot be used on {device}: {reason}")
    return DTYPES[dtype]


def autocast_context(device: torch.device, dtype: str) -> ContextManager[object]:
    """Mixed precision for the forward pass: nothing for float32, else torch.autocast on the device's own type."""
    if dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=check_dtype(device, dtype))


def needs_grad_scaler(device: torch.device, dtype: str) -> bool:
    """float16 gradients underflow without loss scaling (on any GPU); bfloat16 has float32's range and needs none."""
    return device.type in ("cuda", "mps") and dtype == "float16"


def use_all_cpu_cores(share: int = 1) -> int:
    """Set torch's intra-op threads to every core this process may use (split among `share` processes
    training side by side, as torchrun's ranks on one machine); return the count.

    No core is kept idle for a UI: the app trains in a child process (core.training.process), so its
    UI thread never holds the trainer's GIL, and costs the trainer only the CPU time it really uses.
    """
    threads = max(1, cpu_count() // share)
    torch.set_num_threads(threads)
    return threads
