"""Pilot tests of the Chat screen: turns, streaming, stop, regenerate, stop strings, refused prompts,
colours and alternatives, keyboard focus, a small terminal, quitting mid-reply."""

from __future__ import annotations

import threading
from pathlib import Path

from pilot_helpers import choices, notices, wait_for
from textual.color import Color
from textual.widgets import Input, Select, Static, Switch

from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.screens.chat import ChatScreen
from nanogpt_tui.widgets.transcript import TurnView, probability_colour


def shown(widget_or_screen, selector: str | None = None) -> str:
    widget = widget_or_screen.query_one(selector, Static) if selector else widget_or_screen
    return str(widget.visual)


def blocks(screen: ChatScreen) -> list[tuple[str, str]]:
    """What each turn's block shows: (prompt, reply)."""
    return [(shown(view.prompt), shown(view.reply)) for view in screen.query(TurnView)]


async def open_chat(app: NanoGPTApp, pilot) -> ChatScreen:
    """Chat with the only run loaded (the newest checkpoint is chosen by itself)."""
    await pilot.press("f5")
    screen = app.screen
    assert isinstance(screen, ChatScreen)
    await wait_for(pilot, lambda: screen.engine is not None)
    return screen


async def set_setting(pilot, screen: ChatScreen, key: str, value: str) -> None:
    field = screen.query_one(f"#chat-{key}", Input)
    field.value = value
    await pilot.pause()


async def send(pilot, screen: ChatScreen, prompt: str) -> None:
    screen.query_one("#chat-prompt", Input).focus()
    await pilot.press(*prompt, "enter")
    await wait_for(pilot, lambda: not screen.generating)


def engine_reply(screen: ChatScreen, context: str, **settings) -> str:
    from core.inference.sampler import SamplingConfig, generate

    return "".join(p.text for p in generate(screen.engine.model, screen.engine.tokenizer, context, SamplingConfig(**settings)))


async def test_turns_stream_as_blocks_and_continue_the_text(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        assert screen.checkpoint is not None and screen.checkpoint.parent == tiny_run
        assert screen.query_one("#chat-checkpoint", Select).value == screen.checkpoint
        assert "tiny-run" in shown(screen, "#chat-model")
        await set_setting(pilot, screen, "max_new_tokens", "30")
        await set_setting(pilot, screen, "seed", "3")
        await send(pilot, screen, "The fox")
        assert len(screen.turns) == 1 and len(screen.turns[0].pieces) == 30
        reply = screen.turns[0].reply
        assert blocks(screen) == [("The fox", reply)]
        speed = shown(screen, "#chat-speed")
        assert speed.startswith("done: 30 tokens") and "tokens/sec" in speed
        assert screen.query_one("#chat-prompt", Input).value == ""

        # A second turn is a block of its own; the model reads the whole conversation, the prompt on a new
        # line, and the same seed gives the engine's own text for that context.
        await send(pilot, screen, "A dog")
        second = screen.turns[1].reply
        assert blocks(screen) == [("The fox", reply), ("A dog", second)]
        context = "The fox" + reply + ("" if reply.endswith("\n") else "\n") + "A dog"
        assert second == engine_reply(screen, context, max_new_tokens=30, temperature=0.8, seed=3)


async def test_a_refused_prompt_leaves_the_conversation_as_it_was(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        await set_setting(pilot, screen, "max_new_tokens", "10")
        prompt = screen.query_one("#chat-prompt", Input)
        prompt.focus()
        await pilot.press(*"Café ")
        prompt.insert_text_at_cursor("👍")  # what a terminal's emoji key does (Pilot has no key for it)
        await pilot.press("enter")
        await wait_for(pilot, lambda: not screen.generating)
        assert screen.turns == [] and blocks(screen) == []
        assert any("'é', '👍'" in str(n.message) for n in notices(app))
        assert prompt.value == "Café 👍"  # back in the field, to be fixed, the cursor at its end
        assert screen.focused is prompt
        await pilot.press("ctrl+u", *"The fox", "enter")
        await wait_for(pilot, lambda: not screen.generating)
        # The next prompt the model can read is answered, and so is an empty one (continue).
        assert [turn.prompt for turn in screen.turns] == ["The fox"] and len(screen.turns[0].pieces) == 10
        await send(pilot, screen, "")
        assert len(screen.turns) == 2 and len(screen.turns[1].pieces) == 10
        assert blocks(screen)[1][0] == "(continue the text)"
        # A refused prompt after a reply leaves that reply alone.
        before = blocks(screen)
        await send(pilot, screen, "é")
        assert blocks(screen) == before and len(screen.turns) == 2


async def test_regenerate_replaces_the_last_reply(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        await set_setting(pilot, screen, "max_new_tokens", "25")
        await set_setting(pilot, screen, "seed", "3")
        await send(pilot, screen, "The fox")
        first = screen.turns[0].reply
        await set_setting(pilot, screen, "seed", "4")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not screen.generating)
        again = engine_reply(screen, "The fox", max_new_tokens=25, temperature=0.8, seed=4)
        assert again != first
        assert blocks(screen) == [("The fox", again)]


async def test_a_stop_string_from_the_settings_ends_the_reply(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        await set_setting(pilot, screen, "max_new_tokens", "60")
        await set_setting(pilot, screen, "seed", "5")
        await send(pilot, screen, "The")
        full = screen.turns[0].reply
        # Stop at the first word of the reply that is not at its very start: it and what follows go.
        word = next(w for w in full.split() if w.isalpha() and full.find(w) > 0)
        await set_setting(pilot, screen, "stop", f"zzz, {word}")
        assert shown(screen, "#chat-settings-error") == ""
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not screen.generating)
        assert screen.turns[0].reply == full[: full.find(word)]
        assert shown(screen, "#chat-speed").startswith("done:")
        # An empty stop string is refused, with the engine's message, before anything runs.
        await set_setting(pilot, screen, "stop", "a,,b")
        assert "stop strings must not be empty" in shown(screen, "#chat-settings-error")


async def test_a_reply_that_stops_at_once_says_why_and_the_saved_text_marks_it(tiny_run: Path, tmp_path: Path) -> None:
    from nanogpt_tui.widgets.dialogs import TextModal

    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        await set_setting(pilot, screen, "temperature", "0")  # greedy: the first character is known ahead
        first = engine_reply(screen, "The", max_new_tokens=1, temperature=0)
        typed = {"\n": "\\n", " ": "\\s", ",": "\\,"}.get(first, first)  # as the settings take it
        await set_setting(pilot, screen, "stop", typed)
        await send(pilot, screen, "The")
        assert screen.turns[0].reply == ""  # the stop string stays out of the transcript
        reason = f"stopped at stop string {first!r} before any text"
        assert shown(screen, "#chat-speed").startswith(reason)
        assert blocks(screen) == [("The", f"({reason})")]

        target = tmp_path / "chat.txt"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, TextModal))
        await pilot.press("ctrl+u", *str(target), "enter")
        await wait_for(pilot, lambda: target.is_file())
        assert f"--- prompt ---\nThe\n--- reply ---\n({reason})\n" in target.read_text(encoding="utf-8")


