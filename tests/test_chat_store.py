"""Chat's files (settings, sessions) and the stop strings' typed form, without the app."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from core.common import paths
from core.settings.sampling import SamplerError, format_stop_strings, parse_stop_strings
from nanogpt_tui import chat_store


@pytest.mark.parametrize(
    "typed, stops",
    [
        ("", []),
        ("   ", []),
        ("ROMEO:, JULIET:", ["ROMEO:", "JULIET:"]),
        (r"\n\n", ["\n\n"]),
        (r"a\,b , \sx\s", ["a,b", " x "]),
        (r"tab\there", ["tab\there"]),
        (r"back\\slash", ["back\\slash"]),
    ],
)
def test_stop_strings_are_typed_on_one_line(typed: str, stops: list[str]) -> None:
    assert parse_stop_strings(typed) == stops
    assert parse_stop_strings(format_stop_strings(stops)) == stops


@pytest.mark.parametrize("typed, error", [("a,,b", "must not be empty"), ("a,", "must not be empty"),
                                          (r"\q", r"unknown escape \q"), ("end\\", "unknown escape")])
def test_bad_stop_strings_are_refused(typed: str, error: str) -> None:
    with pytest.raises(SamplerError, match=error.replace("\\", "\\\\")):
        parse_stop_strings(typed)


def test_the_config_dir_follows_a_chosen_home(nanogpt_home) -> None:
    assert paths.config_dir() == nanogpt_home / "config" and paths.config_dir().is_dir()


def test_settings_round_trip_and_the_newest_write_wins() -> None:
    assert chat_store.read_settings() == {}
    older, newer = chat_store.new_version(), chat_store.new_version()
    chat_store.write_settings({"temperature": 0.5}, newer)
    chat_store.write_settings({"temperature": 0.9}, older)  # arriving late
    assert chat_store.read_settings() == {"temperature": 0.5}
    assert stat.S_IMODE(os.stat(chat_store.settings_path()).st_mode) == 0o644
    assert not [p for p in paths.config_dir().iterdir() if p.name != "chat.json"]  # no temp file left behind
    chat_store.settings_path().write_text("[1, 2]")
    with pytest.raises(chat_store.StoreError, match="not a JSON object"):
        chat_store.read_settings()


def test_sessions_round_trip_and_a_broken_file_is_listed_with_its_error() -> None:
    session = chat_store.Session(chat_store.new_session_id(), "/runs/x/ckpt.pt", "2026-11-26T21:00:00",
                                 [("ROMEO:", [(5, " O", 0.25), (7, "h", 0.5)]), ("", [(1, "!", 1.0)])])
    path = chat_store.save_session(session, chat_store.new_version())
    assert chat_store.load_session(path) == session
    data = json.loads(path.read_text())
    data["turns"][0]["reply"][0] = ["five", " O", 0.25]
    (paths.sessions_dir() / "bad.json").write_text(json.dumps(data))
    (paths.sessions_dir() / "torn.json").write_text('{"id": ')
    listed = chat_store.list_sessions()
    assert [s.title for s in listed if not s.error] == ["ROMEO:"] and listed[0].turns == 2
    assert sorted(s.path.name for s in listed if s.error) == ["bad.json", "torn.json"]
    with pytest.raises(chat_store.StoreError, match="bad.json: not a chat session"):
        chat_store.load_session(paths.sessions_dir() / "bad.json")


def test_a_save_killed_midway_leaves_the_previous_session() -> None:
    session = chat_store.Session(chat_store.new_session_id(), None, "2026-11-26T21:00:00", [("Hi", [(1, "a", 0.5)])])
    path = chat_store.save_session(session, chat_store.new_version())
    # Another process saves one more turn and is killed half-way through writing the JSON.
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from core.common import disk\n"
        "from nanogpt_tui import chat_store\n"
        "real = disk.write_atomic\n"
        "def dying(path, write, **kwargs):\n"
        "    def half(file):\n"
        "        write(file); file.flush(); file.truncate(file.tell() // 2); file.flush()\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    real(path, half, **kwargs)\n"
        "disk.write_atomic = dying\n"
        "session = chat_store.load_session(Path(sys.argv[1]))\n"
        "session.turns.append(('more', []))\n"
        "chat_store.save_session(session, chat_store.new_version())\n"
    )
    root = Path(__file__).resolve().parents[1]
    killed = subprocess.run([sys.executable, "-c", code, str(path)], cwd=root, env=os.environ, capture_output=True)
    assert killed.returncode == -signal.SIGKILL
    assert chat_store.load_session(path) == session
    assert [s.path for s in chat_store.list_sessions()] == [path]
