"""NanoGPTApp: six screens (Data, Train, Checkpoints, Chat, Tokens, Model) over one engine.

Each screen is a Textual "mode", reached by one function key or from the command palette. Screens run
engine work in thread workers; torch is imported off the UI thread (see `warm_up`), so the first paint
does not wait for it.
"""

from __future__ import annotations

import gc
import importlib
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, TypeVar, cast

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import get_current_worker

from nanogpt_tui import session_state

if TYPE_CHECKING:
    from core.training.process import TrainerProcess
    from nanogpt_tui.screens.chat import ChatScreen
    from nanogpt_tui.screens.train import TrainScreen
    from nanogpt_tui.screens.watch import LatestRunFound

S = TypeVar("S", bound=Screen)

# mode name -> (key, title, what it is for): one table drives bindings, palette and help.
SCREENS: dict[str, tuple[str, str, str]] = {
    "data": ("f2", "Data", "Prepare a dataset from Tiny Shakespeare, a file or a folder"),
    "train": ("f3", "Train", "Train a model and watch its loss fall"),
    "checkpoints": ("f4", "Checkpoints", "Browse, inspect, resume and delete trained models"),
    "chat": ("f5", "Chat", "Generate text from a checkpoint"),
    "tokens": ("f6", "Tokens", "See how text splits into tokens"),
    "model": ("f7", "Model", "Look inside a model: parameters, attention, what each layer predicts"),
}


# mode name -> the screen's module and class. Only the first screen's module is imported before the first
# paint; `warm_up` imports the others in the background, and a visit before that imports its own.
SCREEN_CLASSES: dict[str, str] = {
    "data": "nanogpt_tui.screens.data:DataScreen",
    "train": "nanogpt_tui.screens.train:TrainScreen",
    "checkpoints": "nanogpt_tui.screens.checkpoints:CheckpointsScreen",
    "chat": "nanogpt_tui.screens.chat:ChatScreen",
    "tokens": "nanogpt_tui.screens.tokens:TokensScreen",
    "model": "nanogpt_tui.screens.model:ModelScreen",
    "help": "nanogpt_tui.screens.help:HelpScreen",
    "watch": "nanogpt_tui.screens.watch:WatchScreen",  # pushed over a screen (watch_run), not a mode
}


def screen_class(mode: str) -> type[Screen]:
    """The screen class of `mode` (or "help"), importing its module if need be."""
    module, _, name = SCREEN_CLASSES[mode].partition(":")
    return getattr(importlib.import_module(module), name)


def make_screen(mode: str) -> Screen:
    return screen_class(mode)()


SCREEN_KEYS = Binding.Group("Screens")


