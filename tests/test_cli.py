"""The headless CLI end to end: prepare -> train -> sample -> eval, and its error messages."""

from __future__ import annotations

import json
import math
import re
import signal
from pathlib import Path

import numpy as np
import pytest
from pilot_helpers import wait_until

from core.common import paths
from core.runs.checkpoint import load_checkpoint
from nanogpt_tui.cli import main
from nanogpt_tui.cli.train import StopSignals

TINY = ["--preset", "tiny", "--device", "cpu", "--set", "max_iters=20", "--set", "eval_interval=10",
        "--set", "eval_iters=2", "--set", "lr_decay_iters=20", "--set", "warmup_iters=2"]


def test_prepare_train_sample_eval(small_text: Path, nanogpt_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prepare", str(small_text), "--tokenizer", "char", "--name", "cli-char", "--block-size", "32"]) == 0
    dataset = nanogpt_home / "datasets" / "cli-char"
    text = small_text.read_text()
    chars = sorted(set(text))
    expected = np.array([chars.index(c) for c in text[: int(len(text) * 0.9)]], dtype=np.uint16)
    assert (dataset / "train.bin").read_bytes() == expected.tobytes()

    assert main(["train", "--dataset", "cli-char", "--name", "r1", *TINY]) == 0
    run = nanogpt_home / "runs" / "r1"
    ckpt = load_checkpoint(run / "ckpt.pt")
    assert ckpt["iter_num"] == 20
    assert [json.loads(line)["type"] for line in (run / "metrics.jsonl").read_text().splitlines()].count("eval") == 3

    capsys.readouterr()
    assert main(["sample", "--checkpoint", "r1", "--prompt", "The", "--max-new-tokens", "30", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("The") and len(out.rstrip("\n")) > len("The")
    assert set(out) <= set(chars) | {"\n"}
    # --stop takes Chat's escapes (\s a space, \n a newline): the same reply, cut before the first of them.
    reply = out[len("The"):-1]
    cut = min([i for i in (reply.find(" "), reply.find("\n")) if i >= 0], default=len(reply))
    assert cut < len(reply)  # the text has spaces: so will 30 characters of a model trained on it
    args = ["sample", "--checkpoint", "r1", "--prompt", "The", "--max-new-tokens", "30", "--seed", "3"]
    assert main([*args, "--stop", "\\s", "--stop", "\\n"]) == 0
    assert capsys.readouterr().out == "The" + reply[:cut] + "\n"

    assert main(["eval", "--checkpoint", str(run / "ckpt.pt"), "--eval-iters", "2", "--batch-size", "4"]) == 0
    out = capsys.readouterr().out
    losses = [float(w.rstrip(",")) for w in out.split() if w.rstrip(",").replace(".", "").isdigit() and "." in w]
    assert len(losses) == 2 and all(0 < v < math.log(len(chars)) + 1 for v in losses)

    # Resume continues the same run to a higher max_iters, keeping its settings.
    assert main(["train", "--resume", "r1", "--set", "max_iters=24"]) == 0
    assert load_checkpoint(run / "ckpt.pt")["iter_num"] == 24

    assert main(["checkpoints"]) == 0
    assert "r1" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["prepare", "/no/such/file.txt"], "no such file"),
        (["sample", "--checkpoint", "nope"], "no checkpoint called 'nope'"),
        (["train", "--dataset", "missing"], "missing"),
        (["train", "--dataset", "x", "--set", "n_embdd=3"], "did you mean 'n_embd'"),
        (["tokens", "hi", "--dataset", "missing"], "missing"),
    ],
)
def test_errors_are_one_clear_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "error" in err.lower() or "failed" in err.lower()
    assert message in err
    assert "Traceback" not in err


