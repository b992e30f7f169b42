"""Footer: Textual's footer, rebuilt only when the keys it shows change.

Textual's Footer recomposes (a new FooterKey widget per binding) every time its screen's bindings are
refreshed, which includes every time the screen is shown again: most of a warm screen switch. This one
remembers what it shows and skips the rebuild when the screen's active bindings are the same.
"""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Footer as TextualFooter


class Footer(TextualFooter):
    """A Footer that recomposes only when its keys, labels or their enabled state change."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shown: tuple[Any, ...] | None = None

    def _keys(self) -> tuple[Any, ...]:
        """What compose() draws from: every active binding's key, action, label, state and tooltip."""
        return (
            self.compact,
            self.show_command_palette,
            tuple(
                (key, binding.action, binding.description, binding.show, binding.group, enabled, tooltip)
                for key, (_, binding, enabled, tooltip) in self.screen.active_bindings.items()
            ),
        )

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
