"""Preparing record files (data.records): JSON lines, Parquet shards, a Hugging Face dataset; each record a
document, separated by <|endoftext|> for BPE tokenizers, as the same texts joined in a .txt would be."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from core.tokens.tokenizers import ENDOFTEXT, get_tokenizer
from data.prepare import PrepareError, prepare
from data.records import RecordsError, encode_documents
from nanogpt_tui.cli import main


def documents() -> list[str]:
    """Documents of varied shape: one line, several lines, ending with a newline or not, non-ASCII."""
    rng = np.random.default_rng(7)
    words = "the quick brown fox jumps over a lazy dog naïve café 你好 émoji 🎉 don't 12,345".split()
    docs = []
    for i in range(300):
        lines = [" ".join(rng.choice(words, rng.integers(1, 12))) for _ in range(rng.integers(1, 5))]
        docs.append("\n".join(lines) + ("\n" if i % 3 == 0 else ""))
    return docs


def joined(docs: list[str], separator: str) -> str:
    """The .txt a person would write: each document followed by the separator (for char: a newline where it
    does not end with one)."""
    if separator == "\n":
        return "".join(d if d.endswith("\n") else d + "\n" for d in docs)
    return "".join(d + separator for d in docs)


def tokens(info) -> tuple[bytes, bytes]:
    return (info.path / "train.bin").read_bytes(), (info.path / "val.bin").read_bytes()


def write_jsonl(path: Path, docs: list[str], field: str = "text") -> Path:
    lines = "".join(json.dumps({"id": i, field: d}) + "\n" for i, d in enumerate(docs))
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(lines.encode()))
    else:
        path.write_text(lines, encoding="utf-8")
    return path


@pytest.mark.parametrize("tokenizer", ["gpt2", "char"])
def test_jsonl_gives_the_tokens_of_the_texts_joined_with_separators(tmp_path: Path, tokenizer: str) -> None:
    docs = documents()
    text = tmp_path / "joined.txt"
    text.write_text(joined(docs, ENDOFTEXT if tokenizer == "gpt2" else "\n"), encoding="utf-8", newline="")
    expected = tokens(prepare(str(text), tokenizer, name="txt", special_tokens=tokenizer == "gpt2"))
    for name in ("docs.jsonl", "docs.jsonl.gz"):
        info = prepare(str(write_jsonl(tmp_path / name, docs)), tokenizer, name=name.replace(".", "-"))
        assert tokens(info) == expected
    # Streamed in small chunks (cut between documents and inside them), on one thread: the same again.
    info = prepare(str(tmp_path / "docs.jsonl"), tokenizer, name="small-chunks", chunk_size=40, workers=1)
    assert tokens(info) == expected
    if tokenizer == "gpt2":  # each separator is the one end-of-text token, not its 13 characters' pieces
        ids = np.concatenate([np.frombuffer(part, np.uint16) for part in expected])
        assert int((ids == 50256).sum()) == len(docs)


def test_a_three_shard_parquet_folder_gives_the_tokens_of_the_texts_joined_with_separators(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    docs = documents()
    folder = tmp_path / "shards"
    folder.mkdir()
    for shard, start in enumerate(range(0, len(docs), 100)):  # nanochat's layout: shard_00000.parquet, ...
        table = pa.table({"id": list(range(start, start + 100)), "content": docs[start : start + 100]})
        pq.write_table(table, folder / f"shard_{shard:05d}.parquet", row_group_size=32)
    text = tmp_path / "joined.txt"
    text.write_text(joined(docs, ENDOFTEXT), encoding="utf-8", newline="")
    expected = tokens(prepare(str(text), "gpt2", name="txt", special_tokens=True))
    info = prepare(str(folder), "gpt2", name="shards", text_field="content")
    assert tokens(info) == expected
    assert info.source.startswith(f"folder {folder.resolve()} (3 files, field 'content')")
    with pytest.raises(PrepareError, match="shard_00000.parquet: no column 'text' \\(its columns: id, content\\); choose one with --text-field"):
        prepare(str(folder), "gpt2", name="wrong-field")


def test_encode_documents_is_tiktokens_encode_with_endoftext_allowed() -> None:
    gpt2 = get_tokenizer("gpt2")
    text = f"a{ENDOFTEXT}{ENDOFTEXT} b\n{ENDOFTEXT}c d{ENDOFTEXT}"
    expected = gpt2.encoding.encode(text, allowed_special={ENDOFTEXT})
    assert encode_documents(gpt2, text).tolist() == expected and expected.count(50256) == 4


def test_bad_records_are_named_by_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n\n{"body": "x", "id": 3}\n', encoding="utf-8")
    with pytest.raises(PrepareError, match=r"bad.jsonl line 3: no field 'text' \(its fields: body, id\); choose one with --text-field"):
        prepare(str(path), "gpt2")
    path.write_text('{"text": "fine"}\n{"text": 12}\n', encoding="utf-8")
    with pytest.raises(PrepareError, match="bad.jsonl line 2: its 'text' is a int, not a string"):
        prepare(str(path), "gpt2")
    path.write_text('{"text": "fine"}\n{"text": "cut sho\n', encoding="utf-8")
    with pytest.raises(PrepareError, match="bad.jsonl line 2: not JSON"):
        prepare(str(path), "char")
    path.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(PrepareError, match="bad.jsonl line 1: a list, not a record"):
        prepare(str(path), "char")
    path.write_bytes(b"[" * 100_000 + b"\n")
    with pytest.raises(PrepareError, match="bad.jsonl line 1: JSON nested too deeply"):
        prepare(str(path), "char")
    gz = tmp_path / "bad.jsonl.gz"
    gz.write_bytes(b"not gzip at all")
    with pytest.raises(PrepareError, match="cannot read .*bad.jsonl.gz"):
        prepare(str(gz), "char")
    with pytest.raises(PrepareError, match="special tokens: the char tokenizer has no <\\|endoftext\\|>"):
        prepare(str(path), "char", special_tokens=True)


def test_a_missing_optional_library_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now fails, as when it is not installed
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    monkeypatch.setitem(sys.modules, "datasets", None)
    (tmp_path / "a.parquet").write_bytes(b"PAR1")
    with pytest.raises(PrepareError, match=r"\(Parquet\) needs the pyarrow package: pip install pyarrow \(or pip install 'nanogpt-tui\[parquet\]'\)"):
        prepare(str(tmp_path / "a.parquet"), "gpt2")
    with pytest.raises(PrepareError, match=r"streaming hf:x/y needs the datasets package: .*nanogpt-tui\[hf\]"):
        prepare("hf:x/y", "gpt2")


def test_a_hugging_face_dataset_is_streamed_into_a_spool_then_prepared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasets = pytest.importorskip("datasets")
    docs = documents()
    asked = []

    def load_dataset(name: str, config: str | None, split: str, streaming: bool):
        asked.append((name, config, split, streaming))
        return iter([{"story": d, "n": i} for i, d in enumerate(docs)])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)  # the hub is not reachable from tests
    info = prepare("hf:someone/stories:small", "gpt2", text_field="story")
    assert asked == [("someone/stories", "small", "train", True)]
    assert info.name == "stories-gpt2" and info.source == "hf:someone/stories:small (train split, field 'story')"
    text = tmp_path / "joined.txt"
    text.write_text(joined(docs, ENDOFTEXT), encoding="utf-8", newline="")
    assert tokens(info) == tokens(prepare(str(text), "gpt2", name="txt", special_tokens=True))


def test_a_hugging_face_dataset_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No network is tried at all: the hub reads these when it is first imported, and another test may
    # have imported it already, so its settings are set too.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    datasets = pytest.importorskip("datasets")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(PrepareError, match=r"cannot stream hf:nobody/no-such-set from the Hugging Face Hub \(.*\); no network"):
        prepare("hf:nobody/no-such-set", "gpt2")
    with pytest.raises(RecordsError, match="name a Hugging Face dataset"):
        from data.records import parse_hf

        parse_hf("hf:")


def test_cli_prepare_takes_a_text_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "notes.jsonl", documents(), field="body")
    assert main(["prepare", str(path), "--tokenizer", "gpt2", "--text-field", "body"]) == 0
    assert "Prepared notes-gpt2" in capsys.readouterr().out
    assert main(["prepare", str(path), "--tokenizer", "gpt2", "--name", "again"]) == 1
    assert "no field 'text' (its fields: id, body)" in " ".join(capsys.readouterr().err.split())