def test_an_unknown_dataset_is_refused_before_training_and_the_names_listed(
    small_text: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("beta", "alpha"):
        assert main(["prepare", str(small_text), "--name", name, "--block-size", "8"]) == 0
    capsys.readouterr()
    assert main(["train", "--dataset", "shakespeare-char", "--device", "cpu"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # no bar, no "starting", no run folder: nothing began
    assert "no dataset called 'shakespeare-char'; you have: alpha, beta" in captured.err
    assert "iteration" not in captured.err
    assert not (paths.runs_dir()).exists() or not any(paths.runs_dir().iterdir())
    # So is a GPT-2 folder that is not there.
    assert main(["train", "--dataset", "alpha", "--device", "cpu", "--init-from", "no-such-model"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "no GPT-2 weights" in captured.err and "iteration" not in captured.err


def test_a_saved_copy_of_tiny_shakespeare_gets_the_downloads_name(small_text: Path, tmp_path: Path) -> None:
    from data.sources import SHAKESPEARE_FILE

    copy = tmp_path / "offline" / SHAKESPEARE_FILE  # saved by hand, as the offline advice says
    copy.parent.mkdir()
    copy.write_bytes(small_text.read_bytes())
    for tokenizer in ("char", "gpt2"):
        assert main(["prepare", str(copy), "--tokenizer", tokenizer, "--block-size", "8"]) == 0
    assert sorted(p.name for p in paths.datasets_dir().iterdir()) == ["shakespeare-char", "shakespeare-gpt2"]


def test_corrupt_checkpoint_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / ("a-folder-with-a-long-name-" * 3)  # a long path: piped, the message stays one line
    folder.mkdir()
    bad = folder / "ckpt.pt"
    bad.write_bytes(b"not a checkpoint at all")
    assert main(["sample", "--checkpoint", str(bad)]) == 1
    captured = capsys.readouterr()
    assert "a text file, not a PyTorch checkpoint" in captured.err
    assert str(bad) in captured.err and captured.err.count("\n") == 1
    assert captured.out == ""


def test_piped_output_is_one_whole_line_per_result(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    run = tmp_path / ("runs-kept-in-a-folder-with-a-rather-long-name-" * 2) / "tiny-run-copy"
    shutil.copytree(tiny_run, run)
    assert main(["eval", "--checkpoint", str(run / "ckpt.pt"), "--eval-iters", "1", "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 1 and str(run / "ckpt.pt") in out  # grep 'val loss' gets path and figures
    assert re.search(r"train loss \d+\.\d{4} \(\d+\.\d{4} bits/byte\), val loss \d+\.\d{4} \(\d+\.\d{4} bits/byte\)$",
                     out.rstrip("\n"))
    assert "\x1b[" not in out  # no colour codes into a pipe

    # A prompt the model cannot read fails with nothing on stdout (no echoed prompt); a good one ends the line.
    assert main(["sample", "--checkpoint", str(run), "--prompt", "\u2603", "--max-new-tokens", "3"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "not in the model's vocabulary" in captured.err
    assert main(["sample", "--checkpoint", str(run), "--prompt", "the", "--max-new-tokens", "3", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("the") and out.endswith("\n")


def test_piped_train_writes_no_progress_bar(char_dataset, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "--dataset", char_dataset.name, "--name", "piped", "--preset", "tiny", "--device", "cpu",
            "--set", "max_iters=4", "--set", "eval_interval=4", "--set", "eval_iters=1", "--set", "warmup_iters=1",
            "--set", "lr_decay_iters=4"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "━" not in out and "starting" not in out and "iter " not in out  # the bar's text, drawn or final
    saved = [line for line in out.splitlines() if line.startswith("saved latest checkpoint")]
    assert saved and all(line.endswith("ckpt.pt") for line in saved)  # the path whole, on its line


def test_in_a_terminal_text_wraps_at_spaces_and_keeps_paths_and_numbers_whole() -> None:
    import io

    from nanogpt_tui.cli.common import CommandConsole

    out = io.StringIO()
    terminal = CommandConsole(file=out, force_terminal=True, width=40, color_system=None)
    path = "/home/someone/.local/share/nanogpt-tui/runs/shakespeare-char-20250101-013946/ckpt.pt"
    terminal.print(f"saved latest checkpoint {path} after 1,234,567 tokens and a val loss of 1.4697")
    lines = out.getvalue().splitlines()
    assert path in lines  # longer than the line: whole, on a line of its own (the terminal folds it)
    assert any("1,234,567" in line for line in lines) and any("1.4697" in line for line in lines)
    assert all(len(line) <= 40 for line in lines if line != path)  # the rest wraps to the terminal


def test_tokens_counts_gpt2(capsys: pytest.CaptureFixture[str]) -> None:
    from core.tokens.tokenizers import get_tokenizer

    text = "Hello world, hello tokens"
    assert main(["tokens", text, "--tokenizer", "gpt2"]) == 0
    out = capsys.readouterr().out
    assert f"{len(get_tokenizer('gpt2').encode(text))} tokens" in out


def test_tokens_with_the_char_tokenizer_use_the_texts_own_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from nanogpt_tui.cli import listing
    from nanogpt_tui.cli.common import CommandConsole

    terminal = io.StringIO()
    monkeypatch.setattr(listing, "console", CommandConsole(file=terminal, force_terminal=True, width=100, color_system=None))
    text = "hello, world"
    assert main(["tokens", text, "--tokenizer", "char"]) == 0
    out = terminal.getvalue()
    title = f"{len(text)} tokens (char, vocabulary {len(set(text))})"
    assert title in out.splitlines()[0]  # the title on one line, though wider than the table's columns
    assert f"the vocabulary is this text's {len(set(text))} characters" in out
    assert "?" not in out  # every character is in its own text's vocabulary


def test_tokens_of_a_char_dataset_shows_what_it_lacks_as_a_question_mark(
    small_text: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["prepare", str(small_text), "--name", "chars", "--block-size", "16"]) == 0
    capsys.readouterr()
    text = "the 세계"  # the vocabulary has the letters and the space, not the Hangul
    assert main(["tokens", text, "--dataset", "chars"]) == 0
    out = capsys.readouterr().out
    assert f"{len(text)} tokens" in out and out.count("?") >= 2
    assert "2 characters are not in the" in " ".join(out.split())


def test_checkpoints_table_keeps_names_dates_and_the_apps_size_unit(
    tiny_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.common.formatting import human_size

    long_name = "a-rather-long-run-name-that-a-narrow-table-would-cut"
    tiny_run.rename(tiny_run.with_name(long_name))
    assert main(["checkpoints"]) == 0  # captured output is not a terminal: rich lays it out 80 columns wide
    out = capsys.readouterr().out
    assert long_name in out
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", out)
    size = (tiny_run.with_name(long_name) / "ckpt.pt").stat().st_size
    assert human_size(size) in out


def test_prepare_says_how_to_overwrite_and_how_to_go_on_offline(
    small_text: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from data import sources

    assert main(["prepare", str(small_text), "--name", "mine", "--block-size", "8"]) == 0
    capsys.readouterr()
    assert main(["prepare", str(small_text), "--name", "mine", "--block-size", "8"]) == 1
    assert "pass --overwrite to replace it" in " ".join(capsys.readouterr().err.split())
    assert main(["prepare", str(small_text), "--name", "mine", "--block-size", "8", "--overwrite"]) == 0

    monkeypatch.setattr(sources, "SHAKESPEARE_URL", "http://127.0.0.1:9/input.txt")
    assert main(["prepare", "shakespeare", "--tokenizer", "char"]) == 1
    err = capsys.readouterr().err
    # The offline command names the dataset as `prepare shakespeare` would, so README's next command works.
    assert "nanogpt-tui prepare tinyshakespeare.txt --tokenizer char" in err and "named shakespeare-char" in err
    assert "--dataset shakespeare-char" in (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def test_home_flag_moves_the_data_dir(small_text: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    assert main(["--home", str(other), "prepare", str(small_text), "--name", "moved", "--block-size", "8"]) == 0
    assert (other / "datasets" / "moved" / "train.bin").is_file()


def test_ctrl_c_during_train_saves_the_latest_checkpoint(small_text: Path, nanogpt_home: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    assert main(["prepare", str(small_text), "--name", "cc", "--block-size", "16"]) == 0
    argv = [sys.executable, "-m", "nanogpt_tui.cli", "train", "--dataset", "cc", "--name", "cc-run", "--preset", "tiny",
            "--device", "cpu", "--set", "max_iters=1000000", "--set", "eval_interval=1000000"]
    process = subprocess.Popen(argv, env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    metrics = nanogpt_home / "runs" / "cc-run" / "metrics.jsonl"
    wait_until(lambda: metrics.is_file() and metrics.read_text().count('"type": "step"') >= 5, process)  # 5 steps logged
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=120)[0].decode()
    assert process.returncode == -signal.SIGINT, output  # saved, then ended by the signal (130 in a shell)
    ckpt = load_checkpoint(metrics.parent / "ckpt.pt")
    assert 5 <= ckpt["iter_num"] < 1000000  # no eval ran: the stop wrote it
    assert "Finished (stopped)" in output


class FakeTrainer:
    def __init__(self) -> None:
        self.stops = 0

    def stop(self) -> None:
        self.stops += 1


def test_stop_signals_stop_the_trainer_and_never_raise_while_it_runs() -> None:
    stops = StopSignals()
    with pytest.raises(KeyboardInterrupt):  # no trainer yet: nothing to save, stop at once
        stops.handle(signal.SIGTERM, None)
    stops.trainer = FakeTrainer()
    for _ in range(5):  # quick Ctrl-Cs while it saves: no exception may cut the wait for the save short
        stops.handle(signal.SIGINT, None)
    assert stops.trainer.stops == 5 and stops.received == [signal.SIGTERM] + [signal.SIGINT] * 5
