"""core.common.disk.folder_size: what a run folder holds, as the delete and replace questions say it."""

from __future__ import annotations

import os
from pathlib import Path

from core.common.disk import FolderSize, folder_size
from core.common.formatting import human_size


def test_folder_size_counts_nested_files_and_links_without_following_them(tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    with outside.open("wb") as file:
        file.truncate(5 * 2**30)  # sparse: a link to it must not add 5 GiB (rmtree removes only the link)
    run = tmp_path / "run"
    (run / "sub" / "deeper").mkdir(parents=True)
    (run / "ckpt.pt").write_bytes(b"x" * 1000)
    (run / "sub" / "deeper" / "metrics.jsonl").write_bytes(b"y" * 24)
    (run / "sub" / "link.bin").symlink_to(outside)
    size = folder_size(run)
    assert size == FolderSize(3, 1000 + 24 + os.lstat(run / "sub" / "link.bin").st_size)
    assert str(size) == f"3 files, {human_size(size.bytes)}"
    assert str(FolderSize(1, 10)) == "1 file, 10 B"


def test_folder_size_of_a_folder_gone_meanwhile_is_nothing(tmp_path: Path) -> None:
    assert folder_size(tmp_path / "deleted") == FolderSize(0, 0)
