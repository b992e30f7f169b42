"""Live device readings of the training process: GPU memory (torch's own counters), GPU utilisation (NVML,
through torch.cuda.utilization, where the nvidia-ml-py package is installed) and the process's resident
memory. The Trainer takes one at most every READING_S seconds, between steps: reading torch's counters
costs microseconds and never waits for the GPU, so training does not slow down for them.
"""

from __future__ import annotations

import torch

from core.common.process_memory import peak_resident_bytes, resident_bytes
from core.runs.events import DeviceReading

READING_S = 1.0  # seconds between two readings at most: the UI's pace, not the steps'


class DeviceReader:
    """Reads the training device; made when training starts, which is when its peak starts counting."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.nvml = device.type == "cuda"  # until utilisation proves unreadable (no NVML): then never asked again
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

    def read(self, iter_num: int) -> DeviceReading:
        reading = DeviceReading(iter_num, str(self.device), rss=resident_bytes())
        if self.device.type == "cuda":
            reading.allocated = torch.cuda.memory_allocated(self.device)
            reading.reserved = torch.cuda.memory_reserved(self.device)
            reading.peak = torch.cuda.max_memory_allocated(self.device)
            reading.utilization = self._utilization()
        else:
            if self.device.type == "mps":
                reading.allocated = torch.mps.current_allocated_memory()
                reading.reserved = torch.mps.driver_allocated_memory()
            # (the kernel updates its high-water mark lazily: it can lag the resident size read just before)
            peak = peak_resident_bytes()
            reading.peak = max(peak, reading.rss or 0) if peak is not None else None
        return reading

    def _utilization(self) -> float | None:
        if not self.nvml:
            return None
        try:
            return float(torch.cuda.utilization(self.device))
        except Exception:  # no pynvml, no driver access, an old GPU: NVML raises many kinds
            self.nvml = False
            return None
