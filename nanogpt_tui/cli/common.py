"""What every command shares: the consoles, and which engine errors print as one clear line."""

from __future__ import annotations

import sys

from rich.console import Console

console = Console()
err_console = Console(stderr=True)

# Engine exceptions whose message is written for the user, by module. A module that was never imported
# cannot have raised its error, so checking sys.modules avoids importing torch just to catch one.
USER_ERRORS = {
    "core.common.disk": "DiskWriteError",  # a full or read-only disk, in one line
    "core.common.safe_files": "UnsafeFile",  # a link, FIFO, device or oversized file refused
    "core.tokens.tokenizers": "TokenizerError",
    "core.dataset.format": "DatasetError",
    "core.model.gpt": "ModelError",
    "core.model.arch": "UnknownArch",
    "core.common.devices": "DeviceError",
    "core.training.distributed": "DistributedError",
    "core.runs.checkpoint": "CheckpointError",
    "core.inference.inspect_model": "InspectError",
    "core.inference.sampler": "SamplerError",
    "core.settings.sampling": "SamplerError",
    "core.settings.train_config": "ConfigError",
    "data.sources": "SourceError",
    "data.prepare": "PrepareError",
}


def is_user_error(error: BaseException) -> bool:
    for module_name, class_name in USER_ERRORS.items():
        module = sys.modules.get(module_name)
        cls = getattr(module, class_name, None) if module else None
        if isinstance(cls, type) and isinstance(error, cls):
            return True
    return isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError))
