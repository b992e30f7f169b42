"""Device discovery, resolution, dtypes, autocast and CPU threads."""

from __future__ import annotations

import contextlib

import pytest
import torch

from core.common import devices
from core.common.devices import DeviceError


def test_cpu_is_always_listed_and_available() -> None:
    listed = {d.name: d for d in devices.list_devices()}
    assert {"cpu", "cuda", "mps"} <= set(listed)
    assert listed["cpu"].available
    assert str(devices.cpu_count()) in listed["cpu"].detail
    for info in listed.values():
        # an unavailable device always says why
        assert info.available or info.reason


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "_cuda_reason", lambda: "")
    monkeypatch.setattr(devices, "_mps_reason", lambda: "")
    assert devices.resolve_device("auto").type == "cuda"
    monkeypatch.setattr(devices, "_cuda_reason", lambda: "no CUDA GPU found")
    assert devices.resolve_device("auto").type == "mps"
    monkeypatch.setattr(devices, "_mps_reason", lambda: devices.MPS_REASON)
    assert devices.resolve_device("auto") == torch.device("cpu")
    assert devices.resolve_device() == torch.device("cpu")


def test_missing_cuda_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="'cuda' is not available: (no CUDA GPU found|this PyTorch build has no CUDA)"):
        devices.resolve_device("cuda")
    with pytest.raises(DeviceError, match="cuda:1"):
        devices.resolve_device("cuda:1")


def test_missing_mps_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="'mps' is not available: .*(Apple silicon|no MPS)"):
        devices.resolve_device("mps")


def test_unknown_device_name() -> None:
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        devices.resolve_device("tpu")


def test_cpu_dtypes() -> None:
    cpu = torch.device("cpu")
    dtypes = devices.supported_dtypes(cpu)
    assert dtypes["float32"] is None and dtypes["bfloat16"] is None
    assert dtypes["float16"]  # a reason, not None
    with pytest.raises(DeviceError, match="float16 cannot be used on cpu"):
        devices.check_dtype(cpu, "float16")
    with pytest.raises(DeviceError, match="unknown dtype 'fp8'"):
        devices.check_dtype(cpu, "fp8")


def test_autocast_context_per_device_type() -> None:
    cpu = torch.device("cpu")
    assert isinstance(devices.autocast_context(cpu, "float32"), contextlib.nullcontext)
    ctx = devices.autocast_context(cpu, "bfloat16")
    assert isinstance(ctx, torch.autocast) and ctx.device == "cpu" and ctx.fast_dtype == torch.bfloat16
    with ctx:
        out = torch.ones(4, 4) @ torch.ones(4, 4)
    assert out.dtype == torch.bfloat16


def test_mps_autocast_uses_its_own_device_type(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pretend MPS supports every dtype; the context must be built for "mps", not "cuda".
    monkeypatch.setattr(devices, "supported_dtypes", lambda d: {"float32": None, "bfloat16": None, "float16": None})
    captured = {}

    def fake_autocast(device_type: str, dtype: torch.dtype) -> contextlib.nullcontext:
        captured.update(device_type=device_type, dtype=dtype)
        return contextlib.nullcontext()

    monkeypatch.setattr(torch, "autocast", fake_autocast)
    devices.autocast_context(torch.device("mps"), "float16")
    assert captured == {"device_type": "mps", "dtype": torch.float16}


def test_grad_scaler_only_for_float16_on_gpus() -> None:
    cases = {
        ("cuda", "float16"): True,
        ("cuda", "bfloat16"): False,
        ("cuda", "float32"): False,
        ("mps", "float16"): True,
        ("mps", "bfloat16"): False,
        ("cpu", "bfloat16"): False,
    }
    for (kind, dtype), expected in cases.items():
        assert devices.needs_grad_scaler(torch.device(kind), dtype) is expected
    # The trainer builds its scaler for the device's own type: torch takes "mps" there (and, without
    # CUDA, only turns a "cuda" one off with a warning).
    torch.amp.GradScaler("mps", enabled=True)


def test_training_uses_every_core() -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert devices.use_all_cpu_cores() == devices.cpu_count() == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
