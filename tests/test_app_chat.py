"""Pilot tests of the Chat screen: load, stream a reply, stop it, colours, alternatives, clear, save."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from textual.color import Color
from textual.widgets import Input, Select, Static

from core import paths
from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.screens.chat import ChatScreen, probability_colour
from pilot_helpers import wait_for


def shown(screen: ChatScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).visual)


async def open_chat(app: NanoGPTApp, pilot) -> ChatScreen:
    """Chat with the only run loaded (the newest checkpoint is chosen by itself)."""
    await pilot.press("f5")
    screen = app.screen
    assert isinstance(screen, ChatScreen)
    await wait_for(pilot, lambda: screen.model is not None)
    return screen


async def set_setting(pilot, screen: ChatScreen, key: str, value: str) -> None:
    field = screen.query_one(f"#chat-{key}", Input)
    field.value = value
    await pilot.pause()


async def send(pilot, screen: ChatScreen, prompt: str) -> None:
    screen.query_one("#chat-prompt", Input).focus()
    await pilot.press(*prompt, "enter")


async def test_prompt_streams_a_reply_with_speed(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        assert screen.checkpoint is not None and screen.checkpoint.parent == tiny_run
        assert screen.query_one("#chat-checkpoint", Select).value == screen.checkpoint
        assert "tiny-run" in shown(screen, "#chat-model")
        await set_setting(pilot, screen, "max_new_tokens", "30")
        await set_setting(pilot, screen, "seed", "3")
        await send(pilot, screen, "The fox")
        await wait_for(pilot, lambda: not screen.generating)
        assert len(screen.turns) == 1 and len(screen.turns[0].pieces) == 30
        reply = screen.turns[0].reply
        assert shown(screen, "#chat-transcript") == "The fox" + reply
        speed = shown(screen, "#chat-speed")
        assert speed.startswith("done: 30 tokens") and "tokens/sec" in speed
        assert screen.query_one("#chat-prompt", Input).value == ""

        # A second turn continues the transcript on a new line, and the same seed gives the same text
        # as the engine itself for that whole context.
        await send(pilot, screen, "A dog")
        await wait_for(pilot, lambda: not screen.generating)
        assert screen.turns[1].prompt == "\nA dog"
        assert shown(screen, "#chat-transcript") == "The fox" + reply + "\nA dog" + screen.turns[1].reply

        from core.sampler import SamplingConfig, generate

        config = SamplingConfig(max_new_tokens=30, temperature=0.8, seed=3)
        expected = generate(screen.model, screen.tokenizer, "The fox" + reply + "\nA dog", config)
        assert screen.turns[1].reply == "".join(p.text for p in expected)


async def test_bad_setting_is_refused(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        await set_setting(pilot, screen, "top_p", "1.5")
        assert "top-p" in shown(screen, "#chat-settings-error")
        await send(pilot, screen, "x")
        assert screen.turns == [] and not screen.generating
        assert any(n.title == "Sampling settings" for n in app._notifications)


async def test_stop_a_long_reply(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        await set_setting(pilot, screen, "max_new_tokens", "1000000")
        await send(pilot, screen, "The")
        await wait_for(pilot, lambda: screen.turns and len(screen.turns[0].pieces) > 0, timeout=30)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not screen.generating)
        count = len(screen.turns[0].pieces)
        assert 0 < count < 1000000
        assert shown(screen, "#chat-speed").startswith(f"stopped: {count} tokens")


async def test_colours_alternatives_clear_and_save(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        await set_setting(pilot, screen, "max_new_tokens", "12")
        await set_setting(pilot, screen, "seed", "7")
        await send(pilot, screen, "Quick")
        await wait_for(pilot, lambda: not screen.generating)
        pieces = screen.turns[0].pieces
        transcript = screen.query_one("#chat-transcript", Static)

        def colours() -> list[Color | None]:
            content = transcript.visual
            start = len("Quick")
            found = []
            for piece in pieces:
                spans = [s for s in content.spans if s.start == start and s.end == start + len(piece.text)]
                found.append(next((s.style.foreground for s in spans if s.style.foreground is not None), None))
                start += len(piece.text)
            return found

        assert colours() == [None] * len(pieces)
        await pilot.press("ctrl+t")
        assert colours() == [probability_colour(p.prob) for p in pieces]
        assert probability_colour(0.0) != probability_colour(1.0)
        # ...and drawn so on screen, not painted over by link styling.
        drawn = {
            seg.style.color.triplet.hex.lower()
            for y in range(transcript.size.height)
            for seg in transcript.render_line(y)
            if seg.text.strip() and seg.style and seg.style.color and seg.style.color.triplet
        }
        assert {probability_colour(p.prob).hex.lower() for p in pieces if p.text.strip()} <= drawn

        # alt+left puts the cursor on the last token, then moves it: the alternatives show.
        await pilot.press("alt+left", "alt+left")
        assert screen.cursor == (0, len(pieces) - 2)
        line = shown(screen, "#chat-token")
        piece = pieces[-2]
        assert f"token {piece.token_id}" in line
        assert len(piece.alternatives) == 5
        for _, text, _ in piece.alternatives:
            assert repr(text) in line
        # Clicking a token selects it too: the first visible one on the prompt's line.
        x = len("Quick")
        target = next(i for i, piece in enumerate(pieces) if piece.text)
        assert "\n" not in pieces[target].text  # the seed makes this so
        x += sum(len(piece.text) for piece in pieces[:target])
        await pilot.click("#chat-transcript", offset=(x, 0))
        assert screen.cursor == (0, target)
        assert f"token {pieces[target].token_id}" in shown(screen, "#chat-token")

        await pilot.press("ctrl+s")
        saved = list((paths.home() / "chats").glob("tiny-run-*.txt"))
        assert len(saved) == 1 and saved[0].read_text(encoding="utf-8") == "Quick" + screen.turns[0].reply
        assert any(str(saved[0]) in str(n.message) for n in app._notifications)

        await pilot.press("ctrl+l")
        assert screen.turns == [] and shown(screen, "#chat-transcript") == "" and shown(screen, "#chat-token") == ""


async def test_quitting_mid_reply_ends_the_generation(tiny_run: Path, monkeypatch) -> None:
    import core.sampler

    ended = threading.Event()
    real_generate = core.sampler.generate

    def watched_generate(*args, **kwargs):
        try:
            yield from real_generate(*args, **kwargs)
        finally:
            ended.set()

    monkeypatch.setattr(core.sampler, "generate", watched_generate)
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_chat(app, pilot)
        await set_setting(pilot, screen, "max_new_tokens", "1000000")
        await send(pilot, screen, "The fox")
        await wait_for(pilot, lambda: screen.turns and len(screen.turns[-1].pieces) > 5)
        quit_at = time.monotonic()
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: not app.is_running, timeout=10)
    # The worker thread stopped generating (otherwise the process would wait for a million tokens).
    assert ended.wait(timeout=10)
    assert time.monotonic() - quit_at < 10
