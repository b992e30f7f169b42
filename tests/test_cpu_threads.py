"""limit_spinning: libgomp's spin count set before torch loads, the user's own choice kept."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core.common.child_process import ROOT
from core.common.cpu_threads import SPIN_COUNT, limit_spinning


def test_the_spin_count_is_set_unless_the_user_chose_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    limit_spinning()
    assert os.environ["GOMP_SPINCOUNT"] == str(SPIN_COUNT)
    monkeypatch.setenv("GOMP_SPINCOUNT", "123")
    limit_spinning()
    assert os.environ["GOMP_SPINCOUNT"] == "123"
    monkeypatch.delenv("GOMP_SPINCOUNT")
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    limit_spinning()
    assert "GOMP_SPINCOUNT" not in os.environ


def test_the_command_sets_it_before_torch_loads() -> None:
    # main() runs a command that loads torch (`bench gpu` on this CPU-only machine says there is no GPU);
    # what the environment held when torch loaded is what libgomp read.
    code = ("import os, sys\n"
            "from nanogpt_tui.cli import main\n"
            "import builtins\n"
            "real = builtins.__import__\n"
            "def spy(name, *a, **k):\n"
            "    if name == 'torch' and 'torch' not in sys.modules:\n"
            "        print('torch loads with', os.environ.get('GOMP_SPINCOUNT'))\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = spy\n"
            "main(['bench', 'gpu'])\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert f"torch loads with {SPIN_COUNT}" in result.stdout, result.stdout + result.stderr
