"""The Model screen (F7) driven by keys: anatomy, loss at init, attention layer/head/token keys, lens, embeddings."""

from __future__ import annotations

import math
from pathlib import Path

from pilot_helpers import notices, wait_for, workers_done
from rich.console import Console
from textual.widgets import Select, Static, TabbedContent, Tabs, Tree

from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.screens.model import SETTINGS, ModelScreen


def shown(screen: ModelScreen, selector: str) -> str:
    """What a Static shows, as plain text (its content may be rich Text, a Table or a Group)."""
    content = screen.query_one(selector, Static).content
    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(content)
    return console.export_text()


async def open_model_screen(pilot, app: NanoGPTApp) -> ModelScreen:
    await pilot.press("f7")
    screen = app.screen
    assert isinstance(screen, ModelScreen)
    await wait_for(pilot, lambda: screen.model is not None and screen.attention is not None, 60)
    await workers_done(app)
    await pilot.pause()
    return screen


async def test_model_screen_keys_drive_the_attention_view(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await open_model_screen(pilot, app)
        assert str(screen.query_one("#model-source", Select).value).startswith(str(tiny_run))
        # Anatomy: the tree with nanoGPT's names, shapes, counts; the figures beside it.
        tree = screen.query_one("#model-tree", Tree)
        labels = []
        stack = [tree.root]
        while stack:
            node = stack.pop()
            labels.append(str(node.label))
            stack.extend(node.children)
        assert any(label.startswith("c_attn  weight 96×32  3,072") for label in labels)
        assert any("tied: transformer.wte.weight" in label for label in labels)
        counts = shown(screen, "#model-counts")
        assert "non-embedding" in counts and "12·L·d² estimate" in counts and "bfloat16" in counts
        assert "(B, 2, 32, 32)" in shown(screen, "#model-shapes")

        # A text typed in and entered; then the Tabs have the focus, so the arrows walk the tabs and the view keys work.
        text = "the quick brown fox jumps over a lazy dog; said the wizard"
        text_input = screen.query_one("#model-text")
        text_input.focus()
        await pilot.pause()
        text_input.value = text[:-1]
        await pilot.press("end", text[-1], "enter")
        await wait_for(pilot, lambda: screen.tokens is not None and screen.tokens.total == len(text))
        await pilot.pause()
        assert isinstance(app.focused, Tabs)
        await pilot.press("right", "right")
        assert screen.query_one(TabbedContent).active == "tab-attention"
        last = 31
        info = shown(screen, "#model-att-info")
        assert f"layer 0/1  head 0/1  token #{last} of 32" in info
        assert "cut to the block's 32" in info  # the sample text is longer than the tiny block
        heatmap = shown(screen, "#model-heatmap").splitlines()
        assert "t h e · q u i c k" in heatmap[0]  # column labels, whitespace visible
        assert heatmap[-1].startswith("▶") and heatmap[-1].rstrip().endswith(text[last])
        await pilot.press("right_square_bracket", "full_stop")
        assert (screen.layer, screen.head) == (1, 1)
        assert f"layer 1/1  head 1/1  token #{last}" in shown(screen, "#model-att-info")
        await pilot.press("right_square_bracket", "full_stop")  # past the last layer and head: nothing moves
        assert (screen.layer, screen.head) == (1, 1)
        await pilot.press("up", "up", "up")
        assert screen.position == last - 3
        assert f"token #{last - 3}" in shown(screen, "#model-att-info")
        attends = shown(screen, "#model-attends")
        assert attends.startswith(f"query '{text[last - 3].replace(' ', '·')}' #{last - 3} attends most to:")
        row = screen.attention[1, 1, last - 3]
        assert abs(row.sum() - 1) < 1e-5 and (row[last - 2 :] == 0).all()
        await pilot.press("left_square_bracket", "comma")
        assert (screen.layer, screen.head) == (0, 0)
        # All heads of the layer, as small multiples.
        await pilot.press("ctrl+t")
        heads = shown(screen, "#model-heatmap")
        assert "head 0" in heads and "head 1" in heads and "▀" in heads

        # The logit lens and the embedding follow the token cursor.
        await pilot.press("right")
        assert screen.query_one(TabbedContent).active == "tab-lens"
        await workers_done(app)
        await pilot.pause()
        lens = shown(screen, "#model-lens")
        token = text[last - 3].replace(" ", "·")
        assert f"after '{token}' (#{last - 3})" in lens
        assert "embeddings" in lens and "block 0" in lens and "block 1" in lens
        await pilot.press("right")
        assert f"Nearest to '{token}'" in shown(screen, "#model-nearest")

        # A new text, typed and entered: analysed again, the cursor on its last token.
        text_input = screen.query_one("#model-text")
        text_input.focus()
        await pilot.pause()
        text_input.value = ""
        await pilot.press(*"to be")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.tokens is not None and len(screen.tokens.ids) == 5)
        await pilot.pause()
        assert "token #4 of 5" in shown(screen, "#model-att-info")
        assert isinstance(app.focused, Tabs)


