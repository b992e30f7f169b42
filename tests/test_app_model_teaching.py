"""The Model screen explains what it shows: a line under each tab, an embedding map of the tokens, and the
model a checkpoint really holds (a ladder step's too)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from pilot_helpers import wait_for
from test_app_model import open_model_screen, shown
from textual.widgets import Select, Static, TabPane

from core.inference.inspect_model import MAP_NEIGHBOURS, MAP_TEXT_TOKENS, embedding_map, token_embedding
from core.model.gpt import GPT, GPTConfig
from core.model.ladder import build
from core.runs.checkpoint import save_checkpoint
from core.tokens.tokenizers import CharTokenizer, get_tokenizer
from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.model_help import TAB_HELP, TIED_LENS
from nanogpt_tui.screens.model import ModelScreen
from nanogpt_tui.widgets.embedding_map import EmbeddingMap


def test_the_map_is_the_embeddings_two_principal_directions() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=8, vocab_size=30, n_layer=1, n_head=2, n_embd=16))
    tokenizer = CharTokenizer(list("abcdefghijklmnopqrstuvwxyz .,!"))
    points, whole = embedding_map(model, tokenizer, [0, 1])
    assert whole and [p.token_id for p in points] == list(range(30)) and points[2].text == "c"
    centred = token_embedding(model).detach() - token_embedding(model).detach().mean(0)
    U, S, _ = torch.linalg.svd(centred, full_matrices=False)
    for axis, values in enumerate(([p.x for p in points], [p.y for p in points])):
        expected = U[:, axis] * S[axis]  # the projection on the axis, up to its sign
        assert torch.allclose(torch.tensor(values).abs(), expected.abs(), atol=1e-3)


def test_a_large_vocabulary_maps_the_texts_tokens_and_their_neighbours() -> None:
    tokenizer = get_tokenizer("gpt2")
    model = GPT(GPTConfig(block_size=8, vocab_size=50304, n_layer=1, n_head=2, n_embd=8))
    ids = tokenizer.encode("to be or not to be, that is the question")
    points, whole = embedding_map(model, tokenizer, ids)
    mapped = [p.token_id for p in points]
    assert not whole and set(ids) <= set(mapped) and len(mapped) == len(set(mapped))
    assert len(mapped) <= MAP_TEXT_TOKENS * (1 + MAP_NEIGHBOURS) and all(i < tokenizer.vocab_size for i in mapped)


async def test_each_tab_says_how_to_read_it_and_the_map_follows_the_cursor(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_model_screen(pilot, app)
        for pane in screen.query(TabPane):
            helps = [str(s.content) for s in pane.query(".tab-help").results(Static)]
            assert len(helps) == 1 and TAB_HELP[pane.id][:40] in helps[0], pane.id
        assert TIED_LENS in str(screen.query_one("#model-lens-help", Static).content)  # tiny_run's head is tied
        emap = screen.query_one(EmbeddingMap)
        await wait_for(pilot, lambda: emap.points and emap.cursor_id is not None)
        assert emap.whole and len(emap.points) == screen.tokenizer.vocab_size
        assert emap.cursor_id == screen.tokens.ids[screen.position]
        screen.query_one("#model-tabs").active = "tab-embeddings"
        await pilot.pause()
        assert "every token's embedding" in emap.render().plain
        await pilot.press("up")
        assert emap.cursor_id == screen.tokens.ids[screen.position]


@pytest.fixture
def ladder_checkpoint(char_dataset) -> Path:
    """A checkpoint of the lecture's multi-head step on the small dataset (not trained: its shape is what counts)."""
    model = build({"arch": "heads", "block_size": 32, "vocab_size": char_dataset.vocab_size, "n_layer": 2,
                   "n_head": 2, "n_embd": 16})
    path = Path(char_dataset.path).parents[1] / "runs" / "ladder-x-3-heads" / "ckpt.pt"
    save_checkpoint(path, {"model": model.state_dict(), "model_args": dataclasses.asdict(model.config), "iter_num": 5,
                           "best_val_loss": 3.0, "config": {"arch": "heads", "dataset": char_dataset.name},
                           "tokenizer": char_dataset.tokenizer, "dataset": char_dataset.to_json(), "version": 1})
    return path


async def test_a_ladder_step_shows_its_own_model(ladder_checkpoint: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("f7")
        screen = app.screen
        assert isinstance(screen, ModelScreen)
        await wait_for(pilot, lambda: screen.model is not None and screen.tokens is not None, 60)
        assert str(screen.query_one("#model-source", Select).value) == str(ladder_checkpoint)
        shapes = shown(screen, "#model-shapes")
        assert "each of the 2 heads" in shapes and "wpe" not in shapes and "position_embedding_table" in shapes
        assert "heads (ladder step)" in str(screen.query_one("#model-tree").root.label)
        await wait_for(pilot, lambda: "'heads' step" in shown(screen, "#model-att-info"))
        await wait_for(pilot, lambda: "'heads' step" in shown(screen, "#model-lens"))
        assert screen.query_one(EmbeddingMap).points  # its token embedding is mapped all the same
        assert "Nearest to" in shown(screen, "#model-nearest")
