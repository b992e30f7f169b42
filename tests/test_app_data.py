"""The Data screen driven as a user would: pick a source, prepare, cancel, browse, delete."""

from __future__ import annotations

import contextlib

import os
import threading
from pathlib import Path

import pytest
from pilot_helpers import notices, wait_for, workers_done
from textual.pilot import Pilot
from textual.worker import WorkerCancelled
from textual.widgets import DataTable, ProgressBar, Static

import nanogpt_tui.screens.data as data_screen
import nanogpt_tui.screens.data_messages as data_messages
from core.common import paths
from data.prepare import Progress, prepare
from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.screens.checkpoints import ConfirmModal
from nanogpt_tui.screens.data import DataScreen
from nanogpt_tui.widgets.path_input import PathInput


def text_of(screen: DataScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).content)


def table_rows(screen: DataScreen) -> dict[str, list[str]]:
    table = screen.query_one("#data-table", DataTable)
    rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
    return {row[0]: row for row in rows}


def dataset_entries() -> list[str]:
    """Everything in the datasets folder, hidden staging folders included."""
    return sorted(p.name for p in paths.datasets_dir().iterdir())


def error_notifications(app: NanoGPTApp) -> list[str]:
    return [n.message for n in notices(app) if n.severity == "error"]


async def choose_file(pilot: Pilot, screen: DataScreen, path: Path) -> None:
    """Pick "A text file" and type its name into the path field, after its folder (typing it all is slow)."""
    await pilot.click("#source-file")
    field = screen.query_one("#data-path", PathInput)
    field.value = f"{path.parent}{os.sep}"
    field.focus()
    await pilot.press("end", *path.name)


async def prepare_and_wait(pilot: Pilot, screen: DataScreen) -> None:
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: screen.preparing is None)
    for worker in list(pilot.app.workers):  # (a listing or details worker a newer one replaced ends cancelled)
        with contextlib.suppress(WorkerCancelled):
            await worker.wait()
    await pilot.pause()


async def test_prepare_a_file_shows_progress_and_the_dataset(small_text: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, DataScreen)
        assert str(paths.home()) in text_of(screen, "#data-home")
        await pilot.click("#source-file")
        field = screen.query_one("#data-path", PathInput)
        field.value = f"{small_text.parent}{os.sep}"
        field.focus()
        await pilot.press("end", "s", "m")
        await pilot.pause()
        await pilot.press("tab")  # completes the file name
        assert field.value == str(small_text)
        assert text_of(screen, "#data-path-note") == ""  # the path exists: no complaint
        await prepare_and_wait(pilot, screen)

        assert "Prepared small-char" in text_of(screen, "#data-status")
        assert screen.query_one("#data-progress", ProgressBar).percentage == 1
        # Counts computed here from the text: char-level, split by characters like nanoGPT.
        text = small_text.read_text(encoding="utf-8")
        n_train = int(len(text) * 0.9)
        row = table_rows(screen)["small-char"]
        assert row[1:5] == ["char", str(len(set(text))), f"{n_train:,}", f"{len(text) - n_train:,}"]
        assert (paths.datasets_dir() / "small-char" / "train.bin").is_file()
        # Selected: its stats and the start of its text.
        await wait_for(pilot, lambda: "Chars/token" in text_of(screen, "#data-details"))
        assert text_of(screen, "#data-preview").startswith(text[:100])
        assert not error_notifications(app)


