"""The on-disk dataset format: writing, loading (ours and nanoGPT's), listing, safety."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from core.common import paths
from core.dataset.format import (
    DatasetError,
    DatasetInfo,
    DatasetWriter,
    dataset_stats,
    delete_dataset,
    list_datasets,
    load_dataset,
    open_split,
    read_meta,
    token_counts,
    tokenizer_of,
)
from core.dataset.token_check import check_token_ids
from core.tokens.tokenizers import CharTokenizer

TEXT = "hello world, hello dataset\n" * 10


def write(name: str = "demo", overwrite: bool = False) -> DatasetInfo:
    tok = CharTokenizer.from_text(TEXT)
    with DatasetWriter(name, tok, overwrite=overwrite) as writer:
        writer.append("train", tok.encode_array(TEXT[:200]))
        writer.append("train", tok.encode_array(TEXT[200:250]))
        writer.append("val", tok.encode_array(TEXT[250:]))
        return writer.commit("test text", len(TEXT), 0.1)


def datasets_entries() -> list[str]:
    return sorted(os.listdir(paths.datasets_dir()))


def test_write_and_load() -> None:
    info = write()
    assert datasets_entries() == ["demo"]
    assert sorted(os.listdir(info.path)) == ["dataset.json", "meta.pkl", "token_counts.npy", "train.bin", "val.bin"]
    loaded = load_dataset("demo")
    assert loaded == info and loaded.path == info.path
    assert (info.train_tokens, info.val_tokens, info.tokens) == (250, len(TEXT) - 250, len(TEXT))
    assert info.chars_per_token == 1.0 and info.dtype == "uint16"
    saved = json.loads((info.path / "dataset.json").read_text())
    assert set(saved) == {"name", "source", "tokenizer", "vocab_size", "dtype", "chars", "train_tokens",
                          "val_tokens", "val_fraction", "created", "text_bytes"}
    # Older datasets have no text_bytes (nor does this one, written without): bytes per token is unknown.
    del saved["text_bytes"]
    (info.path / "dataset.json").write_text(json.dumps(saved))
    assert load_dataset("demo").text_bytes is None and load_dataset("demo").bytes_per_token is None
    stoi = {c: i for i, c in enumerate(sorted(set(TEXT)))}
    train = open_split(info, "train")
    assert train.tolist() == [stoi[c] for c in TEXT[:250]]
    with pytest.raises(ValueError):
        train[0] = 1  # read-only
    assert tokenizer_of(info).decode(open_split(info, "val")) == TEXT[250:]


def test_meta_pkl_is_nanogpts() -> None:
    info = write()
    with open(info.path / "meta.pkl", "rb") as f:
        meta = pickle.load(f)
    chars = sorted(set(TEXT))
    assert meta == {"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": {c: i for i, c in enumerate(chars)}}


def test_token_counts_and_stats() -> None:
    info = write()
    tok = tokenizer_of(info)
    counted = np.zeros(tok.vocab_size, dtype=np.int64)
    for c in TEXT[:250]:
        counted[tok.stoi[c]] += 1
    assert token_counts(info).tolist() == counted.tolist()
    stats = dataset_stats(info, top=3)
    assert stats.top_tokens[0] == (tok.stoi["l"], TEXT[:250].count("l"))
    assert len(stats.top_tokens) == 3
    assert stats.unused_ids == [i for i, c in enumerate(tok.chars) if c not in TEXT[:250]]


def test_overwrite_refused_then_allowed() -> None:
    write()
    with pytest.raises(DatasetError, match="already exists"):
        write()
    info = write(overwrite=True)
    assert datasets_entries() == ["demo"] and load_dataset("demo") == info


def test_a_dataset_appearing_during_commit_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    tok = CharTokenizer.from_text(TEXT)
    with pytest.raises(DatasetError, match="could not move dataset 'demo'"):
        with DatasetWriter("demo", tok) as writer:
            writer.append("train", tok.encode_array(TEXT))
            writer.append("val", tok.encode_array(TEXT))
            # Another preparation writes "demo" right after the writer checked that it was free.
            check = writer._refuse_existing

            def racing() -> None:
                check()
                (writer.target / "theirs").mkdir(parents=True)

            monkeypatch.setattr(writer, "_refuse_existing", racing)
            writer.commit("test text", len(TEXT), 0.5)
    assert datasets_entries() == ["demo"]
    assert os.listdir(paths.datasets_dir() / "demo") == ["theirs"]


def test_a_failed_overwrite_puts_the_old_dataset_back(monkeypatch: pytest.MonkeyPatch) -> None:
    old = write()
    real_replace = os.replace

    def failing(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(src).name.endswith(".tmp") and Path(src).is_dir():  # the staging folder's move into place
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    with monkeypatch.context() as patch, pytest.raises(DatasetError, match="No space left on device"):
        patch.setattr(os, "replace", failing)
        write(overwrite=True)
    assert datasets_entries() == ["demo"]  # no hidden .old or staging folder left
    assert load_dataset("demo") == old


def test_exception_inside_writer_leaves_nothing() -> None:
    tok = CharTokenizer.from_text(TEXT)
    with pytest.raises(RuntimeError):
        with DatasetWriter("broken", tok) as writer:
            writer.append("train", tok.encode_array(TEXT))
            raise RuntimeError("boom")
    assert datasets_entries() == []


def test_writer_checks_input() -> None:
    tok = CharTokenizer.from_text("ab")
    with DatasetWriter("x", tok) as writer:
        with pytest.raises(DatasetError, match="split"):
            writer.append("test", np.zeros(3, dtype=np.uint16))
        with pytest.raises(DatasetError, match="outside"):
            writer.append("train", np.array([5], dtype=np.uint16))
    assert datasets_entries() == []


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "../up", "-x", "a b"])
def test_bad_names(name: str) -> None:
    with pytest.raises(DatasetError, match="bad dataset name"):
        DatasetWriter(name, CharTokenizer.from_text("ab"))


def test_nanogpt_folder_with_meta(tmp_path: Path) -> None:
    chars = sorted(set(TEXT))
    stoi = {c: i for i, c in enumerate(chars)}
    folder = tmp_path / "shakespeare_char"
    folder.mkdir()
    np.array([stoi[c] for c in TEXT[:200]], dtype=np.uint16).tofile(folder / "train.bin")
    np.array([stoi[c] for c in TEXT[200:]], dtype=np.uint16).tofile(folder / "val.bin")
    with open(folder / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": stoi}, f)
    info = load_dataset(folder)
    assert (info.name, info.train_tokens, info.val_tokens, info.chars) == ("shakespeare_char", 200, len(TEXT) - 200, None)
    assert tokenizer_of(info).decode(open_split(info, "train")) == TEXT[:200]
    counts = token_counts(info)  # computed from train.bin: there is no token_counts.npy
    assert counts[stoi["o"]] == TEXT[:200].count("o")


@pytest.mark.parametrize("split", ["train", "val"])
def test_nanogpt_folder_with_ids_outside_its_vocabulary(tmp_path: Path, split: str) -> None:
    chars = ["a", "b", "c"]
    ids = {"train": [0, 1, 2, 1], "val": [2, 0]}
    ids[split].append(len(chars))  # one id past the vocabulary
    for name, values in ids.items():
        np.array(values, dtype=np.uint16).tofile(tmp_path / f"{name}.bin")
    with open(tmp_path / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": len(chars), "itos": dict(enumerate(chars))}, f)
    with pytest.raises(DatasetError, match=f"{split}.bin holds token id 3, outside the vocabulary of 3"):
        check_token_ids(load_dataset(tmp_path))
    check_token_ids(write())  # ours: checked as written


def test_nanogpt_folder_without_meta_is_gpt2(tmp_path: Path) -> None:
    np.array([15496, 995, 0], dtype=np.uint16).tofile(tmp_path / "train.bin")
    np.array([11], dtype=np.uint16).tofile(tmp_path / "val.bin")
    info = load_dataset(tmp_path)
    assert info.tokenizer == {"kind": "tiktoken", "name": "gpt2"} and info.vocab_size == 50257
    assert tokenizer_of(info).decode(open_split(info, "train")) == "Hello world!"


class Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "meta.pkl"
    path.write_bytes(pickle.dumps({"vocab_size": 2, "itos": Exploit(marker)}))
    with pytest.raises(DatasetError, match="not a plain nanoGPT meta.pkl"):
        read_meta(path)
    assert not marker.exists()
    # Plain containers still load.
    path.write_bytes(pickle.dumps({"a": [1, 2.5, "x", (1, 2)], "b": {3}}))
    assert read_meta(path) == {"a": [1, 2.5, "x", (1, 2)], "b": {3}}


def test_list_shows_broken_datasets() -> None:
    write("good")
    info = write("truncated")
    with open(info.path / "train.bin", "ab") as f:
        f.write(b"\0")
    (paths.datasets_dir() / "empty").mkdir()
    listed = list_datasets()
    assert [x.name if isinstance(x, DatasetInfo) else x[0].name for x in listed] == ["empty", "good", "truncated"]
    assert isinstance(listed[1], DatasetInfo)
    assert "not a dataset" in listed[0][1]
    assert "truncated" in listed[2][1]


def test_bad_dataset_json() -> None:
    info = write()
    (info.path / "dataset.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_dataset("demo")
    (info.path / "dataset.json").write_text(json.dumps({"name": "demo"}))
    with pytest.raises(DatasetError, match="lacks"):
        load_dataset("demo")


def test_missing_and_delete() -> None:
    with pytest.raises(DatasetError, match="no dataset called 'nope'"):
        load_dataset("nope")
    with pytest.raises(DatasetError, match="no dataset folder"):
        load_dataset("/no/such/folder")
    write()
    delete_dataset("demo")
    assert datasets_entries() == []
    with pytest.raises(DatasetError):
        delete_dataset("demo")


def test_a_split_found_good_is_not_scanned_again_until_it_changes(
    char_dataset: DatasetInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.dataset.token_check

    check_token_ids(char_dataset)  # scanned: good
    opened: list[str] = []
    real_open_split = core.dataset.token_check.open_split
    monkeypatch.setattr(core.dataset.token_check, "open_split", lambda info, split: opened.append(split) or real_open_split(info, split))
    check_token_ids(char_dataset)
    assert opened == []  # a multi-GB dataset is not read again at every start
    ids = np.fromfile(char_dataset.path / "val.bin", dtype=np.uint16)
    ids[0] = char_dataset.vocab_size
    ids.tofile(char_dataset.path / "val.bin")  # damaged since: same size, new times
    with pytest.raises(DatasetError, match="val.bin holds token id"):
        check_token_ids(char_dataset)
    assert opened == ["val"]


def test_a_slow_writers_staging_folder_survives_anothers_cleanup(nanogpt_home: Path) -> None:
    from data.prepare import remove_stale_staging

    # Any DatasetWriter (the benches use one too), long at work: its folder is old but held.
    with DatasetWriter("slow", CharTokenizer(list("ab"))) as writer:
        past = writer.staging.stat().st_mtime - 3600
        os.utime(writer.staging, (past, past))
        assert writer.staging not in remove_stale_staging()
        assert writer.staging.is_dir()
        writer.append("train", np.array([0, 1] * 40))
        writer.append("val", np.array([1, 0] * 40))
        info = writer.commit("test", 160, 0.5)
    assert sorted(p.name for p in info.path.iterdir()) == sorted(["train.bin", "val.bin", "token_counts.npy", "meta.pkl", "dataset.json"])