async def test_streaming_draws_only_the_turn_that_streams(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        await set_setting(pilot, screen, "max_new_tokens", "5")
        await send(pilot, screen, "The fox")
        await send(pilot, screen, "A dog")
        updates: dict[str, int] = {"earlier": 0, "streaming": 0}

        def counted(static: Static, name: str) -> None:
            real = static.update

            def update(*args, **kwargs):
                updates[name] += 1
                return real(*args, **kwargs)

            static.update = update  # type: ignore[method-assign]

        earlier = list(screen.query(TurnView))
        for view in earlier:
            counted(view.prompt, "earlier")
            counted(view.reply, "earlier")
        await set_setting(pilot, screen, "max_new_tokens", "100000")
        screen.query_one("#chat-prompt", Input).focus()
        await pilot.press(*"Quick", "enter")
        await wait_for(pilot, lambda: len(screen.query(TurnView)) == 3)
        counted(screen.query(TurnView).last().reply, "streaming")
        await wait_for(pilot, lambda: updates["streaming"] >= 3, timeout=60)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not screen.generating)
        assert updates["earlier"] == 0 and list(screen.query(TurnView))[:2] == earlier  # not redrawn, nor replaced
        assert len(screen.turns[2].pieces) > 0 and shown(screen.query(TurnView).last().reply) == screen.turns[2].reply


async def test_stop_a_long_reply(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        await set_setting(pilot, screen, "max_new_tokens", "1000000")
        screen.query_one("#chat-prompt", Input).focus()
        await pilot.press(*"The", "enter")
        await wait_for(pilot, lambda: screen.turns and len(screen.turns[0].pieces) > 0, timeout=30)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not screen.generating)
        count = len(screen.turns[0].pieces)
        assert 0 < count < 1000000
        assert shown(screen, "#chat-speed").startswith(f"stopped: {count} tokens")


