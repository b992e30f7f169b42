"""lazy("numpy"): a stand-in for a module that imports it on first use.

The app's first screen lists nothing that needs numpy before it is drawn, and importing numpy costs
about 100 ms of the launch: modules the first screen imports refer to numpy through this stand-in.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Forwards attribute access to the module `name`, importing it the first time."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy(name: str) -> Any:
    return LazyModule(name)