async def test_the_progress_bar_shows_only_when_there_is_progress(tmp_path: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        bar = screen.query_one("#data-progress", ProgressBar)
        assert not bar.display  # idle: an indeterminate bar would animate (and spend CPU) for nothing
        broken = tmp_path / "broken.txt"
        broken.write_bytes(b"\x00\x01" * 100)
        await choose_file(pilot, screen, broken)
        await prepare_and_wait(pilot, screen)
        assert "binary" in text_of(screen, "#data-status") and not bar.display


async def test_offline_shakespeare_points_to_the_text_file_option(
    small_text: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from data import sources

    monkeypatch.setattr(sources, "SHAKESPEARE_URL", "http://127.0.0.1:9/input.txt")
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await pilot.click("#source-shakespeare")
        await prepare_and_wait(pilot, screen)
        status = " ".join(text_of(screen, "#data-status").split())
        assert "cannot download Tiny Shakespeare" in status and '"A text file"' in status
        assert "http://127.0.0.1:9/input.txt" in status and sources.SHAKESPEARE_FILE in status
        assert "named shakespeare-char" in status
        assert dataset_entries() == []

        # Following the advice gives the dataset the name `prepare shakespeare` gives, which README trains on.
        saved = tmp_path / "saved" / sources.SHAKESPEARE_FILE
        saved.parent.mkdir()
        saved.write_bytes(small_text.read_bytes())
        await choose_file(pilot, screen, saved)
        await pilot.pause()
        assert screen.query_one("#data-name").placeholder == "shakespeare-char (default)"
        await prepare_and_wait(pilot, screen)
        assert dataset_entries() == ["shakespeare-char"]


async def test_at_100x30_prepare_stays_in_view_and_table_columns_are_whole(small_text: Path, tmp_path: Path) -> None:
    prepare(str(small_text), name="a-dataset-with-a-long-name-char", block_size=8)
    broken = paths.datasets_dir() / "broken"
    broken.mkdir()
    (broken / "dataset.json").write_text("{not json", encoding="utf-8")
    app = NanoGPTApp()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f2")  # a dataset exists: the app opens on Train
        screen = app.screen
        await wait_for(pilot, lambda: set(table_rows(screen)) == {"broken", "a-dataset-with-a-long-name-char"})
        button = screen.query_one("#data-prepare")
        assert screen.region.contains_region(button.region)  # Prepare in view, without scrolling the form
        table = screen.query_one("#data-table", DataTable)
        labels = [str(column.label) for column in table.columns.values()]
        assert labels[:2] == ["Name", "Problem"]  # the problem right after the name: in view
        widths = sum(column.get_render_width(table) for column in table.columns.values())
        assert widths <= table.size.width  # every column shown is whole: the others are left out
        assert str(table_rows(screen)["broken"][1]).startswith("dataset.json is")  # cut to fit, with a mark: …

        # A preparation that succeeded leaves its bar at 100%; one that fails next does not show it.
        await choose_file(pilot, screen, small_text)
        screen.query_one("#data-name").value = "fresh"
        await prepare_and_wait(pilot, screen)
        bar = screen.query_one("#data-progress", ProgressBar)
        assert bar.display and bar.percentage == 1
        screen.query_one("#data-path", PathInput).value = str(tmp_path / "missing.txt")
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert "does not exist" in text_of(screen, "#data-status") and not bar.display


async def test_a_missing_path_shows_an_error_and_writes_nothing(tmp_path: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        missing = tmp_path / "nope.txt"
        await choose_file(pilot, screen, missing)
        assert "does not exist" in text_of(screen, "#data-path-note")
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert screen.preparing is None
        assert "does not exist" in text_of(screen, "#data-status")
        assert any("does not exist" in message for message in error_notifications(app))
        assert dataset_entries() == []


async def test_a_binary_file_shows_its_error(tmp_path: Path) -> None:
    binary = tmp_path / "image.txt"
    binary.write_bytes(b"text at first\n" * 50 + b"\x00\x01\x02" * 100)
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await choose_file(pilot, screen, binary)
        await prepare_and_wait(pilot, screen)
        assert "binary" in text_of(screen, "#data-status")
        assert screen.query_one("#data-status").has_class("error")
        assert any("binary" in message for message in error_notifications(app))
        assert dataset_entries() == []
        assert table_rows(screen) == {}


async def test_cancelling_leaves_nothing_behind(small_text: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real prepare, read in small chunks, held at its first progress report until cancelled."""
    reported = threading.Event()

    def held_prepare(*args, progress, cancel, **kwargs):
        def hold(report: Progress) -> None:
            progress(report)
            reported.set()
            cancel.wait(10)  # returns at once when the user cancels

        return prepare(*args, progress=hold, cancel=cancel, chunk_size=1024, **kwargs)

    monkeypatch.setattr(data_messages, "prepare", held_prepare)
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await choose_file(pilot, screen, small_text)
        await pilot.press("ctrl+r")
        await wait_for(pilot, reported.is_set)
        await wait_for(pilot, lambda: "Reading" in text_of(screen, "#data-status"))
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.preparing is None)
        await workers_done(app)
        await pilot.pause()
        assert "Cancelled" in text_of(screen, "#data-status")
        assert dataset_entries() == []
        assert table_rows(screen) == {}


async def test_delete_asks_first_and_a_broken_dataset_shows_its_error(small_text: Path) -> None:
    prepare(str(small_text), name="keepme")
    broken = paths.datasets_dir() / "broken"
    broken.mkdir()
    (broken / "dataset.json").write_text("{not json", encoding="utf-8")
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f2")  # a dataset exists: the app opens on Train
        screen = app.screen
        await wait_for(pilot, lambda: set(table_rows(screen)) == {"broken", "keepme"})  # listed in a worker
        table = screen.query_one("#data-table", DataTable)
        table.focus()
        table.move_cursor(row=table.get_row_index("broken"))
        await pilot.pause()
        assert "not valid JSON" in text_of(screen, "#data-details")

        table.move_cursor(row=table.get_row_index("keepme"))
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("n")
        assert (paths.datasets_dir() / "keepme").is_dir()
        assert "keepme" in table_rows(screen)

        await pilot.press("d")
        await pilot.press("y")
        await pilot.pause()
        assert not (paths.datasets_dir() / "keepme").exists()
        await wait_for(pilot, lambda: set(table_rows(screen)) == {"broken"})


async def test_a_json_lines_file_is_prepared_from_the_text_field_typed(tmp_path: Path) -> None:
    import json

    records = tmp_path / "notes.jsonl"
    docs = [f"note {i}: the quick brown fox jumps over the lazy dog, {i} times." for i in range(400)]
    records.write_text("".join(json.dumps({"body": d}) + "\n" for d in docs), encoding="utf-8")
    app = NanoGPTApp()
    async with app.run_test(size=(120, 50)) as pilot:
        screen = app.screen
        await choose_file(pilot, screen, records)
        field = screen.query_one("#data-text-field")
        assert field.display  # shown for files (records), hidden for Tiny Shakespeare
        await pilot.click("#tok-gpt2")
        await prepare_and_wait(pilot, screen)
        assert "no field 'text'" in text_of(screen, "#data-status") and dataset_entries() == []  # the default field
        field.value = "body"
        await prepare_and_wait(pilot, screen)
        assert "Prepared notes-gpt2" in text_of(screen, "#data-status")
        info = prepare(str(records), "gpt2", name="expected", text_field="body")
        assert table_rows(screen)["notes-gpt2"][3] == f"{info.train_tokens:,}"
        await pilot.click("#source-shakespeare")
        await pilot.pause()
        assert not field.display


def test_progress_says_the_rate_and_the_time_left() -> None:
    assert data_screen.progress_text(Progress("encode", 10 * 2**20, 50 * 2**20, 5.0)) == (
        "Encoding: 10.0 MiB of 50.0 MiB, 2.0 MiB/s, 0:20 left")
    assert data_screen.progress_text(Progress("download", 3 * 2**20, 0, 2.0)) == "Downloading: 3.0 MiB so far, 1.5 MiB/s"


async def test_a_hugging_face_source_asks_for_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = []

    def fake_prepare(source, **kwargs):  # the hub is not reachable from tests: only what is asked is checked
        asked.append((source, kwargs["text_field"]))
        raise data_messages.PrepareError("no network")

    monkeypatch.setattr(data_messages, "prepare", fake_prepare)
    app = NanoGPTApp()
    async with app.run_test(size=(100, 40)) as pilot:
        screen = app.screen
        await pilot.click("#source-hf")
        await pilot.pause()
        assert screen.query_one("#data-hf").display and not screen.query_one("#data-path").display
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert "name a Hugging Face dataset" in text_of(screen, "#data-status") and asked == []
        screen.query_one("#data-hf").focus()
        await pilot.press(*"roneneldan/TinyStories")
        await pilot.pause()
        assert screen.query_one("#data-name").placeholder == "TinyStories-char (default)"
        await prepare_and_wait(pilot, screen)
        assert asked == [("hf:roneneldan/TinyStories", "text")] and "no network" in text_of(screen, "#data-status")
