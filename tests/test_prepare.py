"""prepare(): nanoGPT-identical outputs, streaming, every bad input, cancel, sources."""

from __future__ import annotations

import http.server
import io
import json
import math
import os
import pickle
import statistics
import sys
import tempfile
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from core.common import paths
from core.dataset.format import load_dataset, token_counts
from core.tokens.tokenizers import get_tokenizer
from data import sources
from data.prepare import DatasetExists, DownloadFailed, PrepareCancelled, PrepareError, Progress, prepare
from nanogpt_tui.bench.prepare import bench_prepare


def nanogpt_char(text: str, val_fraction: float = 0.1) -> tuple[bytes, bytes, dict]:
    """What nanoGPT's shakespeare_char/prepare.py makes of `text`, computed here independently."""
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    n = len(text)
    cut = int(n * (1 - val_fraction))
    train = np.array([stoi[c] for c in text[:cut]], dtype=np.uint16).tobytes()
    val = np.array([stoi[c] for c in text[cut:]], dtype=np.uint16).tobytes()
    return train, val, {"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": stoi}


def nanogpt_gpt2(text: str) -> tuple[bytes, bytes]:
    """nanoGPT's shakespeare/prepare.py: encode_ordinary of each 90/10 part."""
    enc = get_tokenizer("gpt2").encoding
    n = len(text)
    halves = text[: int(n * 0.9)], text[int(n * 0.9) :]
    return tuple(np.array(enc.encode_ordinary(h), dtype=np.uint16).tobytes() for h in halves)


def tricky_text() -> str:
    """Text full of the places where BPE pre-splitting is subtle."""
    pieces = ["Hello  world", "\n\n\n", "x.\nY", "   \n  indented", "don't we'll", "12345 678",
              "émoji 🎉🚀 here", "中文没有空格的句子。", "tab\there", "\r\nwindows\r\n", "!!! ??", " trailing   \n",
              "a\n b", "<|endoftext|>", "\u00a0nbsp\u2003em", "end."]
    rng = np.random.default_rng(0)
    return "".join(pieces[i] + (" " if rng.random() < 0.5 else "") for i in rng.integers(0, len(pieces), 600))


def nothing_written() -> bool:
    return os.listdir(paths.datasets_dir()) == []


