"""The help screen: every screen, its key, and the keys that work everywhere."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from nanogpt_tui.screens.base import KeepStyles

TOUR = """\
Go from a text file to a model you can talk to, one screen at a time:

1. **Data**: pick a source and a tokenizer, press *Prepare*.
2. **Train**: pick the dataset and a preset, press *Start*; watch the loss fall.
3. **Checkpoints**: every run and its best and latest checkpoints.
4. **Chat**: type a prompt and watch the model write.
5. **Tokens**: see how any text splits into tokens under each tokenizer.
6. **Model**: look inside a model: its parameters, its loss at initialisation, the attention of
   each head ([ ] layer, , . head, ↑ ↓ token, ctrl+t all heads), what each layer predicts, its embeddings.

Your datasets and runs live in the data folder shown in the Data screen
(`--home DIR` or `NANOGPT_TUI_HOME` moves it).
"""


class HelpScreen(KeepStyles, ModalScreen[None]):
    """A modal with the tour and the key table."""

    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close", id="help.close")]

    def __init__(self, screens: dict[str, tuple[str, str, str]]) -> None:
        super().__init__()
        self.screens = screens

    def compose(self) -> ComposeResult:
        rows = "\n".join(f"| {key} | {title} | {what} |" for key, title, what in self.screens.values())
        keys = (
            "| key | screen | what it is for |\n|---|---|---|\n" + rows + "\n"
            "| f1 | Help | this page |\n| ctrl+p | Command palette | every screen, and the current screen's actions, by name |\n"
            "| ctrl+q | Quit | stops training first, keeping its checkpoint |\n"
        )
        with VerticalScroll(id="help-body"):
            yield Markdown("# nanoGPT TUI\n\n" + TOUR + "\n## Keys\n\n" + keys)

    def action_dismiss(self) -> None:
        self.dismiss(None)
