"""KeyFooter: the keys that work now, on the bottom line of every screen (our widget, on public Textual API).

Order: f1 Help first (it lists every key, shown here or not), then the focused widget's keys, the
screen's and the app's, each as its owner declares them (Textual's `Screen.active_bindings`), one per
action; the keys of a `Binding.Group` side by side before the group's name ("↑ ↓ Token"); keys that do
nothing now dimmed; the command palette's key on the right. Keys with show=False are left out: F1 and the
palette list them (the screens' f2…f7 are named by the tabs at the top, widgets/screen_tabs.py).

Fitting: two spaces between keys when they all fit, else one; narrower still, the last keys are left out,
whole, never Help. Every screen's keys fit at 100 columns (tests/test_app_footer.py: a screen that adds
keys must keep it so, giving its least used ones show=False). A click on a key presses it.

One widget drawing one line, redrawn only when the keys change (Textual's Footer builds a widget per key
each time its screen's bindings are refreshed, which includes every time the screen is shown again).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.binding import ActiveBinding
from textual.content import Content
from textual.screen import Screen
from textual.widget import Widget

HELP_ACTION = "help"  # the app's f1: first, so the way to every other key is never hidden


@dataclass(frozen=True)
class KeyHint:
    """One entry of the footer: a key (or a group's keys) and what it does."""

    keys: str  # as drawn: "^r", "↑ ↓"
    description: str
    key: str  # the key a click presses (a group's first)
    enabled: bool

    def draw(self) -> Content:
        if not self.enabled:
            return Content.styled(f"{self.keys} {self.description}", "dim")
        return Content.assemble((self.keys, "bold $footer-key-foreground"), " ",
                                (self.description, "$footer-description-foreground"))


def key_hints(screen: Screen) -> list[KeyHint]:
    """What the footer of `screen` offers now, in its order (see the module docstring)."""
    app = screen.app
    by_action: dict[str, ActiveBinding] = {}
    for active in screen.active_bindings.values():
        if active.binding.show and active.binding.key != app.COMMAND_PALETTE_BINDING:
            by_action.setdefault(active.binding.action, active)  # an action's first key ("d" of "d,delete")
    ordered = sorted(by_action.values(), key=lambda active: active.binding.action != HELP_ACTION)  # stable
    runs: dict[object, list[ActiveBinding]] = {}  # a group's members gather where its first one is
    for active in ordered:
        runs.setdefault(active.binding.group or id(active), []).append(active)
    hints = []
    for members in runs.values():
        first = members[0].binding
        description = first.group.description if first.group and len(members) > 1 else first.description
        hints.append(KeyHint(" ".join(app.get_key_display(m.binding) for m in members), description,
                             first.key, any(m.enabled for m in members)))
    return hints


def palette_hint(screen: Screen) -> KeyHint | None:
    """The command palette's key, drawn on the right."""
    app = screen.app
    active = screen.active_bindings.get(app.COMMAND_PALETTE_BINDING)
    if not app.ENABLE_COMMAND_PALETTE or active is None:
        return None
    return KeyHint(app.get_key_display(active.binding), active.binding.description, active.binding.key, active.enabled)


class KeyFooter(Widget):
    """The screen's keys on one line; see the module docstring."""

    DEFAULT_CSS = """
    KeyFooter {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.hints: list[KeyHint] = []  # every key on offer now
        self.palette: KeyHint | None = None
        self.shown: list[KeyHint] = []  # those drawn at the last width (the first ones)
        self.spans: list[tuple[int, int, str]] = []  # (from, to, key) of each drawn key, for clicks

    def on_mount(self) -> None:
        # Textual publishes it each time the screen is shown, its focus moves or a reactive with
        # bindings=True changes (the screen's check_action may read widgets only mounted by then).
        self.screen.bindings_updated_signal.subscribe(self, self.bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def bindings_changed(self, screen: Screen) -> None:
        hints, palette = key_hints(screen), palette_hint(screen)
        if (hints, palette) != (self.hints, self.palette):
            self.hints, self.palette = hints, palette
            self.refresh()

    def render(self) -> Content:
        width = self.size.width
        right = Content(" ") + self.palette.draw() + " " if self.palette else Content()
        room = width - right.cell_length - 1  # one space on the left
        drawn = [hint.draw() for hint in self.hints]
        count, gap = len(drawn), 2
        if sum(d.cell_length for d in drawn) + gap * (count - 1) > room:
            gap = 1
            while count > 1 and sum(d.cell_length for d in drawn[:count]) + count - 1 > room:
                count -= 1  # never the first: Help
        self.shown = self.hints[:count]
        line, self.spans = Content(" "), []
        for hint, content in zip(self.shown, drawn):
            if line.cell_length > 1:
                line += " " * gap
            self.spans.append((line.cell_length, line.cell_length + content.cell_length, hint.key))
            line += content
        if self.palette:
            start = max(line.cell_length, width - right.cell_length)
            line += " " * (start - line.cell_length)
            self.spans.append((start, start + right.cell_length, self.palette.key))
            line += right
        return line

    def on_click(self, event: events.Click) -> None:
        for start, end, key in self.spans:
            if start <= event.x < end:
                self.app.simulate_key(key)
                return