def test_char_matches_nanogpt(small_text: Path) -> None:
    info = prepare(str(small_text), "char")
    text = small_text.read_text(encoding="utf-8")
    train, val, meta = nanogpt_char(text)
    assert (info.path / "train.bin").read_bytes() == train
    assert (info.path / "val.bin").read_bytes() == val
    with open(info.path / "meta.pkl", "rb") as f:
        assert pickle.load(f) == meta
    saved = json.loads((info.path / "dataset.json").read_text())
    assert saved["name"] == info.name == "small-char"
    assert saved["tokenizer"] == {"kind": "char", "chars": sorted(set(text))}
    assert (saved["chars"], saved["train_tokens"], saved["val_tokens"]) == (len(text), len(train) // 2, len(val) // 2)
    assert saved["dtype"] == "uint16" and saved["val_fraction"] == 0.1
    assert saved["source"] == str(small_text.resolve())
    counts = np.load(info.path / "token_counts.npy")
    assert counts.tolist() == np.bincount(np.frombuffer(train, np.uint16), minlength=meta["vocab_size"]).tolist()
    assert load_dataset(info.name) == info


def test_gpt2_matches_nanogpt(small_text: Path) -> None:
    info = prepare(str(small_text), "gpt2")
    train, val = nanogpt_gpt2(small_text.read_text(encoding="utf-8"))
    assert info.name == "small-gpt2" and info.vocab_size == 50257 and info.dtype == "uint16"
    assert (info.path / "train.bin").read_bytes() == train
    assert (info.path / "val.bin").read_bytes() == val
    assert not (info.path / "meta.pkl").exists()
    assert token_counts(info).sum() == len(train) // 2


def test_shakespeare_matches_nanogpt(shakespeare_path: Path) -> None:
    text = shakespeare_path.read_text(encoding="utf-8")
    char = prepare(str(shakespeare_path), "char", chunk_size=100_000)
    train, val, _ = nanogpt_char(text)
    assert (char.path / "train.bin").read_bytes() == train
    assert (char.path / "val.bin").read_bytes() == val
    gpt2 = prepare(str(shakespeare_path), "gpt2", chunk_size=100_000)
    train, val = nanogpt_gpt2(text)
    assert (gpt2.path / "train.bin").read_bytes() == train
    assert (gpt2.path / "val.bin").read_bytes() == val


@pytest.mark.parametrize("tokenizer", ["char", "gpt2"])
@pytest.mark.parametrize("chunk_size", [1, 3, 50])
def test_streaming_equals_one_shot(tmp_path: Path, tokenizer: str, chunk_size: int) -> None:
    path = tmp_path / "tricky.txt"
    path.write_text(tricky_text(), encoding="utf-8", newline="")
    whole = prepare(str(path), tokenizer, name="whole")
    streamed = prepare(str(path), tokenizer, name="streamed", chunk_size=chunk_size)
    for split in ("train", "val"):
        assert (streamed.path / f"{split}.bin").read_bytes() == (whole.path / f"{split}.bin").read_bytes()
    text = path.read_bytes().decode("utf-8")
    train, val = nanogpt_gpt2(text) if tokenizer == "gpt2" else nanogpt_char(text)[:2]
    assert (whole.path / "train.bin").read_bytes() == train
    assert (whole.path / "val.bin").read_bytes() == val


def test_progress_reports_both_stages(small_text: Path) -> None:
    seen: list[Progress] = []
    prepare(str(small_text), progress=seen.append, chunk_size=1000)
    size = small_text.stat().st_size
    assert {p.stage for p in seen} == {"read", "encode"}
    for stage in ("read", "encode"):
        last = [p for p in seen if p.stage == stage][-1]
        assert (last.done, last.total) == (size, size)


def test_long_file_name_gives_a_valid_default_name(tmp_path: Path, small_text: Path) -> None:
    stem = "a-very-long-title " * 12  # 216 characters; dataset names allow 100
    path = tmp_path / f"{stem}.txt"
    path.write_bytes(small_text.read_bytes())
    info = prepare(str(path))
    assert len(info.name) <= 100 and info.name.endswith("-char")
    assert info.name.startswith("a-very-long-title-a-very-long-title")
    assert load_dataset(info.name).tokens == info.tokens


def test_folder_source(tmp_path: Path) -> None:
    folder = tmp_path / "books"
    (folder / "b").mkdir(parents=True)
    (folder / "a.txt").write_text("first file without newline " * 20, encoding="utf-8")
    (folder / "b" / "c.md").write_text("second file\n" * 40, encoding="utf-8")
    (folder / "skip.py").write_text("print('not text')\n" * 40, encoding="utf-8")
    info = prepare(str(folder), block_size=8)
    text = (folder / "a.txt").read_text() + "\n" + (folder / "b" / "c.md").read_text()
    train, val, _ = nanogpt_char(text)
    assert (info.path / "train.bin").read_bytes() == train and (info.path / "val.bin").read_bytes() == val
    assert info.name == "books-char" and "2 files" in info.source
    only_py = prepare(str(folder), extensions=["py"], name="py", block_size=8)
    assert only_py.chars == len((folder / "skip.py").read_text())


def test_stdin_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, small_text: Path) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(small_text.read_bytes())))
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    info = prepare("-")
    train, _, _ = nanogpt_char(small_text.read_text(encoding="utf-8"))
    assert info.name == "stdin-char" and info.source == "stdin"
    assert (info.path / "train.bin").read_bytes() == train
    assert os.listdir(spool) == []  # the spooled copy is gone


def write_bytes(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "bad.txt"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"hello\x00world" * 50, r"binary data in .*bad\.txt at byte 5"),
        ("héllo wörld ".encode() * 50 + b"\xff more", r"not UTF-8 text: .*bad\.txt at byte 700"),
        ("abc".encode() + "é".encode()[:1], r"ends inside a character at byte 4"),
        (b"", "empty text"),
        (b"short text\n", "text too short: the val split has 2 tokens"),
    ],
)
@pytest.mark.parametrize("chunk_size", [2, 2**20])
def test_bad_text_writes_nothing(tmp_path: Path, data: bytes, message: str, chunk_size: int) -> None:
    with pytest.raises(PrepareError, match=message):
        prepare(str(write_bytes(tmp_path, data)), block_size=4, chunk_size=chunk_size)
    assert nothing_written()


def test_a_short_split_gets_advice_that_lengthens_it(small_text: Path) -> None:
    with pytest.raises(PrepareError, match="text too short: the train split.*a smaller val_fraction"):
        prepare(str(small_text), val_fraction=0.99, block_size=1000)
    with pytest.raises(PrepareError, match="text too short: the val split.*a larger val_fraction"):
        prepare(str(small_text), val_fraction=0.01, block_size=1000)
    assert nothing_written()