async def test_untrained_model_from_settings_has_loss_ln_vocab(char_dataset, nanogpt_home: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3")  # the Train screen: its form holds the dataset and the tiny preset's shape
        train = app.screen
        await wait_for(pilot, lambda: train.query("#cfg-n_layer"))
        await wait_for(pilot, lambda: app.train_config is not None and app.train_config.dataset == char_dataset.name)
        train.query_one("#cfg-n_layer").value = "3"
        await pilot.pause()
        await pilot.press("f7")
        screen = app.screen
        assert isinstance(screen, ModelScreen)
        # No checkpoints: an untrained model from the Train screen's settings, with its dataset's vocabulary.
        await wait_for(pilot, lambda: screen.model is not None, 60)
        assert screen.source == SETTINGS
        assert screen.model.config.n_layer == 3
        assert "the Train screen's settings" in shown(screen, "#model-status")
        dataset = screen.query_one("#model-dataset", Select)
        await wait_for(pilot, lambda: dataset.value == char_dataset.name)  # the form's dataset, chosen for the loss
        vocab = char_dataset.vocab_size
        await wait_for(pilot, lambda: "measured loss" in shown(screen, "#model-loss"), 60)
        await workers_done(app)
        await pilot.pause()
        loss_text = shown(screen, "#model-loss")
        assert f"ln(vocab_size) = ln({vocab}) = {math.log(vocab):.2f}" in loss_text
        measured = float(loss_text.split("measured loss = ")[1].split()[0])
        assert abs(measured - math.log(vocab)) < 0.1
        assert "untrained" in shown(screen, "#model-status")


async def test_bad_text_is_a_notification(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_model_screen(pilot, app)
        text_input = screen.query_one("#model-text")
        text_input.focus()
        await pilot.pause()
        text_input.value = ""
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("empty" in n.message for n in notices(app)), 30)


async def test_chat_prompt_becomes_the_text(tiny_run: Path) -> None:
    from nanogpt_tui.screens.chat import ChatScreen

    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_model_screen(pilot, app)
        await pilot.press("f5")
        chat = app.screen
        assert isinstance(chat, ChatScreen)
        await wait_for(pilot, lambda: chat.engine is not None)
        chat.query_one("#chat-prompt").focus()
        await pilot.press(*"the fox", "enter")  # a prompt sent: the app's chat_prompt
        await wait_for(pilot, lambda: len(chat.turns) == 1 and not chat.generating, 60)
        assert app.chat_prompt == "the fox"
        await pilot.press("f7")
        await wait_for(pilot, lambda: screen.tokens is not None and "".join(screen.tokens.texts) == "the fox")
        assert screen.query_one("#model-text").value == "the fox"


async def test_a_checkpoint_saved_over_is_loaded_again_so_selector_and_info_agree(tiny_run: Path) -> None:
    from core.runs.checkpoint import load_checkpoint, save_checkpoint

    app = NanoGPTApp()
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await open_model_screen(pilot, app)
        path = Path(str(screen.query_one("#model-source", Select).value))
        before = load_checkpoint(path)["iter_num"]
        assert f"{before:,} iters" in shown(screen, "#model-status")
        # The run trains on and saves over it (here, or in another terminal) while the screen is shown.
        ckpt = load_checkpoint(path)
        ckpt["iter_num"] = before + 50
        save_checkpoint(path, ckpt)
        after = f"{before + 50:,} iters"
        label = screen.query_one("#model-source", Select).query_one("#label", Static)  # what the selector shows

        def agree() -> bool:
            return after in shown(screen, "#model-status") and after in str(label.content)

        await wait_for(pilot, agree, 30)
        assert isinstance(app.screen, ModelScreen)


async def test_at_100x30_numbers_are_whole_and_each_tab_has_a_key_and_its_own_view_keys(tiny_run: Path) -> None:
    from textual.widgets import TabbedContent

    app = NanoGPTApp()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_model_screen(pilot, app)
        # Every tree line and every figure as drawn: whole (no "…", no label cut at the edge).
        tree = screen.query_one("#model-tree", Tree)
        drawn = [tree.render_line(y).text.rstrip() for y in range(tree.size.height)]
        labels = [str(node.label) for node in (tree.get_node_at_line(i) for i in range(tree.last_line + 1)) if node]
        visible = [label for label in labels if any(line.endswith(label) for line in drawn)]
        assert visible and len(visible) == min(len(labels), len([line for line in drawn if line.strip()]))
        for selector in ("#model-counts", "#model-shapes"):
            widget = screen.query_one(selector, Static)
            lines = [widget.render_line(y).text for y in range(widget.size.height)]
            assert lines and not any("…" in line for line in lines), lines
            assert widget.region.width <= screen.size.width

        # 1-5 choose the tabs (as F1 and the palette list them); the view keys show only where they act.
        tabs = screen.query_one(TabbedContent)
        commands = {command.title for command in app.get_system_commands(screen)}
        for key, tab, title in (("3", "tab-attention", "Attention"), ("4", "tab-lens", "Logit lens"),
                                ("2", "tab-loss", "Loss at init"), ("5", "tab-embeddings", "Embeddings"),
                                ("1", "tab-anatomy", "Anatomy")):
            assert f"{title} tab" in commands
            await pilot.press(key)
            assert tabs.active == tab
            assert bool(screen.check_action("head", (1,))) == bool(screen.check_action("layer", (1,))) == (tab == "tab-attention")
            assert (screen.check_action("position", (-1,)) is not False) == (tab in ("tab-attention", "tab-lens", "tab-embeddings"))
