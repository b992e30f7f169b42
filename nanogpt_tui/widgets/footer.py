"""Footer: Textual's footer, made to fit a narrow terminal, and rebuilt only when the keys it shows change.

Order: f1 Help first (it lists every key, shown here or not), then the focused widget's keys, the
screen's, and last the app's (the f2…f7 screens), each as its owner declares them; the command
palette's key stays docked on the right. Keys with show=False are left out: F1 and the palette list them. A group's keys are drawn together wherever its bindings come
from (the Tokens screen's text area binds f6 and f7 too, which the app's screen keys override).

Fitting, in steps: Textual's roomy style when everything fits; else its compact style (less space around
each key) with a group of keys drawn as one ("f2…f7 Screens"); else the keys at the end that still do
not fit are hidden, whole (F1 lists them). Every screen's keys fit at 100 columns in the compact style
(tests/test_app_footer.py: a screen that adds keys must keep it so); hiding is for narrower terminals.

Textual's Footer recomposes (a new FooterKey widget per binding) every time its screen's bindings are
refreshed, which includes every time the screen is shown again: most of a warm screen switch. This one
remembers what it shows and skips the rebuild when the screen's active bindings are the same.
"""

from __future__ import annotations

from itertools import groupby
from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.binding import ActiveBinding
from textual.screen import Screen
from textual.widgets import Footer as TextualFooter
from textual.widgets._footer import FooterKey, FooterLabel, KeyGroup

HELP_ACTION = "help"  # the app's f1: first, so the way to every other key is never hidden


class Footer(TextualFooter):
    """A Footer that orders its keys, fits them in, and recomposes only when they change."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shown: tuple[Any, ...] | None = None
        self._width = 0  # the width last fitted to
        self._restyling = False  # the style changed and the keys are not yet redrawn in it: sizes are stale

    def _keys(self) -> tuple[Any, ...]:
        """What compose() draws from: the style and every active binding's key, action, label, state and tooltip."""
        return (
            self.compact,
            self.show_command_palette,
            tuple(
                (key, binding.action, binding.description, binding.show, binding.group, enabled, tooltip)
                for key, (_, binding, enabled, tooltip) in self.screen.active_bindings.items()
            ),
        )

    def shown_bindings(self) -> list[ActiveBinding]:
        """The bindings the footer draws, in its order: one per action (its first key), groups together."""
        # Each binding's place in the chain (focused widget, its parents, the screen, the app) and in its
        # owner's declaration: active_bindings keeps a key's first place even when a later owner's
        # priority binding takes it over.
        place = {id(binding): i for i, (_, binding) in enumerate(
            pair for _, bindings in self.screen._modal_binding_chain for pair in bindings)}
        by_action: dict[str, ActiveBinding] = {}
        for active in self.screen.active_bindings.values():
            if active.binding.show and active.binding.key != self.app.COMMAND_PALETTE_BINDING:
                by_action.setdefault(active.binding.action, active)

        def rank(active: ActiveBinding) -> tuple[int, int]:
            first = 0 if active.binding.action == HELP_ACTION else 2 if active.node is self.app else 1
            return first, place.get(id(active.binding), 0)

        ordered = sorted(by_action.values(), key=rank)
        groups = [active.binding.group for active in ordered]
        # A group's members move up to its first one (sorted() is stable: ties keep their order).
        where = [groups.index(group) if group else i for i, group in enumerate(groups)]
        return [ordered[i] for i in sorted(range(len(ordered)), key=where.__getitem__)]

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        # Runs of one group's keys (shown_bindings put them side by side), or a key on its own.
        for _, run in groupby(self.shown_bindings(), key=lambda active: active.binding.group or id(active)):
            members = list(run)
            group = members[0].binding.group
            if group is None or len(members) == 1:
                yield self._key(members[0], self.app.get_key_display(members[0].binding), members[0].binding.description)
            elif self.compact:  # one key for the group: "f2…f7 Screens" (a click presses the first)
                keys = [self.app.get_key_display(active.binding) for active in members]
                shown_keys = " ".join(keys) if len(keys) == 2 else f"{keys[0]}…{keys[-1]}"
                yield self._key(members[0], shown_keys, group.description, enabled=any(a.enabled for a in members))
            else:
                with KeyGroup(classes="-compact" if group.compact else ""):
                    for active in members:
                        yield self._key(active, self.app.get_key_display(active.binding), "", "-grouped")
                yield FooterLabel(group.description)
        palette = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE and palette is not None:
            binding = palette.binding
            yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description, binding.action,
                            disabled=not palette.enabled, tooltip=binding.tooltip or binding.description,
                            classes="-command-palette")

    def _key(self, active: ActiveBinding, shown_key: str, description: str, classes: str = "",
             enabled: bool | None = None) -> FooterKey:
        binding = active.binding
        enabled = active.enabled if enabled is None else enabled
        key = FooterKey(binding.key, shown_key, description, binding.action, disabled=not enabled,
                        tooltip=active.tooltip or ("" if description else binding.description), classes=classes)
        return key.data_bind(compact=TextualFooter.compact)

    def bindings_changed(self, screen: Screen) -> None:
        # As Textual's (which sets the private flag compose() waits for), minus needless rebuilds.
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self._recompose_if_changed)

    async def _recompose_if_changed(self) -> None:
        if not self.is_attached:
            return
        keys = self._keys()
        if keys != self._shown:
            self._shown = keys
            await self.recompose()
        self._restyling = False
        self.call_after_refresh(self._fit)

    def watch_compact(self) -> None:
        if self._bindings_ready:
            self._restyling = True
            self.call_after_refresh(self._recompose_if_changed)  # groups are drawn otherwise

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._width:
            self._width = event.size.width
            if self.compact:
                self.compact = False  # wider: the roomy style may fit now (recomposes, then fits again)
                return
        self.call_after_refresh(self._fit)

    def watch_virtual_size(self) -> None:
        # Set by each layout that changed the keys' total width: the sizes _fit reads are fresh now.
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        """Compact when the roomy style overflows; then hide, whole, the last keys that still do not fit."""
        def width(child: Any) -> int:
            return child.outer_size.width + child.styles.margin.width

        if self._restyling or not self.is_attached:
            return
        shown = [child for child in self.children if child.display]
        keys = [child for child in shown if not child.has_class("-command-palette")]
        # Measured from the keys (not max_scroll_x, which lags a layout behind a key just hidden).
        overflow = sum(map(width, shown)) - self.size.width
        if overflow <= 0:
            return
        if not self.compact:
            self.compact = True
            return
        for child in reversed(keys[1:]):  # never the first: Help
            if overflow <= 0:
                break
            overflow -= width(child)
            child.display = False