def test_bad_paths_and_options(tmp_path: Path, small_text: Path) -> None:
    with pytest.raises(PrepareError, match=r"no such file or folder: .*missing\.txt"):
        prepare(str(tmp_path / "missing.txt"))
    (tmp_path / "empty_folder").mkdir()
    (tmp_path / "empty_folder" / "x.csv").write_text("a,b")
    with pytest.raises(PrepareError, match=r"no \.txt, \.md, .* or \.parquet files in .*empty_folder"):
        prepare(str(tmp_path / "empty_folder"))
    with pytest.raises(PrepareError, match="val_fraction"):
        prepare(str(small_text), val_fraction=0)
    with pytest.raises(PrepareError, match="unknown tokenizer"):
        prepare(str(small_text), tokenizer="bpe2")
    with pytest.raises(PrepareError, match="bad dataset name"):
        prepare(str(small_text), name="../escape")
    assert nothing_written()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(small_text: Path) -> None:
    small_text.chmod(0)
    with pytest.raises(PrepareError, match=r"cannot read .*small\.txt"):
        prepare(str(small_text))
    assert nothing_written()


def test_overwrite(small_text: Path) -> None:
    first = prepare(str(small_text), name="mine")
    with pytest.raises(DatasetExists, match="already exists"):
        prepare(str(small_text), "gpt2", name="mine")
    assert load_dataset("mine") == first
    second = prepare(str(small_text), "gpt2", name="mine", overwrite=True)
    assert load_dataset("mine").tokenizer == second.tokenizer == {"kind": "tiktoken", "name": "gpt2"}
    assert os.listdir(paths.datasets_dir()) == ["mine"]


@pytest.mark.parametrize("stage", ["read", "encode"])
def test_cancel_leaves_nothing(small_text: Path, stage: str) -> None:
    cancel = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.stage == stage:
            cancel.set()

    with pytest.raises(PrepareCancelled):
        prepare(str(small_text), progress=on_progress, cancel=cancel, chunk_size=1000)
    assert nothing_written()


def test_shakespeare_offline_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "SHAKESPEARE_URL", "http://127.0.0.1:9/x")
    with pytest.raises(DownloadFailed, match=r"cannot download Tiny Shakespeare from http://127.0.0.1:9/x .*no network\?") as raised:
        prepare("shakespeare")
    assert raised.value.url == "http://127.0.0.1:9/x"  # the CLI and the app each say how to go on offline
    assert nothing_written()
    assert os.listdir(paths.cache_dir()) == []  # no partial download left


def test_shakespeare_download(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, small_text: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / "input.txt").write_bytes(small_text.read_bytes())
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setattr(sources, "SHAKESPEARE_URL", f"http://127.0.0.1:{server.server_port}/input.txt")
        seen: list[Progress] = []
        info = prepare("shakespeare", progress=seen.append)
    finally:
        server.shutdown()
        server.server_close()
    assert info.name == "shakespeare-char" and info.source.startswith("shakespeare")
    cached = paths.cache_dir() / sources.SHAKESPEARE_FILE
    assert cached.read_bytes() == small_text.read_bytes()
    download = [p for p in seen if p.stage == "download"]
    assert download and download[-1].done == download[-1].total == len(small_text.read_bytes())
    # The second time it comes from the cache: the server is gone.
    again = prepare("shakespeare", "gpt2")
    assert again.name == "shakespeare-gpt2"


@pytest.mark.parametrize("tokenizer", ["char", "gpt2"])
def test_bench_prepare_smoke(nanogpt_home: Path, tokenizer: str) -> None:
    figures = bench_prepare(size_mb=1, tokenizer=tokenizer, pairs=2, console=Console(file=None, quiet=True))
    assert figures["size_mb"] == pytest.approx(1, abs=0.01)
    assert figures["identical_to_single_core"] is True  # every run's files are the single-core run's
    assert len(figures["prepare_mb_per_s"]) == len(figures["bare_encode_mb_per_s"]) == 2
    medians = statistics.median(figures["prepare_mb_per_s"]) / statistics.median(figures["bare_encode_mb_per_s"])
    assert figures["ratio_prepare_to_bare"] == pytest.approx(medians)
    if tokenizer == "char":  # generated ASCII words (no Tiny Shakespeare in this home): a token a byte
        assert figures["tokens"] > 1_000_000 * 0.99
    numbers = [v for v in figures.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    assert numbers and all(math.isfinite(v) and v > 0 for v in numbers)
    assert os.environ[paths.HOME_ENV] == str(nanogpt_home)  # restored
    assert nothing_written()  # its datasets went to a temporary home
