"""Where data lives, and how its paths are shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.common import paths


def test_paths_under_the_users_home_are_shown_with_a_tilde(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "you"
    monkeypatch.setenv("HOME", str(user))
    assert paths.shown(user / ".local" / "share" / "nanogpt-tui") == "~/.local/share/nanogpt-tui"
    assert paths.shown(user) == "~"
    assert paths.shown(tmp_path / "you-too" / "x") == str(tmp_path / "you-too" / "x")  # a longer name, not home
    assert paths.shown("shakespeare (https://example.org/input.txt)") == "shakespeare (https://example.org/input.txt)"
