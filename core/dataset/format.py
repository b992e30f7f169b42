"""The on-disk dataset format (nanoGPT's, plus dataset.json and token_counts.npy; see FORMATS.md).

A dataset is written into a hidden staging folder beside the others (its .bin files fsync'ed, its
metadata by core.common.disk.write_atomic) and renamed into place only when complete, so a failed or
cancelled preparation, a full disk or a crash never leaves a half-written dataset behind. Its metadata
files are read through core.common.safe_files (core.dataset.files): a link, FIFO or device in their
place, or one too large, makes the dataset broken, with that reason, never a hang.
No torch here: the app lists and inspects datasets on its UI thread.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from core.common import paths
from core.common.disk import sync_folder, write_atomic, write_bytes_atomic, write_text_atomic
from core.common.folder_lock import LOCK_FILE, FolderLock
from core.common.lazy import lazy
from core.common.safe_files import UnsafeFile, read_bytes
from core.dataset.files import INFO_TYPES, DatasetError, info_problem, read_info_json, read_meta, tokenizer_from_meta
from core.tokens.tokenizers import GPT2_N_VOCAB, GPT2_SPEC, CharTokenizer, Tokenizer, TokenizerError, load_tokenizer

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy("numpy")  # imported on first use: the app's first paint does not wait for numpy

SPLITS = ("train", "val")
INFO_FILE = "dataset.json"
COUNTS_FILE = "token_counts.npy"
META_FILE = "meta.pkl"
COUNTS_HEADER_BYTES = 4096  # room for a .npy header (numpy writes 128 bytes)
COUNT_CHUNK = 16 * 2**20  # tokens per slice when counting or scanning a .bin file (bounded memory)


@dataclass
class DatasetInfo:
    """What dataset.json says about a dataset, and where it lives.

    `chars` and `val_fraction` are None for a plain nanoGPT folder, which does not record them, and
    `text_bytes` (the text's UTF-8 bytes, recorded since learned BPEs came) also for older datasets.
    """

    name: str
    source: str
    tokenizer: dict[str, Any]
    vocab_size: int
    dtype: str
    chars: int | None
    train_tokens: int
    val_tokens: int
    val_fraction: float | None
    created: str
    path: Path = field(compare=False)
    text_bytes: int | None = None

    @property
    def tokens(self) -> int:
        return self.train_tokens + self.val_tokens

    @property
    def chars_per_token(self) -> float | None:
        return self.chars / self.tokens if self.chars is not None and self.tokens else None

    @property
    def bytes_per_token(self) -> float | None:
        return self.text_bytes / self.tokens if self.text_bytes is not None and self.tokens else None

    @property
    def train_chars(self) -> int | None:
        """The characters of the train split (prepare's split: the first int(chars * (1 - val_fraction)))."""
        if self.chars is None or self.val_fraction is None:
            return None
        return int(self.chars * (1 - self.val_fraction))

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    def to_json(self) -> dict[str, Any]:
        """The dataset.json contents (everything but the path)."""
        data = asdict(self)
        del data["path"]
        return data


@dataclass
class DatasetStats:
    """Figures for the UI. `unused_ids` never occur in train: their embeddings stay untrained."""

    chars: int | None
    tokens: int
    vocab_size: int
    chars_per_token: float | None
    top_tokens: list[tuple[int, int]]  # (id, count in train), most frequent first
    unused_ids: list[int]


def check_name(name: str) -> str:
    """A dataset name is one folder name (core.common.paths.check_name's rule), else DatasetError."""
    try:
        return paths.check_name(name, "dataset name")
    except paths.BadName as error:
        raise DatasetError(str(error)) from None


def char_meta(tokenizer: CharTokenizer) -> dict[str, Any]:
    """nanoGPT's meta.pkl contents for a character vocabulary."""
    return {
        "vocab_size": tokenizer.vocab_size,
        "itos": dict(enumerate(tokenizer.chars)),
        "stoi": dict(tokenizer.stoi),
    }


class DatasetWriter:
    """Writes a dataset into a staging folder; `commit` renames it into place, `abort` removes it.

    As a context manager it aborts unless committed, so an exception leaves nothing behind.
    Token counts of the train split are accumulated as ids are appended.
    """

    def __init__(self, name: str, tokenizer: Tokenizer, overwrite: bool = False) -> None:
        self.name = check_name(name)
        self.tokenizer = tokenizer
        self.overwrite = overwrite
        self.dtype = np.dtype(tokenizer.dtype)
        self.target = paths.dataset_dir(name)
        self._refuse_existing()
        # A hidden sibling (same filesystem, so the final rename is atomic); mkdir keeps the umask's mode.
        self.staging = paths.datasets_dir() / f".{name}.{uuid.uuid4().hex}.tmp"
        self.staging.mkdir(parents=True)  # (datasets/ too, on first use: a read-only home fails here)
        # Held until the end: other preparations clean up staging folders that nobody holds (killed ones).
        self._lock = FolderLock(self.staging)
        self._lock.acquire()
        self.counts = np.zeros(tokenizer.vocab_size, dtype=np.int64)
        self.tokens = dict.fromkeys(SPLITS, 0)
        self._files = {split: open(self.staging / f"{split}.bin", "wb") for split in SPLITS}

    def _refuse_existing(self) -> None:
        if self.target.exists() and not self.overwrite:
            raise DatasetError(f"dataset {self.name!r} already exists at {self.target}; choose another name or overwrite it")

    def append(self, split: str, ids: np.ndarray) -> None:
        """Append token ids to a split's .bin file."""
        if split not in SPLITS:
            raise DatasetError(f"unknown split {split!r} (expected one of {', '.join(SPLITS)})")
        if ids.size and int(ids.max()) >= self.tokenizer.vocab_size:
            raise DatasetError(f"token id {int(ids.max())} is outside the vocabulary of {self.tokenizer.vocab_size}")
        # (file.write, not ndarray.tofile: a full disk then raises OSError with its errno, which tofile loses)
        self._files[split].write(np.ascontiguousarray(ids, dtype=self.dtype).data)
        self.tokens[split] += int(ids.size)
        if split == "train":
            self.counts += np.bincount(ids, minlength=self.tokenizer.vocab_size)

    def commit(self, source: str, chars: int, val_fraction: float, text_bytes: int | None = None) -> DatasetInfo:
        """Write the metadata and move the finished dataset into place."""
        for file in self._files.values():
            file.flush()
            os.fsync(file.fileno())  # on disk before the folder is renamed into place
            file.close()
        info = DatasetInfo(
            name=self.name,
            source=source,
            tokenizer=self.tokenizer.to_dict(),
            vocab_size=self.tokenizer.vocab_size,
            dtype=self.dtype.name,
            chars=chars,
            train_tokens=self.tokens["train"],
            val_tokens=self.tokens["val"],
            val_fraction=val_fraction,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            path=self.target,
            text_bytes=text_bytes,
        )
        what = f"write dataset {self.name!r}"
        write_atomic(self.staging / COUNTS_FILE, lambda file: np.save(file, self.counts, allow_pickle=False), what=what)
        if isinstance(self.tokenizer, CharTokenizer):
            meta = pickle.dumps(char_meta(self.tokenizer))
            write_bytes_atomic(self.staging / META_FILE, meta, what=what)
        text = json.dumps(info.to_json(), indent=2, ensure_ascii=False)
        write_text_atomic(self.staging / INFO_FILE, text, what=what)
        self._move_into_place()
        self._lock.release()
        (self.target / LOCK_FILE).unlink(missing_ok=True)  # it moved in with the staging folder
        return info

    def _move_into_place(self) -> None:
        self._refuse_existing()  # it may have appeared while we worked
        old = None
        try:
            if self.overwrite and self.target.exists():
                # Move the old one aside first, so the target is never missing a finished dataset for long.
                old = Path(tempfile.mkdtemp(prefix=f".{self.name}.", suffix=".old", dir=paths.datasets_dir()))
                os.replace(self.target, old / "data")
            os.replace(self.staging, self.target)
            sync_folder(paths.datasets_dir())  # the rename survives a crash
        except OSError as error:
            if old is not None and (old / "data").exists():
                os.replace(old / "data", self.target)  # put the old dataset back where it was
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            raise DatasetError(
                f"could not move dataset {self.name!r} into {self.target}: {error.strerror or error}"
                " (another preparation may have written it meanwhile)"
            ) from None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        """Remove everything written so far."""
        for file in self._files.values():
            file.close()
        shutil.rmtree(self.staging, ignore_errors=True)
        self._lock.release()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self.staging.exists():
            self.abort()


def _resolve(name_or_path: str | os.PathLike[str]) -> Path:
    text = os.fspath(name_or_path)
    candidate = Path(text).expanduser()
    if os.sep in text or (os.altsep and os.altsep in text) or text.startswith(".") or candidate.is_dir():
        if not candidate.is_dir():
            raise DatasetError(f"no dataset folder at {candidate}")
        return candidate
    folder = paths.datasets_dir() / text
    if not folder.is_dir():
        raise no_such_dataset(text)
    return folder


def no_such_dataset(name: str) -> DatasetError:
    """The error for a dataset name with no folder: it lists the names there are (a typo shows at once)."""
    names = [folder.name for folder in dataset_folders()]
    if names:
        return DatasetError(f"no dataset called {name!r}; you have: {', '.join(names)}")
    return DatasetError(f"no dataset called {name!r}: none is prepared yet in {paths.datasets_dir()} (prepare one first)")


def dataset_folders() -> list[Path]:
    """The dataset folders in the user data dir, by name (not the staging folders of preparations running)."""
    root = paths.datasets_dir()
    if not root.is_dir():  # none yet (on a read-only home it cannot be made)
        return []
    return [folder for folder in sorted(root.iterdir()) if not folder.name.startswith(".") and folder.is_dir()]


def _check_bins(folder: Path, dtype: np.dtype, expected: dict[str, int] | None) -> dict[str, int]:
    """Token counts of train.bin and val.bin from their sizes, checked against `expected`."""
    tokens = {}
    for split in SPLITS:
        path = folder / f"{split}.bin"
        if not path.is_file():
            raise DatasetError(f"{path} is missing")
        size = path.stat().st_size
        if size % dtype.itemsize:
            raise DatasetError(f"{path} is truncated ({size} bytes is not a whole number of {dtype.name} ids)")
        tokens[split] = size // dtype.itemsize
        if expected is not None and tokens[split] != expected[split]:
            raise DatasetError(f"{path} holds {tokens[split]} tokens but {INFO_FILE} says {expected[split]}")
    return tokens


def _load_info_file(folder: Path, name: str) -> DatasetInfo:
    path = folder / INFO_FILE
    data = read_info_json(path)
    problem = info_problem(data)
    if problem:
        raise DatasetError(f"{path} {problem}")
    # The folder names the dataset, not the name written inside: a copied or renamed folder is a dataset
    # of its own, and a name from a file can never lead a run folder elsewhere.
    text_bytes = data.get("text_bytes")  # optional: older datasets lack it
    if isinstance(text_bytes, bool) or not isinstance(text_bytes, int) or text_bytes < 0:
        text_bytes = None
    info = DatasetInfo(name=name, **{key: data[key] for key in INFO_TYPES}, path=folder, text_bytes=text_bytes)
    _check_bins(folder, info.np_dtype, {"train": info.train_tokens, "val": info.val_tokens})
    return info


def _load_nanogpt_folder(folder: Path, name: str) -> DatasetInfo:
    meta_path = folder / META_FILE
    if os.path.lexists(meta_path):  # (a link or FIFO there is refused by read_meta, not passed over)
        tokenizer = tokenizer_from_meta(read_meta(meta_path), meta_path)
        spec, vocab_size = tokenizer.to_dict(), tokenizer.vocab_size
    else:  # nanoGPT's gpt2 datasets have no meta.pkl; listing them should not build the encoding (~1 s)
        spec, vocab_size = dict(GPT2_SPEC), GPT2_N_VOCAB
    dtype = np.dtype(np.uint16)  # nanoGPT's prepare scripts always write uint16
    tokens = _check_bins(folder, dtype, None)
    created = datetime.fromtimestamp((folder / "train.bin").stat().st_mtime, timezone.utc)
    return DatasetInfo(
        name=name,
        source=str(folder),
        tokenizer=spec,
        vocab_size=vocab_size,
        dtype=dtype.name,
        chars=None,
        train_tokens=tokens["train"],
        val_tokens=tokens["val"],
        val_fraction=None,
        created=created.isoformat(timespec="seconds"),
        path=folder,
    )


def load_dataset(name_or_path: str | os.PathLike[str]) -> DatasetInfo:
    """A dataset by name (in the user data dir) or by folder path, ours or a plain nanoGPT one.

    Its name is its folder's. Whatever its files hold, the only errors are DatasetError and TokenizerError.
    """
    folder = _resolve(name_or_path)
    name = Path(os.path.abspath(folder)).name  # "." and ".." resolved, symlinks kept
    if folder.parent == paths.datasets_dir():  # called by its folder's name, so that must be a plain name
        try:
            paths.check_name(name, "dataset name")
        except paths.BadName as error:
            raise DatasetError(f"{error} (rename its folder)") from None
    try:
        if os.path.lexists(folder / INFO_FILE):  # (a link, FIFO or folder there is refused, not passed over)
            return _load_info_file(folder, name)
        if (folder / "train.bin").is_file():
            return _load_nanogpt_folder(folder, name)
    except OSError as error:  # an unreadable folder or file
        raise DatasetError(f"cannot read {error.filename or folder}: {error.strerror or error}") from None
    raise DatasetError(f"{folder} is not a dataset (no {INFO_FILE}, no train.bin)")


def list_datasets() -> list[DatasetInfo | tuple[Path, str]]:
    """Every dataset in the user data dir, by folder; a broken one appears as (folder, error message)."""
    result: list[DatasetInfo | tuple[Path, str]] = []
    for folder in dataset_folders():
        try:
            result.append(load_dataset(folder))
        except (DatasetError, TokenizerError) as error:
            result.append((folder, str(error)))
    return result


def open_split(info: DatasetInfo, split: str) -> np.memmap:
    """A read-only view of a split's token ids."""
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r} (expected one of {', '.join(SPLITS)})")
    path = info.path / f"{split}.bin"
    try:
        return np.memmap(path, dtype=info.np_dtype, mode="r")
    except (OSError, ValueError) as error:  # ValueError: an empty file cannot be mapped
        raise DatasetError(f"cannot open {path}: {error}") from None


def tokenizer_of(info: DatasetInfo) -> Tokenizer:
    """The tokenizer the dataset was made with."""
    try:
        return load_tokenizer(info.tokenizer)
    except TokenizerError as error:
        raise DatasetError(f"dataset {info.name!r}: {error}") from None


def token_counts(info: DatasetInfo) -> np.ndarray:
    """How often each vocabulary id occurs in train (computed from train.bin for a nanoGPT folder)."""
    path = info.path / COUNTS_FILE
    if path.exists() or path.is_symlink():
        try:  # a regular file no larger than the counts it should hold (core.common.safe_files)
            data = read_bytes(path, COUNTS_HEADER_BYTES + 8 * info.vocab_size)
            counts = np.load(io.BytesIO(data), allow_pickle=False)
        except UnsafeFile as error:
            raise DatasetError(str(error)) from None
        except (OSError, ValueError, EOFError) as error:
            raise DatasetError(f"cannot read {path}: {error}") from None
        if counts.shape != (info.vocab_size,):
            raise DatasetError(f"{path} has shape {counts.shape}, expected ({info.vocab_size},)")
        return counts
    counts = np.zeros(info.vocab_size, dtype=np.int64)
    train = open_split(info, "train")
    for start in range(0, len(train), COUNT_CHUNK):
        chunk = np.asarray(train[start : start + COUNT_CHUNK])
        if chunk.size and int(chunk.max()) >= info.vocab_size:
            raise DatasetError(f"{info.path / 'train.bin'} holds id {int(chunk.max())}, outside the vocabulary of {info.vocab_size}")
        counts += np.bincount(chunk, minlength=info.vocab_size)
    return counts


def dataset_stats(info: DatasetInfo, top: int = 20) -> DatasetStats:
    """Characters, tokens, vocabulary use: the figures the data screen shows."""
    counts = token_counts(info)
    order = np.argsort(-counts, kind="stable")[:top]
    return DatasetStats(
        chars=info.chars,
        tokens=info.tokens,
        vocab_size=info.vocab_size,
        chars_per_token=info.chars_per_token,
        top_tokens=[(int(i), int(counts[i])) for i in order if counts[i]],
        unused_ids=np.flatnonzero(counts == 0).tolist(),
    )


def delete_dataset(name: str) -> None:
    """Remove a dataset from the user data dir."""
    folder = paths.datasets_dir() / check_name(name)
    if not folder.is_dir():
        raise DatasetError(f"no dataset called {name!r} in {paths.datasets_dir()}")
    shutil.rmtree(folder)
