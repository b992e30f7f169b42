"""NanoGPTApp: six screens (Data, Train, Checkpoints, Chat, Tokens, Model) over one engine.

Each screen is a Textual "mode" (the table in nanogpt_tui.screens), reached by one function key, from the
tabs at the top of every screen or from the command palette. Screens run engine work in thread workers;
torch is imported off the UI thread (see `warm_up`), so the first paint does not wait for it.

The app is the one place screens share: what one screen knows and another reads lives in the app's
reactives below (each written by one screen only), and a screen that wants another to act posts a message
up (nanogpt_tui.messages: OpenChat, ResumeTraining, WatchRun) that the app hands on. Screens never reach
into each other.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.css.stylesheet import StylesheetError
from textual.driver import Driver
from textual.message import Message
from textual.reactive import var
from textual.screen import Screen
from textual.worker import get_current_worker

from core.common import paths
from nanogpt_tui import session_state
from nanogpt_tui.messages import OpenChat, ResumeTraining, WatchRun
from nanogpt_tui.screens import SCREEN_CLASSES, SCREENS, screen_class
from nanogpt_tui.worker_threads import AbandonableExecutor

if TYPE_CHECKING:
    from core.settings.train_config import TrainConfig
    from core.training.process import TrainerProcess
    from nanogpt_tui.screens.watch import LatestRunFound


def make_screen(mode: str) -> Screen:
    return screen_class(mode)()


@dataclass
class WarmedUp(Message):
    """The app's `warm_up` has imported every screen's module."""


@dataclass
class HomeChecked(Message):
    """What cannot be done because the data folder cannot be written (core.common.paths.home_problem)."""

    problem: str | None


class NanoGPTApp(App[None]):
    """The nanogpt-tui application."""

    TITLE = "nanoGPT TUI"
    CSS_PATH = "app.tcss"
    MODES = {mode: partial(make_screen, mode) for mode in SCREENS}
    DEFAULT_MODE = "data"
    BINDINGS = [
        Binding("f1", "help", "Help", id="help"),
        *(
            # priority: a function key always switches screens (TextArea takes f7 for select-all otherwise).
            # Not in the footer: the tabs at the top of every screen name each one with its key.
            Binding(key, f"switch_mode('{mode}')", title, id=f"screen.{mode}", priority=True, show=False)
            for mode, (key, title, _) in SCREENS.items()
        ),
        # Not in the footer (as Textual's own ctrl+q): F1 and the palette list it, the room goes to the screen's keys.
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True, show=False),
    ]

    # What more than one screen reads, each written by one screen only (named first).
    # Train, or the Ladder screen (never both: each starts nothing while it is set): the trainer it runs, if
    # any. Quitting stops it and waits for its checkpoint; Checkpoints will
    # not rename or delete its run.
    trainer: var[TrainerProcess | None] = var(None)
    # Train: its form's settings, as last changed (problems or not). Model builds its untrained model from them.
    train_config: var[TrainConfig | None] = var(None)
    # Chat: the conversation's last prompt ("" when it has none). Model takes a new one as its text.
    chat_prompt: var[str] = var("")

    def __init__(self, driver_class: type[Driver] | None = None) -> None:
        # Open where the user would continue (nanogpt_tui.session_state); a few hundred bytes read.
        self.remembered, self._state_problem = session_state.read_state()
        self.DEFAULT_MODE = session_state.opening_screen(self.remembered, SCREENS)
        super().__init__(driver_class=driver_class)  # a bench's driver (nanogpt_tui.bench.displays), or Textual's
        # The threads thread workers run on (see on_load and action_quit).
        self.worker_threads = AbandonableExecutor()

    def on_load(self) -> None:
        # Thread workers run on threads quitting can leave behind: a worker blocked in the kernel (a FIFO,
        # a hung network disk) never keeps the app from ending (nanogpt_tui.worker_threads).
        self.worker_threads.wait_at_exit()
        asyncio.get_running_loop().set_default_executor(self.worker_threads)

    def on_mount(self) -> None:
        # After the first paint: importing torch holds the GIL for a second and would delay it.
        self.call_after_refresh(self.warm_up)
        self.call_after_refresh(session_state.after_launch, self, self.remembered, self._state_problem)
        self.check_home()

    @work(thread=True, exit_on_error=False, group="check-home")
    def check_home(self) -> None:
        """Say at once what cannot be done when the data folder cannot be written (a read-only disk)."""
        self.post_message(HomeChecked(paths.home_problem()))

    def on_home_checked(self, message: HomeChecked) -> None:
        if message.problem:
            self.notify(message.problem, title="Read-only data folder", severity="warning", timeout=20)

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
        self.post_message(WarmedUp())

    def on_warmed_up(self) -> None:
        """Read every screen's stylesheet now, in one parse, while the user looks at the first screen: on a
        screen's first visit Textual would read its file and parse the whole stylesheet again (each file's
        rules name its screen, so nothing shown changes)."""
        added = False
        for mode in SCREEN_CLASSES:
            screen = screen_class(mode)
            if isinstance(screen.CSS_PATH, str):  # found, as Textual finds it, beside the screen's module
                path = str((Path(inspect.getfile(screen)).parent / screen.CSS_PATH).resolve())
                if not self.stylesheet.has_source(path):
                    try:
                        self.stylesheet.read(path)
                    except StylesheetError:
                        continue  # (a broken install: the screen's visit says so, as Textual does)
                    added = True
        if added:
            self.stylesheet.reparse()

    def action_help(self) -> None:
        help_screen = screen_class("help")
        if not isinstance(self.screen, help_screen):
            # Installed once, so its Markdown is parsed once: later visits only show it again.
            if not self.is_screen_installed("help"):
                self.install_screen(help_screen(SCREENS), "help")
            self.push_screen("help")

    def action_ladder(self) -> None:
        """Show the Ladder screen (installed once: a ladder goes on training while it is not shown)."""
        from nanogpt_tui.screens.ladder import LadderScreen

        if not isinstance(self.screen, LadderScreen):
            if not self.is_screen_installed("ladder"):
                self.install_screen(LadderScreen(), "ladder")
            self.push_screen("ladder")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, (key, title, description) in SCREENS.items():
            yield SystemCommand(f"{title} screen ({key})", description, lambda m=mode: self.switch_mode(m))
        yield SystemCommand("Help", "Keys and a tour of the screens", self.action_help)
        yield SystemCommand("Watch a run", "Follow and steer a run trained in another terminal or machine", self.action_watch)
        yield SystemCommand("Ladder: from a bigram to the GPT", "Train each step of \"Let's build GPT\" on the same "
                            "data and compare their val loss", self.action_ladder)
        # The screen's own actions and its focused widget's (the loss plot's), those the footer shows and
        # those it has no room for; disabled ones are left out. Ours have ids, Textual's (an Input's) do not.
        offered: set[str] = set()
        for key, active in screen.active_bindings.items():
            node, binding = active.node, active.binding
            ours = node is screen or (node is screen.focused and binding.id is not None)
            if ours and active.enabled and binding.description and binding.action not in offered:
                offered.add(binding.action)
                yield SystemCommand(binding.description, key, partial(self.run_action, binding.action, node))

    # -- what a screen asks of another (nanogpt_tui.messages) ------------------------------------------

    async def open_chat(self, checkpoint: Path) -> None:
        """Switch to Chat with `checkpoint` loaded (the Checkpoints screen's c posts OpenChat)."""
        await self.switch_mode("chat")
        self.hand_on(OpenChat(checkpoint))

    async def resume_training(self, run: Path) -> None:
        """Switch to Train, set up to resume `run`, a run folder or checkpoint file (posted as ResumeTraining)."""
        await self.switch_mode("train")
        self.hand_on(ResumeTraining(run))

    def hand_on(self, message: OpenChat | ResumeTraining) -> None:
        """Post `message` to the current mode's screen (under any dialog left open on it), which acts on it."""
        # Stopped first: a message from the app to its screen would otherwise bubble back up to the app.
        self.screen_stack[0].post_message(message.stop())

    async def on_open_chat(self, message: OpenChat) -> None:
        await self.open_chat(message.checkpoint)

    async def on_resume_training(self, message: ResumeTraining) -> None:
        await self.resume_training(message.run)

    def on_watch_run(self, message: WatchRun) -> None:
        self.watch_run(message.run_dir)

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
        from nanogpt_tui.screens.watch import WatchScreen

        self.push_screen(WatchScreen(run_dir))

    async def action_quit(self) -> None:
        """Quit; a training run is stopped first, so its latest checkpoint is saved (and offered for resuming
        at the next launch, which opens on this screen). Other workers are not waited for beyond a moment
        (see `on_load`)."""
        session_state.remember_quit(self.current_mode, self.trainer.run_dir if self.trainer else None)
        if self.trainer is not None:
            self.notify("Stopping training and saving a checkpoint…", title="Quitting", timeout=60)  # stays up until the save is done
            self.trainer.stop()
            # Only the training worker: others (a chat reply, a sample) end when exit cancels them.
            # (An empty list would mean "every worker" to wait_for_complete.)
            training = [worker for worker in self.workers if worker.group == "train"]
            if training:
                await self.workers.wait_for_complete(training)
        self.worker_threads.quitting()  # any other worker gets a moment to end, then is left behind
        self.exit()
