"""The Data screen with a learned BPE: choose bpe and a vocabulary size, prepare, then watch the merges (m)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pilot_helpers import notices, wait_for
from test_app_data import choose_file, prepare_and_wait, table_rows, text_of
from textual.widgets import DataTable, Input, Static

from core.dataset.format import load_dataset, token_counts, tokenizer_of
from core.tokens.merges import merge_table
from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.screens.data import DataScreen
from nanogpt_tui.screens.merges import MergesScreen

pytest.importorskip("rustbpe")


async def test_learn_a_bpe_and_watch_its_merges(small_text: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = app.screen
        assert isinstance(screen, DataScreen)
        assert "hidden" in screen.query_one("#data-bpe").classes  # its fields show for bpe only
        await choose_file(pilot, screen, small_text)
        await pilot.click("#tok-bpe")
        assert "hidden" not in screen.query_one("#data-bpe").classes
        vocab = screen.query_one("#data-vocab", Input)
        vocab.value = ""
        vocab.focus()
        await pilot.press(*"300")
        assert screen.query_one("#data-name", Input).placeholder == "small-bpe300 (default)"
        await prepare_and_wait(pilot, screen)
        assert "Prepared small-bpe300" in text_of(screen, "#data-status")

        info = load_dataset("small-bpe300")
        row = table_rows(screen)["small-bpe300"]
        assert row[1:3] == ["bpe300", "300"]
        assert row[5:7] == [f"{info.chars_per_token:.2f}", f"{info.bytes_per_token:.2f}"]
        await wait_for(pilot, lambda: "m shows its merges" in text_of(screen, "#data-details"))

        screen.query_one("#data-table", DataTable).focus()  # (m typed into a field is a letter)
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, MergesScreen))
        merges = app.screen
        table = merges.query_one("#merges-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 300 - 257)
        # What the table shows, computed here from the dataset's own files.
        tokenizer = tokenizer_of(info)
        expected = merge_table(tokenizer, token_counts(info))
        left, right = expected.pairs[0]
        first = [str(cell) for cell in table.get_row_at(0)]
        spelled = [tokenizer.ranks[i].decode().replace(" ", "·").replace("\n", "↵") for i in (left, right, 256)]
        assert first == ["256", f"{spelled[0]} + {spelled[1]} -> {spelled[2]}", f"{int(expected.applied[256]):,}"]
        counts = [int(str(table.get_row_at(i)[2]).replace(",", "")) for i in range(table.row_count)]
        assert counts == [int(expected.applied[r]) for r in range(256, 300 - 1)]
        summary = str(merges.query_one("#merges-summary", Static).render())
        cpt = info.train_chars / int(expected.tokens[-1])
        assert "43 merges in the order learned" in summary and f"{cpt:.2f} with every merge" in summary
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)

        # A char dataset has no merges: m says so.
        await pilot.click("#tok-char")
        await prepare_and_wait(pilot, screen)
        table = screen.query_one("#data-table", DataTable)
        table.move_cursor(row=table.get_row_index("small-char"))
        table.focus()
        await pilot.press("m")
        await wait_for(pilot, lambda: any(n.title == "No merges" for n in notices(app)))
        assert app.screen is screen
