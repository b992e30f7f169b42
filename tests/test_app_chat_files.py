"""Pilot tests of what Chat keeps on disk or reads from it: settings across launches, the transcript
file, sessions reopened, and a checkpoint that changes, moves or goes away while Chat shows it."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

from pilot_helpers import choices, notices, wait_for, workers_done
from test_app_chat import blocks, engine_reply, open_chat, send, set_setting, shown
from textual.widgets import Input, Select, Switch

from core.common import paths
from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.widgets.dialogs import ConfirmModal, TextModal
from nanogpt_tui.widgets.sessions_modal import SessionsModal
from nanogpt_tui.widgets.transcript import TurnView


def settings_file() -> Path:
    return paths.config_dir() / "chat.json"


async def test_settings_persist_across_launches(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        await set_setting(pilot, screen, "temperature", "0.5")
        await set_setting(pilot, screen, "seed", "11")
        await set_setting(pilot, screen, "stop", r"\n\n, The")
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: settings_file().is_file() and json.loads(settings_file().read_text()).get("colours"))
        # A value that is not valid is not saved: the file keeps the last valid one.
        await set_setting(pilot, screen, "temperature", "-1")
        await workers_done(app)  # a save it started (it must not) would have landed
    saved = json.loads(settings_file().read_text())
    assert (saved["temperature"], saved["seed"], saved["stop"]) == (0.5, 11, ["\n\n", "The"])

    app = NanoGPTApp()  # a second launch, the same home
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        field = screen.query_one("#chat-temperature", Input)
        await wait_for(pilot, lambda: field.value == "0.5")
        assert screen.query_one("#chat-seed", Input).value == "11"
        assert screen.query_one("#chat-stop", Input).value == r"\n\n, The"
        assert screen.query_one("#chat-colours", Switch).value
        assert not notices(app)


async def test_a_bad_settings_file_gives_defaults_and_a_notification(tiny_run: Path) -> None:
    settings_file().write_text('{"temperature": "hot", "top_p": 0.5, "stop": [""], "precision": "int3"}')
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        await wait_for(pilot, lambda: screen.query_one("#chat-top_p", Input).value == "0.5")  # the good one
        assert screen.query_one("#chat-temperature", Input).value == "0.8"
        assert screen.query_one("#chat-stop", Input).value == ""
        assert screen.query_one("#chat-precision", Select).value == "auto"
        message = next(str(n.message) for n in notices(app) if n.title == "Chat settings")
        assert "temperature" in message and "stop strings" in message and "int3" in message

    settings_file().write_text("{not json")
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        await wait_for(pilot, lambda: any(n.title == "Chat settings" for n in notices(app)))
        assert screen.query_one("#chat-top_p", Input).value == "1.0"
        await send(pilot, screen, "The")  # it still chats
        assert screen.turns[0].pieces


async def test_the_transcript_is_saved_to_a_file_and_not_overwritten_unasked(tiny_run: Path, short_tmp_path: Path) -> None:
    target = short_tmp_path / "out" / "chat.txt"
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        await set_setting(pilot, screen, "max_new_tokens", "15")
        await send(pilot, screen, "Quick")
        await send(pilot, screen, "The fox")
        first, second = screen.turns[0].reply, screen.turns[1].reply
        # Marker lines say where each prompt ends and the model's reply begins.
        body = (f"--- prompt ---\nQuick\n--- reply ---\n{first.rstrip(chr(10))}\n\n"
                f"--- prompt ---\nThe fox\n--- reply ---\n{second.rstrip(chr(10))}\n")
        title = f"A conversation with {tiny_run.name}/{screen.checkpoint.name}, saved "

        def saved_as_expected(text: str) -> bool:
            head, _, rest = text.partition("\n\n")
            return head.startswith(title) and rest == body

        async def save_to(path: Path) -> None:
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: isinstance(app.screen, TextModal))
            await pilot.press("ctrl+u", *str(path), "enter")

        await save_to(target)
        await wait_for(pilot, lambda: target.is_file())
        assert saved_as_expected(target.read_text(encoding="utf-8"))
        await wait_for(pilot, lambda: any(str(target) in str(n.message) for n in notices(app)))

        # The file exists now: saving again asks first; "n" leaves it, "y" overwrites it.
        target.write_text("mine", encoding="utf-8")
        await save_to(target)
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmModal))
        await workers_done(app)  # a write it started (it must not) would have landed
        assert target.read_text(encoding="utf-8") == "mine"
        await save_to(target)
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: saved_as_expected(target.read_text(encoding="utf-8")))

        # A folder is not a file: the dialog says so and stays open.
        await save_to(short_tmp_path)
        assert isinstance(app.screen, TextModal) and "is a folder" in shown(app.screen, ".error")


async def test_sessions_are_saved_and_reopened(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        await set_setting(pilot, screen, "max_new_tokens", "10")
        await send(pilot, screen, "Quick")
        await send(pilot, screen, "The fox")
        kept = [(turn.prompt, [(p.token_id, p.text) for p in turn.pieces]) for turn in screen.turns]
        kept_blocks = blocks(screen)
        sessions = paths.sessions_dir()
        await wait_for(pilot, lambda: len(list(sessions.glob("*.json"))) == 1)
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: not screen.query(TurnView))
        await send(pilot, screen, "A dog")
        await wait_for(pilot, lambda: len(list(sessions.glob("*.json"))) == 2)
        (sessions / "broken.json").write_text("[1, 2")

        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionsModal))
        modal = app.screen
        titles = [s.title for s in modal.sessions]
        assert titles[:2] == ["A dog", "Quick"]  # the newest first
        assert modal.sessions[2].error and "broken.json" in str(modal.sessions[2].path)
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: app.screen is screen and len(screen.turns) == 2)
        assert [(t.prompt, [(p.token_id, p.text) for p in t.pieces]) for t in screen.turns] == kept
        await wait_for(pilot, lambda: blocks(screen) == kept_blocks)

        # The reopened conversation goes on, and its own file grows.
        await send(pilot, screen, "The dog")
        assert len(screen.turns) == 3
        reopened = sessions / f"{screen.session.id}.json"
        await wait_for(pilot, lambda: len(json.loads(reopened.read_text())["turns"]) == 3)
        assert len(list(sessions.glob("*.json"))) == 3  # the two sessions and the broken file


async def test_overlapping_saves_keep_the_newest_turn(tiny_run: Path, monkeypatch) -> None:
    # The first reply's save is held while making its JSON until the second reply's save has landed: the
    # older snapshot then finishes last, as a slow disk can make it.
    held, release = threading.Event(), threading.Event()
    dumps = json.dumps

    def slow_dumps(data, **kwargs):
        if isinstance(data, dict) and len(data.get("turns", ())) == 1:
            held.set()
            release.wait(60)  # (a bound only so that a failing test cannot hang the run)
        return dumps(data, **kwargs)

    monkeypatch.setattr(json, "dumps", slow_dumps)
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        await set_setting(pilot, screen, "max_new_tokens", "10")
        await send(pilot, screen, "Quick")
        await wait_for(pilot, held.is_set)
        await send(pilot, screen, "The fox")
        saved = paths.sessions_dir() / f"{screen.session.id}.json"
        await wait_for(pilot, lambda: saved.is_file() and len(json.loads(saved.read_text())["turns"]) == 2)
        release.set()
        await wait_for(pilot, lambda: all(w.is_finished for w in app.workers if w.group == "chat-session-save"))
        assert [turn["prompt"] for turn in json.loads(saved.read_text())["turns"]] == ["Quick", "The fox"]
        assert [p.name for p in paths.sessions_dir().iterdir()] == [saved.name]  # the dropped write's temp file too


def replace_checkpoint(path: Path, iter_num: int) -> None:
    """Save over `path` as a training run does (atomically): another iteration count, other weights."""
    import torch

    ckpt = torch.load(path, weights_only=True)
    ckpt["iter_num"] = iter_num
    for name, tensor in ckpt["model"].items():
        if tensor.is_floating_point():
            ckpt["model"][name] = tensor.flip(0) * 1.5
    temp = path.with_suffix(".tmp")
    torch.save(ckpt, temp)
    os.replace(temp, path)


def picker_labels(screen) -> list[str]:
    """The picker's checkpoints (its blank "Pick a checkpoint" entry left out)."""
    picker = screen.query_one("#chat-checkpoint", Select)
    return [label for label in choices(picker) if label != picker.prompt]


