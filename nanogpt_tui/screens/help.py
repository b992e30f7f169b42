"""The help screen: the keys of the screen it was opened from, every screen and its key, the keys that work
everywhere, and how to close it."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.keys import format_key
from textual.screen import ModalScreen, Screen
from textual.widgets import Markdown, Static

from nanogpt_tui.screens.base import KeepStyles

CLOSE_KEYS = "escape, f1 or q"

TOUR = """\
Go from a text file to a model you can talk to, one screen at a time (the tabs at the top of every
screen name each one with its key; ▸ marks where you are):

- **f2 Data**: pick a source and a tokenizer (or learn a BPE from the text), press *Prepare*; `m` shows a
  learned BPE's merges.
- **f3 Train**: pick the dataset and a preset, press *Start*; watch the loss fall.
- **f4 Checkpoints**: every run and its best and latest checkpoints.
- **f5 Chat**: type a prompt and watch the model write.
- **f6 Tokens**: see how any text splits into tokens under each tokenizer.
- **f7 Model**: look inside a model: its parameters, its loss at initialisation, the attention of
  each head ([ ] layer, , . head, ↑ ↓ token, ctrl+t all heads), what each layer predicts, its embeddings.

Your datasets and runs live in the data folder shown in the Data screen
(`--home DIR` or `NANOGPT_TUI_HOME` moves it). Tab and shift+Tab move between a screen's controls.
"""


def printed(key: str) -> str:
    """A key as printed on the keyboard: `[` for left_square_bracket, `ctrl+t`, `alt+←`, `f2`."""
    *modifiers, name = key.split("+")
    return "+".join([*modifiers, format_key(name)])


def screen_keys(screen: Screen) -> list[tuple[str, str, str]]:
    """(keys, what, where) for the screen's own bindings and those of the app's widgets on it (a plot's, say)."""
    def own(node: object) -> list[Binding]:  # a class's own BINDINGS: not those Input or Select bring
        return list(Binding.make_bindings(vars(type(node)).get("BINDINGS", [])))

    owners = [screen, *(w for w in screen.query("*") if type(w).__module__.startswith("nanogpt_tui.") and own(w))]
    rows: dict[tuple[int, str], tuple[list[str], str, str]] = {}
    for owner in owners:
        where = "" if owner is screen else f"with the {owner.id or type(owner).__name__} focused"
        for binding in own(owner):
            keys, _, _ = rows.setdefault((id(owner), binding.description), ([], binding.description, where))
            if printed(binding.key) not in keys:
                keys.append(printed(binding.key))
    return [(" / ".join(keys), what, where) for keys, what, where in rows.values()]  # ", " would read as a key


class HelpScreen(KeepStyles, ModalScreen[None]):
    """A modal with the current screen's keys, the tour and the key table."""

    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close", id="help.close")]

    def __init__(self, screens: dict[str, tuple[str, str, str]]) -> None:
        super().__init__()
        self.screens = screens
        self.shown_for: type[Screen] | None = None  # the screen whose keys are shown

    def compose(self) -> ComposeResult:
        rows = "\n".join(f"| {key} | {title} | {what} |" for key, title, what in self.screens.values())
        keys = (
            "| key | screen | what it is for |\n|---|---|---|\n" + rows + "\n"
            "| f1 | Help | this page |\n| ctrl+p | Command palette | every screen, and the current screen's actions, by name |\n"
            "| ctrl+q | Quit | stops training first, keeping its checkpoint |\n"
        )
        with VerticalScroll(id="help-body"):
            yield Static(f"[b]Help[/b]  ({CLOSE_KEYS} closes it; ↑ ↓ scroll)", id="help-close")
            yield Static("", id="help-screen-keys")
            yield Markdown("# nanoGPT TUI\n\n" + TOUR + "\n## Keys everywhere\n\n" + keys)

    def on_screen_resume(self) -> None:
        """Show the keys of the screen below (the help screen is built once and shown on top of any)."""
        below = self.app.screen_stack[-2] if len(self.app.screen_stack) > 1 else None
        if below is None or type(below) is self.shown_for:
            return
        self.shown_for = type(below)
        if below is self.app.screen_stack[0]:  # a main screen: its tab's name
            title = self.screens[self.app.current_mode][1]
        else:  # one pushed over it (Watch, Compare)
            title = type(below).__name__.removesuffix("Screen")
        table = Table(title=f"Keys on the {title} screen", title_justify="left", title_style="bold",
                      show_edge=False, expand=True)
        table.add_column("key", no_wrap=True, style="bold")
        table.add_column("what it does", ratio=1)
        for keys, what, where in screen_keys(below):
            table.add_row(keys, f"{what} [dim]({where})[/]" if where else what)
        self.query_one("#help-screen-keys", Static).update(table)

    def action_dismiss(self) -> None:
        self.dismiss(None)
