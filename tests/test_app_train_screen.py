"""The Train screen's form and keys driven as a user would: dropdowns, Tab order, a finished run, an existing
run name, a renamed run, a small terminal; the help page; replacing a dataset on the Data screen."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from pilot_helpers import WAIT, another_writer, choices, notices, wait_for, workers_done
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Button, Input, Select, Static

from core.common import disk, paths
from core.common.formatting import human_size
from core.dataset.format import load_dataset
from core.runs.checkpoint import load_checkpoint
from core.settings.presets import PRESETS, from_preset
from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.screens.checkpoints import CheckpointsScreen
from nanogpt_tui.screens.data import DataScreen
from nanogpt_tui.screens.help import HelpScreen
from nanogpt_tui.screens.train import TrainScreen
from nanogpt_tui.widgets.dialogs import ChoiceModal, ConfirmModal, TextModal
from nanogpt_tui.widgets.path_input import PathInput
from nanogpt_tui.widgets.run_monitor import FIGURES
from nanogpt_tui.widgets.settings_form import FORM_FIELDS, OWN_SETTINGS


def shown(widget: Widget) -> str:
    """The text a widget shows on screen now."""
    return "\n".join(widget.render_line(y).text for y in range(widget.size.height))


def flat(text: str) -> str:
    """Text without its whitespace: a long path wraps at any character."""
    return "".join(text.split())


async def open_train(app: NanoGPTApp, pilot: Pilot) -> TrainScreen:
    await pilot.press("f3")
    await wait_for(pilot, lambda: isinstance(app.screen, TrainScreen) and app.screen.state == "idle")
    await wait_for(pilot, lambda: app.screen.query("#device"))
    return app.screen


async def resume(app: NanoGPTApp, pilot: Pilot, run: Path) -> TrainScreen:
    await app.resume_training(run / "ckpt.pt")
    screen = app.screen
    assert isinstance(screen, TrainScreen)
    await wait_for(pilot, lambda: screen.state == "idle" and screen.form.resume is not None and screen.form.resume.config is not None)
    await pilot.pause()
    return screen


async def type_into(pilot: Pilot, screen: TrainScreen, settings: dict[str, str]) -> None:
    for name, text in settings.items():
        screen.query_one(f"#{name}" if name == "run_name" else f"#cfg-{name}", Input).focus()
        await pilot.press("ctrl+a", "ctrl+k", *text)
    await pilot.pause()


def warnings(app: NanoGPTApp) -> list[str]:
    return [n.message for n in notices(app) if n.severity in ("warning", "error")]


async def test_dropdowns_offer_only_real_choices(char_dataset) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(app, pilot)
        dataset = screen.query_one("#dataset", Select)
        assert dataset.value == char_dataset.name
        assert choices(dataset) == [f"{char_dataset.name} ({char_dataset.train_tokens:,} tokens)"]
        # The presets, after the "none" the box shows when the fields hold no preset's settings.
        preset = screen.query_one("#preset", Select)
        assert choices(preset) == [OWN_SETTINGS, *PRESETS]
        # The box names a preset only while the fields hold it.
        assert preset.value == "cpu"
        layers = screen.query_one("#cfg-n_layer", Input).value
        await type_into(pilot, screen, {"n_layer": "7"})
        assert preset.is_blank()
        await type_into(pilot, screen, {"n_layer": layers})
        assert preset.value == "cpu"


async def test_no_dataset_says_where_to_make_one() -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(app, pilot)
        assert choices(screen.query_one("#dataset", Select)) == ["none: prepare one on the Data screen (f2)"]
        assert "Data screen" in shown(screen.query_one("#error-form", Static))
        assert screen.query_one("#start", Button).disabled


async def test_a_dataset_deleted_since_it_was_listed_is_refused_before_training(small_text: Path, char_dataset) -> None:
    import shutil

    from data.prepare import prepare

    prepare(str(small_text), tokenizer="char", name="other-char", block_size=8)
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(app, pilot)
        await wait_for(pilot, lambda: not screen.query_one("#start", Button).disabled)
        chosen = str(screen.query_one("#dataset", Select).value)
        shutil.rmtree(paths.datasets_dir() / chosen)  # e.g. deleted from another terminal
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert all(worker.group != "train" for worker in app.workers) and screen.state == "idle"
        left = sorted({"other-char", char_dataset.name} - {chosen})
        assert any(f"no dataset called {chosen!r}; you have: {', '.join(left)}" in m for m in warnings(app))
        await wait_for(pilot, lambda: screen.query_one("#dataset", Select).value == left[0])  # listed anew


async def test_tab_reaches_every_control_in_order(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await resume(app, pilot, tiny_run)
        await type_into(pilot, screen, {"max_iters": "100"})  # so Start is enabled
        screen.query_one("#dataset").focus()
        await pilot.pause()
        order = []
        while app.focused is not None and app.focused.id not in order:
            order.append(app.focused.id)
            await pilot.press("tab")
        editable = [f"cfg-{name}" for name in FORM_FIELDS if not screen.query_one(f"#cfg-{name}").disabled]
        form = ["dataset", "preset", "budget", "clear-resume", "device", "dtype", "run_name", *editable, "start"]
        assert [name for name in order if name in form] == form
        assert order[: len(form)] == form  # the form first, then the run's panels
        await pilot.press("shift+tab")
        assert app.focused is not None and app.focused.id == order[-1]

        # "Don't resume" by keyboard: the resume is dropped and the model's shape can be edited again.
        screen.query_one("#clear-resume").focus()
        await pilot.pause()
        await pilot.press("enter")
        assert screen.resume_path is None and not screen.query_one("#cfg-n_layer").disabled
        assert app.focused is screen.query_one("#device")  # the next control, not wherever a hidden one's goes


async def test_start_on_a_finished_run_asks_for_more_iterations(tiny_run: Path) -> None:
    trained = load_checkpoint(tiny_run / "ckpt.pt")["iter_num"]
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await resume(app, pilot, tiny_run)
        assert screen.query_one("#cfg-max_iters", Input).value == str(trained)
        screen.query_one("#dataset").focus()
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert all(worker.group != "train" for worker in app.workers) and screen.state == "idle"
        error = shown(screen.query_one("#error-max_iters", Static))
        assert f"raise max_iters above {trained}" in " ".join(error.split())
        assert app.focused is screen.query_one("#cfg-max_iters")
        assert any("raise max_iters" in message for message in warnings(app))
        await pilot.press("ctrl+a", "ctrl+k", *str(trained + 2))
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.state == "finished")
        assert load_checkpoint(tiny_run / "ckpt.pt")["iter_num"] == trained + 2
        # Start again would resume a finished run once more: the form says so first.
        await wait_for(pilot, lambda: f"above{trained + 2}" in flat(shown(screen.query_one("#error-max_iters", Static))))


async def test_resume_from_checkpoints_shows_the_run_its_figures_and_the_key_at_once(tiny_run: Path) -> None:
    from nanogpt_tui.widgets.loss_plot import LossPlot
    from nanogpt_tui.widgets.settings_form import RUN_SETTINGS

    trained = load_checkpoint(tiny_run / "ckpt.pt")["iter_num"]
    app = NanoGPTApp()
    async with app.run_test(size=(100, 30)) as pilot:
        # A run trained on by two iterations first: the screen then shows it "Finished".
        screen = await resume(app, pilot, tiny_run)
        await type_into(pilot, screen, {"max_iters": str(trained + 2)})
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.state == "finished")
        best = tiny_run / "best.pt"
        best_ckpt = load_checkpoint(best)

        # Resume another checkpoint from the Checkpoints screen (t), as a user does.
        await pilot.press("f4")
        checkpoints = app.screen
        await wait_for(pilot, lambda: isinstance(checkpoints, CheckpointsScreen) and checkpoints.summaries)
        await wait_for(pilot, lambda: checkpoints.selected() is not None)
        while checkpoints.selected().path != best:
            await pilot.press("down")
        await pilot.press("t")
        await wait_for(pilot, lambda: app.screen is screen and screen.form.resume is not None and screen.form.resume.config is not None)
        await pilot.pause()
        status = screen.query_one("#status", Static)
        said = flat(shown(status))
        best_val = best_ckpt["history"]["evals"][-1][2]
        for part in ("Readytoresume", tiny_run.name, f"iteration{best_ckpt['iter_num']}", f"valloss{best_val:.4f}", "ctrl+r"):
            assert part in said, (part, said)
        assert screen.state == "idle" and "Finished" not in said  # not the last run's outcome
        assert screen.region.contains_region(status.region)  # in view at 100x30, whatever the form's scroll
        # The plot is the run's to resume (its evals), not the run that finished.
        plot = screen.query_one("#loss-plot", LossPlot)
        assert [p.iter for p in plot.series[0].evals.points] == [row[0] for row in best_ckpt["history"]["evals"]]
        # The Preset box names no preset: the fields hold the run's own settings.
        preset = screen.query_one("#preset", Select)
        assert preset.is_blank() and preset.prompt == RUN_SETTINGS


async def test_init_from_starts_a_run_from_a_gpt2_folder_in_the_app(tiny_run: Path, char_dataset, tmp_path: Path) -> None:
    from core.interop.gpt2_weights import export_checkpoint

    folder = tmp_path / "exported-hf"  # a Hugging Face GPT-2 folder with the dataset's char vocabulary
    export_checkpoint(tiny_run / "ckpt.pt", "hf", folder)
    shape = load_checkpoint(tiny_run / "ckpt.pt")["model_args"]
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(app, pilot)
        field = screen.query_one("#cfg-init_from", Input)
        field.value = "no-such-model"
        await pilot.pause()
        problem = " ".join(shown(screen.query_one("#error-init_from", Static)).split())
        assert "no GPT-2 weights" in problem and "download-gpt2" in problem
        assert "--init-from" not in problem  # words for this form, not the CLI's flag
        assert screen.query_one("#start", Button).disabled
        assert screen.query_one("#cfg-n_layer").disabled and not screen.query_one("#cfg-block_size").disabled

        field.value = str(folder)
        await type_into(pilot, screen, {"max_iters": "2", "eval_interval": "2", "eval_iters": "1", "block_size": "16",
                                        "batch_size": "2", "warmup_iters": "1", "lr_decay_iters": "2", "run_name": "tuned"})
        assert "init_from" not in screen.form.problems and not screen.query_one("#start", Button).disabled
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.state in ("finished", "failed"), timeout=120)
        assert screen.state == "finished", shown(screen.query_one("#status", Static))
        ckpt = load_checkpoint(paths.runs_dir() / "tuned" / "ckpt.pt")
        assert ckpt["config"]["init_from"] == str(folder)
        assert (ckpt["model_args"]["n_layer"], ckpt["model_args"]["n_embd"]) == (shape["n_layer"], shape["n_embd"])

        field.value = ""  # no folder: the shape is the form's again
        await pilot.pause()
        assert not screen.query_one("#cfg-n_layer").disabled


async def test_an_existing_run_name_offers_replace_or_resume(tiny_run: Path, char_dataset) -> None:
    before = (tiny_run / "ckpt.pt").read_bytes()
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(app, pilot)
        small = {"n_layer": "1", "n_embd": "16", "n_head": "2", "block_size": "16", "batch_size": "4",
                 "max_iters": "4", "eval_interval": "2", "eval_iters": "1", "sample_interval": "2", "sample_tokens": "8"}
        await type_into(pilot, screen, {**small, "run_name": tiny_run.name})
        assert screen.form.problems == {}

        # Cancel keeps the run as it was and nothing starts.
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal))
        assert tiny_run.name in shown(app.screen.query_one(".question", Static))
        await pilot.press("c")
        await wait_for(pilot, lambda: app.screen is screen)
        assert screen.state == "idle" and (tiny_run / "ckpt.pt").read_bytes() == before

        # Resume sets up that run.
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal))
        await pilot.press("u")
        await wait_for(pilot, lambda: screen.form.resume is not None and screen.form.resume.config is not None)
        assert screen.resume_path == tiny_run / "ckpt.pt"
        assert (tiny_run / "ckpt.pt").read_bytes() == before
        screen.query_one("#clear-resume", Button).press()
        await pilot.pause()

        # Replace deletes it and trains a new run in its place, samples included.
        await type_into(pilot, screen, {**small, "run_name": tiny_run.name})
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal))
        await pilot.press("r")
        await wait_for(pilot, lambda: screen.state in ("finished", "failed"))
        assert screen.state == "finished", shown(screen.query_one("#status", Static))
        ckpt = load_checkpoint(tiny_run / "ckpt.pt")
        assert ckpt["iter_num"] == 4 and ckpt["model_args"]["n_layer"] == 1
        assert not (tiny_run / "best.pt").exists() or load_checkpoint(tiny_run / "best.pt")["iter_num"] <= 4
        assert "── iteration 2 ──" in shown(screen.query_one("#samples"))


async def test_a_taken_run_name_sizes_the_old_run_off_the_ui_thread_then_asks(tiny_run: Path, char_dataset,
                                                                            monkeypatch) -> None:
    with (tiny_run / "old-ckpt.pt").open("wb") as file:
        file.truncate(2 * 2**30)  # 2 GiB that take no room (sparse): the dialog counts the length
    files = [p for p in tiny_run.rglob("*") if p.is_file()]
    expected = f"{len(files)} files, {human_size(sum(p.stat().st_size for p in files))}"
    sized_in: list[str] = []  # the threads that walked the folder
    real_size = disk.folder_size

    def sizing(folder):
        sized_in.append(threading.current_thread().name)
        return real_size(folder)

    monkeypatch.setattr(disk, "folder_size", sizing)
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(app, pilot)
        await type_into(pilot, screen, {"max_iters": "4", "run_name": tiny_run.name})
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal))
        assert flat(f"its folder {tiny_run} ({expected}: its checkpoints") in flat(shown(app.screen.query_one(".question")))
        assert len(sized_in) == 1 and sized_in[0] != threading.main_thread().name
        await pilot.press("c")
        await wait_for(pilot, lambda: app.screen is screen)
        assert screen.state == "idle" and (tiny_run / "old-ckpt.pt").is_file()


async def test_the_status_follows_a_run_renamed_on_the_checkpoints_screen(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await resume(app, pilot, tiny_run)
        await type_into(pilot, screen, {"max_iters": "14"})
        await pilot.press("ctrl+r")
        status = screen.query_one("#status", Static)
        await wait_for(pilot, lambda: screen.state == "finished" and str(tiny_run) in flat(shown(status)))
        await workers_done(app)
        assert app.trainer is None

        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, CheckpointsScreen) and app.screen.summaries)
        await pilot.pause()
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, TextModal))
        await pilot.press("ctrl+u", *"renamed", "enter")
        renamed = tiny_run.parent / "renamed"
        await wait_for(pilot, renamed.is_dir)
        await pilot.press("f3")
        await wait_for(pilot, lambda: str(renamed) in flat(shown(status)))
        assert screen.resume_path == renamed / "ckpt.pt"
        assert "renamed" in shown(screen.query_one("#resume-line", Static))


async def test_a_small_terminal_shows_every_figure_and_hint_in_full(char_dataset) -> None:
    from core.common.devices import list_devices

    app = NanoGPTApp()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_train(app, pilot)
        figures = screen.query_one("#figures", Static)
        await wait_for(pilot, lambda: all(f"{name} –" in shown(figures) for name in FIGURES))
        for selector in ("#loss-plot", "#figures", "#samples", "#log", "#status"):
            widget = screen.query_one(selector)
            assert widget.size.height > 0 and screen.region.contains_region(widget.region)
        # Why a device or precision cannot be used is readable in full, wrapped under the choices.
        note = " ".join(shown(screen.query_one("#device-note", Static)).split())
        for device in list_devices():
            reason = device.detail if device.available else device.reason
            assert f"{device.name}: {' '.join(reason.split())}" in note
        # Each setting's label is whole, and Tab brings the last ones (and Start) into view.
        checks = [name for name, kind in FORM_FIELDS.items() if kind is bool]
        assert all(name in shown(screen.query_one(f"#cfg-{name}")) for name in checks)
        labels = [shown(label).strip() for label in screen.query(".cfg-label")]
        assert labels == [name for name, kind in FORM_FIELDS.items() if kind is not bool]
        start, form = screen.query_one("#start"), screen.query_one("#train-settings")
        start.focus()
        await wait_for(pilot, lambda: form.region.contains_region(start.region))


async def test_help_shows_the_screens_keys_and_how_to_close(char_dataset) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(100, 30)) as pilot:
        for key, binding_key, description in (("f3", "ctrl+r", "Sample now"), ("f2", "ctrl+r", "Prepare")):
            await pilot.press(key)
            await pilot.press("f1")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
            await pilot.pause()
            keys = shown(app.screen.query_one("#help-screen-keys", Static))
            assert description in keys and binding_key in keys
            assert "escape" in shown(app.screen.query_one("#help-close", Static))
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen))


def test_every_preset_samples_at_each_eval_within_a_block() -> None:
    for name in PRESETS:
        config = from_preset(name)
        assert config.sample_interval == config.eval_interval
        assert 0 < config.sample_tokens <= config.block_size


async def test_an_existing_dataset_name_offers_to_replace_it(small_text: Path, char_dataset) -> None:
    old = load_dataset(char_dataset.name)
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f2")  # a dataset exists: the app opens on Train
        screen = app.screen
        assert isinstance(screen, DataScreen)
        await wait_for(pilot, lambda: char_dataset.name in screen.datasets)
        await pilot.click("#source-file")
        field = screen.query_one("#data-path", PathInput)
        field.value = f"{small_text.parent}{os.sep}"
        field.focus()
        await pilot.press("end", *small_text.name)
        screen.query_one("#data-val", Input).value = "0.2"
        screen.query_one("#data-name", Input).focus()
        await pilot.press(*char_dataset.name)

        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "Replace" in shown(app.screen.query_one(".question"))
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is screen)
        assert screen.preparing is None and load_dataset(char_dataset.name).val_fraction == old.val_fraction

        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is screen and screen.preparing is None)
        await workers_done(app)
        assert load_dataset(char_dataset.name).val_fraction == 0.2
        assert sorted(p.name for p in paths.datasets_dir().iterdir()) == [char_dataset.name]


async def test_resuming_a_run_another_process_trains_offers_to_watch_it(tiny_run: Path) -> None:
    from nanogpt_tui.screens.watch import WatchScreen

    trained = load_checkpoint(tiny_run / "ckpt.pt")["iter_num"]
    with another_writer(tiny_run) as holder:
        app = NanoGPTApp()
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await resume(app, pilot, tiny_run)
            await type_into(pilot, screen, {"max_iters": str(trained + 5)})
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
            assert f"process {holder.pid}" in " ".join(shown(screen.monitor.query_one("#status", Static)).split())
            await pilot.press("y")
            await wait_for(pilot, lambda: isinstance(app.screen, WatchScreen))
            assert app.screen.run_dir == tiny_run
        assert load_checkpoint(tiny_run / "ckpt.pt")["iter_num"] == trained  # nothing written to the held run


async def test_a_budget_chooses_the_model_and_says_what_it_chose(char_dataset) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(app, pilot)
        screen.query_one("#budget", Input).focus()
        await pilot.press(*"2x")
        await pilot.pause()
        assert "90s,2m,1m30sor1h" in flat(shown(screen.query_one("#error-budget_s", Static)))
        assert screen.query_one("#start", Button).disabled
        await pilot.press("backspace", "backspace", *"5s")
        await pilot.pause()
        assert "budget_s" not in screen.form.parse_errors and not screen.query_one("#start", Button).disabled
        # The model and its recipe are the budget's to choose; the device, dtype and seed stay the user's.
        assert screen.query_one("#cfg-n_layer").disabled and screen.query_one("#cfg-learning_rate").disabled
        assert not screen.query_one("#cfg-seed").disabled
        assert screen.form.read()[0].budget_s == 5
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.state == "finished", WAIT)
        log = "\n".join(line.text for line in screen.query_one("#log").lines)
        assert "budget: chose" in log and "tokens/s here" in log
        # Cleared, the fields are the user's again.
        screen.query_one("#budget", Input).focus()
        await pilot.press("ctrl+a", "ctrl+k")
        await pilot.pause()
        assert not screen.query_one("#cfg-n_layer").disabled and screen.form.read()[0].budget_s == 0
