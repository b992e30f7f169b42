"""The vocabulary check of a dataset's token ids, remembered per file version in the cache folder.

An id past the vocabulary would crash the embedding lookup mid-training: training and eval check
first. No torch here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.common import paths
from core.common.disk import write_text_atomic
from core.common.safe_files import read_json
from core.dataset.format import COUNT_CHUNK, INFO_FILE, META_FILE, SPLITS, DatasetError, DatasetInfo, open_split


def check_token_ids(info: DatasetInfo, remember: bool = True) -> None:
    """DatasetError when a split holds an id outside the vocabulary (it would crash the embedding lookup
    mid-training). Every file is scanned, in slices of COUNT_CHUNK ids: ours were checked as they were
    written, but a .bin can be damaged or swapped later, and a nanoGPT folder's meta.pkl may not match.
    A file found good is not read again until it changes (CHECKED_IDS in the cache folder, written when
    `remember`): a start or an eval of a multi-GB dataset does not scan it every time."""
    checked = _read_checked_ids()
    for split in SPLITS:
        path = info.path / f"{split}.bin"
        key, stamp = str(path.resolve()), _file_stamp(path, info.vocab_size)
        if checked.get(key) == stamp:
            continue
        tokens = open_split(info, split)
        for start in range(0, len(tokens), COUNT_CHUNK):
            top = int(np.asarray(tokens[start : start + COUNT_CHUNK]).max())
            if top >= info.vocab_size:
                owner = INFO_FILE if (info.path / INFO_FILE).is_file() else META_FILE
                raise DatasetError(
                    f"{path} holds token id {top}, outside the vocabulary of {info.vocab_size} "
                    f"that its {owner} gives: the file is damaged or belongs to another dataset (prepare it again)"
                )
        if remember:
            checked.pop(key, None)  # to the end: the newest are the ones kept
            checked[key] = stamp
            _write_checked_ids(checked)


CHECKED_IDS = "checked-token-ids.json"  # in the cache folder: .bin files whose ids were all found in range
MAX_CHECKED = 256  # entries kept (the newest): files long gone are forgotten
MAX_CHECKED_BYTES = 2**20  # the file holds MAX_CHECKED entries of a path and five numbers


def _file_stamp(path: Path, vocab_size: int) -> list[int]:
    """What identifies this version of a file for the check: size, change times, and the vocabulary."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, vocab_size]


def _read_checked_ids() -> dict[str, list[int]]:
    try:
        data = read_json(paths.cache_dir() / CHECKED_IDS, MAX_CHECKED_BYTES)
    except OSError:
        return {}  # none yet, or unreadable or refused (core.common.safe_files): everything is scanned
    return data if isinstance(data, dict) else {}


def _write_checked_ids(checked: dict[str, list[int]]) -> None:
    """Written beside and moved in (two processes at once: the last one's view wins, which is still true)."""
    kept = dict(list(checked.items())[-MAX_CHECKED:])
    try:
        write_text_atomic(paths.cache_dir() / CHECKED_IDS, json.dumps(kept))
    except OSError:
        pass  # a read-only or full disk: the next start scans again, nothing worse