class NanoGPTApp(App[None]):
    """The nanogpt-tui application."""

    TITLE = "nanoGPT TUI"
    CSS_PATH = "app.tcss"
    MODES = {mode: partial(make_screen, mode) for mode in SCREENS}
    DEFAULT_MODE = "data"
    BINDINGS = [
        Binding("f1", "help", "Help", id="help"),
        *(
            # priority: a function key always switches screens (TextArea takes f7 for select-all otherwise)
            # One group in the footer ("f2…f7 Screens") leaves room for the screen's own keys; F1 names each.
            Binding(key, f"switch_mode('{mode}')", title, id=f"screen.{mode}", priority=True, group=SCREEN_KEYS)
            for mode, (key, title, _) in SCREENS.items()
        ),
        # Not in the footer (as Textual's own ctrl+q): F1 and the palette list it, the room goes to the screen's keys.
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True, show=False),
    ]

    def __init__(self) -> None:
        # Open where the user would continue (nanogpt_tui.session_state); a few hundred bytes read.
        self.remembered, self._state_problem = session_state.read_state()
        self.DEFAULT_MODE = session_state.opening_screen(self.remembered, SCREENS)
        super().__init__()
        # The trainer the Train screen runs, if any: quitting stops it and waits for its checkpoint.
        self.trainer: TrainerProcess | None = None
        # Each main screen once it has been opened (AppScreen registers itself), for screens that read
        # another's state: the Model screen takes the Train screen's settings and the Chat screen's prompt.
        self.opened_screens: dict[type[Screen], Screen] = {}

    def opened_screen(self, screen_type: type[S]) -> S | None:
        """The screen of that type if it has been opened, else None."""
        return cast("S | None", self.opened_screens.get(screen_type))

    def on_mount(self) -> None:
        # After the first paint: importing torch holds the GIL for a second and would delay it.
        self.call_after_refresh(self.warm_up)
        self.call_after_refresh(session_state.after_launch, self, self.remembered, self._state_problem)

    @work(thread=True, exclusive=True, exit_on_error=False, group="warm-up")
    def warm_up(self) -> None:
        """Import the other screens' modules, then torch, in the background: first visits and the
        first training or chat start at once."""
        for mode in SCREEN_CLASSES:
            screen_class(mode)
        import core.common.devices  # noqa: F401  (imports torch)

        # torch brings millions of long-lived objects: without this, each of Python's full garbage
        # collections (which building a screen's widgets sets off) walks them all, 100-300 ms on the UI thread.
        gc.freeze()
        # And full collections 10x rarer than Python's default (one per 10 middle-generation ones): each
        # still walks every screen's widgets (40-60 ms, the slowest screen switches), and a UI that keeps
        # its widgets for its whole life makes little garbage that only a full pass would free.
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, 100)

    def action_help(self) -> None:
        help_screen = screen_class("help")
        if not isinstance(self.screen, help_screen):
            # Installed once, so its Markdown is parsed once: later visits only show it again.
            if not self.is_screen_installed("help"):
                self.install_screen(help_screen(SCREENS), "help")
            self.push_screen("help")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, (key, title, description) in SCREENS.items():
            yield SystemCommand(f"{title} screen ({key})", description, lambda m=mode: self.switch_mode(m))
        yield SystemCommand("Help", "Keys and a tour of the screens", self.action_help)
        yield SystemCommand("Watch a run", "Follow and steer a run trained in another terminal or machine", self.action_watch)
        # The screen's own actions and its focused widget's (the loss plot's), those the footer shows and
        # those it has no room for; disabled ones are left out. Ours have ids, Textual's (an Input's) do not.
        offered: set[str] = set()
        for key, active in screen.active_bindings.items():
            node, binding = active.node, active.binding
            ours = node is screen or (node is screen.focused and binding.id is not None)
            if ours and active.enabled and binding.description and binding.action not in offered:
                offered.add(binding.action)
                yield SystemCommand(binding.description, key, partial(self.run_action, binding.action, node))

    async def open_chat(self, checkpoint: Path) -> None:
        """Switch to Chat with `checkpoint` loaded (from the Checkpoints screen)."""
        await self.switch_mode("chat")
        screen = cast("ChatScreen", self.screen)
        assert isinstance(screen, screen_class("chat"))
        screen.load_checkpoint(checkpoint)

    async def resume_training(self, run: Path) -> None:
        """Switch to Train, set up to resume `run` (a run folder or checkpoint file)."""
        await self.switch_mode("train")
        screen = cast("TrainScreen", self.screen)
        assert isinstance(screen, screen_class("train"))
        screen.set_resume(run)

    def action_watch(self) -> None:
        """Ask which run to watch, then watch it: the run written to last is looked for first, in a worker."""
        self.find_latest_run()

    @work(thread=True, exclusive=True, exit_on_error=False, group="watch-prompt")
    def find_latest_run(self) -> None:
        from nanogpt_tui.screens.watch import find_latest_run

        found = find_latest_run()
        if not get_current_worker().is_cancelled:  # asked twice meanwhile: one prompt
            self.post_message(found)

    def on_latest_run_found(self, message: LatestRunFound) -> None:
        from nanogpt_tui.screens.watch import watch_prompt

        def chosen(spec: str | None) -> None:
            if spec:
                from core.runs.watch import resolve_run

                self.watch_run(resolve_run(spec))  # the prompt checked it

        self.push_screen(watch_prompt(message.run), chosen)

    def watch_run(self, run_dir: Path) -> None:
        """Show the Watch screen of `run_dir` over the current screen (quitting leaves that run alone)."""
        self.push_screen(screen_class("watch")(run_dir))  # type: ignore[call-arg]

    async def action_quit(self) -> None:
        """Quit; a training run is stopped first, so its latest checkpoint is saved (and offered for resuming
        at the next launch, which opens on this screen)."""
        session_state.remember_quit(self.current_mode, self.trainer.run_dir if self.trainer else None)
        if self.trainer is not None:
            self.notify("Stopping training and saving a checkpoint…", title="Quitting", timeout=60)  # stays up until the save is done
            self.trainer.stop()
            # Only the training worker: others (a chat reply, a sample) end when exit cancels them.
            # (An empty list would mean "every worker" to wait_for_complete.)
            training = [worker for worker in self.workers if worker.group == "train"]
            if training:
                await self.workers.wait_for_complete(training)
        self.exit()
