"""metrics.jsonl: trimmed on resume with bounded memory, bad lines skipped by name, its mode kept."""

from __future__ import annotations

import json
import logging
import os
import stat
import tracemalloc
from pathlib import Path

import pytest

from core.runs import metrics


def write_records(path: Path, iters: range) -> list[str]:
    lines = [json.dumps({"type": "step", "iter": it, "loss": 1.0 / (it + 1)}) for it in iters]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return lines


def test_trim_keeps_the_files_mode(tmp_path: Path) -> None:
    path = tmp_path / metrics.METRICS_FILE
    write_records(path, range(10))
    os.chmod(path, 0o664)
    metrics.trim(tmp_path, 5, None)
    assert stat.S_IMODE(path.stat().st_mode) == 0o664
    assert [json.loads(line)["iter"] for line in path.read_text().splitlines()] == [0, 1, 2, 3, 4]


def test_an_over_long_line_is_skipped_with_bounded_memory(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / metrics.METRICS_FILE
    lines = write_records(path, range(6))
    huge = b'{"type": "step", "iter": 2, "junk": "' + b"x" * (8 * 2**20) + b'"}\n'
    with open(path, "wb") as file:  # the long line sits between ordinary records
        file.write("".join(line + "\n" for line in lines[:3]).encode())
        file.write(huge)
        file.write("".join(line + "\n" for line in lines[3:]).encode())
    tracemalloc.start()
    with caplog.at_level(logging.WARNING, logger="core.runs.metrics"):
        metrics.trim(tmp_path, 5, None)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2**20, f"trim held {peak:,} bytes for an 8 MB line"
    assert path.read_text().splitlines() == lines[:5]
    assert f"{path} line 4: longer than" in caplog.text


def test_bytes_that_are_not_utf8_are_skipped_naming_the_file_and_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / metrics.METRICS_FILE
    lines = write_records(path, range(4))
    with open(path, "ab") as file:
        file.write(b'{"type": "step", "iter": 4, "note": "\xff\xfe"}\n')
        file.write((json.dumps({"type": "step", "iter": 5}) + "\n").encode())
    with caplog.at_level(logging.WARNING, logger="core.runs.metrics"):
        metrics.trim(tmp_path, 10, None)
    assert path.read_text(encoding="utf-8").splitlines() == [*lines, json.dumps({"type": "step", "iter": 5})]
    assert f"{path} line 5: not UTF-8 text" in caplog.text