async def test_a_checkpoint_saved_over_is_loaded_again_before_the_next_reply(tiny_run: Path) -> None:
    from core.runs.checkpoint import load_model

    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        old_model, chosen = screen.engine.model, screen.checkpoint
        assert "12 iters" in shown(screen, "#chat-model")
        replace_checkpoint(chosen, 1234)
        await set_setting(pilot, screen, "max_new_tokens", "20")
        await set_setting(pilot, screen, "seed", "2")
        await send(pilot, screen, "The fox")
        assert screen.engine.model is not old_model
        assert "1,234 iters" in shown(screen, "#chat-model")
        new_model, tokenizer, _ = load_model(chosen, "cpu")
        from core.inference.sampler import SamplingConfig, generate

        config = SamplingConfig(max_new_tokens=20, temperature=0.8, seed=2)
        assert screen.turns[0].reply == "".join(p.text for p in generate(new_model, tokenizer, "The fox", config))
        assert screen.turns[0].reply == engine_reply(screen, "The fox", max_new_tokens=20, temperature=0.8, seed=2)
        # The picker says the same as the info line (it looks at the runs every few seconds).
        kind = "best" if chosen.name == "best.pt" else "latest"
        await wait_for(pilot, lambda: f"tiny-run ({kind}, 1,234 iters)" in picker_labels(screen))


async def test_a_renamed_run_is_followed_and_a_deleted_one_is_said(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        model = screen.engine.model
        renamed = tiny_run.with_name("renamed-run")
        tiny_run.rename(renamed)
        name = screen.checkpoint.name
        await wait_for(pilot, lambda: screen.checkpoint == renamed / name)
        await wait_for(pilot, lambda: any(label.startswith("renamed-run (") for label in picker_labels(screen)))
        assert not any("tiny-run" in label for label in picker_labels(screen))
        assert screen.query_one("#chat-checkpoint", Select).value == renamed / name
        assert shown(screen, "#chat-model").startswith(f"renamed-run/{name}")
        assert screen.engine.model is model  # the same file: nothing loaded again

        shutil.rmtree(renamed)
        await wait_for(pilot, lambda: any(n.title == "Checkpoint gone" for n in notices(app)))
        await wait_for(pilot, lambda: picker_labels(screen) == [])
        await send(pilot, screen, "The")  # the model in memory still answers
        assert screen.turns[0].pieces
