"""The Chat screen shows the model's view: the context against the block (older tokens out of view past
it), and for the token under the cursor the likeliest tokens the model weighed there."""

from __future__ import annotations

from pathlib import Path

from pilot_helpers import wait_for
from test_app_chat import open_chat, send, set_setting, shown
from textual.widgets import Input

from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.widgets.chat_insight import context_line, token_choices


def test_the_meter_says_when_tokens_fall_out_of_view() -> None:
    assert "8 of 32 tokens" in context_line(8, 32).plain and "sees all of it" in context_line(8, 32).plain
    over = context_line(50, 32).plain
    assert "50 of 32" in over and "the latest 32" in over and "first 18 are out of its view" in over


async def test_the_context_meter_and_the_choices_at_a_token(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_chat(app, pilot)
        block = screen.engine.model.config.block_size  # tiny: 32
        await wait_for(pilot, lambda: shown(screen, "#chat-context").startswith("context 1 of"))  # nothing yet
        screen.query_one("#chat-prompt", Input).focus()
        await pilot.press(*"The fox")
        await wait_for(pilot, lambda: f"context 7 of {block} tokens" in shown(screen, "#chat-context"))
        await set_setting(pilot, screen, "max_new_tokens", str(block + 10))
        await set_setting(pilot, screen, "seed", "3")
        screen.query_one("#chat-prompt", Input).value = ""
        await send(pilot, screen, "The fox")
        total = len(screen.engine.tokenizer.encode(screen.transcript.text()))
        assert total == 7 + block + 10
        await wait_for(pilot, lambda: f"first {total - block} are out of its view" in shown(screen, "#chat-context"))

        await pilot.press("alt+left")
        piece = screen.turns[0].pieces[-1]
        choices = shown(screen, "#chat-token")
        assert choices == token_choices(piece).plain
        assert f"token {piece.token_id}" in choices and "what the model weighed" in choices
        assert len(piece.alternatives) == 5
        for _, text, prob in piece.alternatives:
            assert repr(text)[:8] in choices and f"{prob:.1%}" in choices