async def test_bad_setting_is_refused(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        await set_setting(pilot, screen, "top_p", "1.5")
        assert "top-p" in shown(screen, "#chat-settings-error")
        await send(pilot, screen, "x")
        assert screen.turns == [] and not screen.generating
        assert any(n.title == "Sampling settings" for n in notices(app))


async def test_colours_and_alternatives(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        await set_setting(pilot, screen, "max_new_tokens", "12")
        await set_setting(pilot, screen, "seed", "7")
        await send(pilot, screen, "Quick")
        pieces = screen.turns[0].pieces
        reply = screen.query_one(TurnView).reply

        def colours() -> list[Color | None]:
            content = reply.visual
            start, found = 0, []
            for piece in pieces:
                spans = [s for s in content.spans if s.start == start and s.end == start + len(piece.text)]
                found.append(next((s.style.foreground for s in spans if s.style.foreground is not None), None))
                start += len(piece.text)
            return found

        assert colours() == [None] * len(pieces)
        await pilot.press("ctrl+t")
        assert screen.query_one("#chat-colours", Switch).value
        assert colours() == [probability_colour(p.prob) for p in pieces]
        assert probability_colour(0.0) != probability_colour(1.0)
        # ...and drawn so on screen, not painted over by link styling.
        drawn = {
            seg.style.color.triplet.hex.lower()
            for y in range(reply.size.height)
            for seg in reply.render_line(y)
            if seg.text.strip() and seg.style and seg.style.color and seg.style.color.triplet
        }
        assert {probability_colour(p.prob).hex.lower() for p in pieces if p.text.strip()} <= drawn

        # alt+left puts the cursor on the last token, then moves it: the alternatives show.
        await pilot.press("alt+left", "alt+left")
        assert screen.transcript.cursor == (0, len(pieces) - 2)
        line = shown(screen, "#chat-token")
        piece = pieces[-2]
        assert f"token {piece.token_id}" in line
        assert len(piece.alternatives) == 5
        for _, text, _ in piece.alternatives:
            assert repr(text) in line
        # Clicking a token selects it too: the first visible one on the reply's first line.
        target = next(i for i, piece in enumerate(pieces) if piece.text.strip())
        assert "\n" not in "".join(p.text for p in pieces[: target + 1])  # the seed makes this so
        x = sum(len(piece.text) for piece in pieces[:target])
        await pilot.click(reply, offset=(x + 1, 0))  # +1: the block's left padding
        assert screen.transcript.cursor == (0, target)
        assert f"token {pieces[target].token_id}" in shown(screen, "#chat-token")

        await pilot.press("ctrl+l")
        assert screen.turns == [] and shown(screen, "#chat-token") == ""
        await wait_for(pilot, lambda: not screen.query(TurnView))


async def test_keyboard_reaches_every_control_and_picking_a_checkpoint_focuses_the_prompt(tiny_run: Path) -> None:
    import shutil

    from core.common import paths

    shutil.copytree(tiny_run, paths.runs_dir() / "other-run")
    app = NanoGPTApp()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_chat(app, pilot)
        picker = screen.query_one("#chat-checkpoint", Select)
        await wait_for(pilot, lambda: len(choices(picker)) >= 5)  # the blank, and two runs' latest and best each
        picker.focus()
        await pilot.press("enter")
        await pilot.press("down", "down", "enter")
        await wait_for(pilot, lambda: picker.value != screen.checkpoint or screen.focused is not picker)
        assert screen.focused is screen.query_one("#chat-prompt", Input)

        # Tab visits every control, shift+tab the same ones backwards.
        wanted = {"chat-checkpoint", "chat-log", "chat-prompt", "chat-precision", "chat-colours"} | {
            f"chat-{key}" for key in ("temperature", "top_k", "top_p", "min_p", "repetition_penalty",
                                      "max_new_tokens", "seed", "stop")
        }
        forward: list[str] = []
        for _ in range(30):  # (until all are seen: each key is a screen update)
            await pilot.press("tab")
            if screen.focused is not None and screen.focused.id in wanted and screen.focused.id not in forward:
                forward.append(screen.focused.id)
            if set(forward) == wanted:
                break
        assert set(forward) == wanted
        backward: list[str] = []
        for _ in range(30):
            await pilot.press("shift+tab")
            if screen.focused is not None and screen.focused.id in wanted and screen.focused.id not in backward:
                backward.append(screen.focused.id)
            if set(backward) == wanted:
                break
        assert set(backward) == wanted

        # At 100x30 the picker, the conversation, the prompt and the panel's heading are all on screen.
        for selector in ("#chat-checkpoint", "#chat-log", "#chat-prompt", "#chat-controls"):
            region = screen.query_one(selector).region
            assert region.height > 0 and region.right <= 100 and region.bottom <= 29, selector
        assert screen.query_one("#chat-log").region.height >= 8


async def test_quitting_mid_reply_ends_the_generation(tiny_run: Path, monkeypatch) -> None:
    import core.inference.sampler

    ended = threading.Event()
    real_generate = core.inference.sampler.generate

    def watched_generate(*args, **kwargs):
        try:
            yield from real_generate(*args, **kwargs)
        finally:
            ended.set()

    monkeypatch.setattr(core.inference.sampler, "generate", watched_generate)
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        await set_setting(pilot, screen, "max_new_tokens", "1000000")
        screen.query_one("#chat-prompt", Input).focus()
        await pilot.press(*"The fox", "enter")
        await wait_for(pilot, lambda: screen.turns and len(screen.turns[-1].pieces) > 5)
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: not app.is_running, timeout=10)
    # The worker thread stopped generating (otherwise the process would wait for a million tokens).
    assert ended.wait(timeout=10)
