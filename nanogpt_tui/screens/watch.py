"""The Watch screen: a run another process trains (another terminal, a torchrun job, a cluster writing to a
shared folder), live, and steered from here.

Reached from the Checkpoints screen (w) or the command palette ("Watch a run": the prompt offers the run
written to last, found in the app's worker by `find_latest_run` first); escape goes back. A thread
worker reads the run's metrics.jsonl as it grows (core.runs.watch) and posts what it found as one message
per poll (every POLL_S; a long file is caught up a chunk at a time), one message in flight at a time, so
the UI never falls behind with a queue of batches. The events are the Trainer's own (core.runs.events),
drawn by the Train screen's RunMonitor; this screen keeps the run's `state` (the Train screen's Phase) and
words the status (the session, the file's freshness). Keys send pause, resume, stop, save-now and sample-now
through the run's control.json (core.runs.control); each request is answered by the trainer's acknowledgment
or, after core.runs.control.ACK_TIMEOUT_S, by "no answer". Leaving the screen or quitting the app never stops
the run: only `s` does.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import get_current_worker

from core.runs import control
from core.runs import watch as run_watch
from core.runs.control import Ack, Request, Session
from core.runs.events import Failed, Finished, Paused, Started, Step, Unpaused
from core.runs.watch import STALE_S, Activity, FileProblem, Reset, RunWatcher, WatchError, resolve_run, run_activity
from nanogpt_tui.screens.train_messages import TRAINING, Phase
from nanogpt_tui.widgets.dialogs import TextModal, TextPrompt
from nanogpt_tui.widgets.footer import KeyFooter
from nanogpt_tui.widgets.run_monitor import RunMonitor
from nanogpt_tui.widgets.screen_tabs import ScreenTabs

POLL_S = 0.5  # how often the worker looks for new records
ACTIVITY_S = 1.0  # how often it asks whether the trainer is still there (the status line's clock)


def ago(seconds: float) -> str:
    """A short human duration: 4 s, 2 min, 1 h 5 min."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


@dataclass
class LatestRunFound(Message):
    """The run folder whose metrics.jsonl changed last (None: no run has one), for the prompt to offer."""

    run: Path | None


def find_latest_run() -> LatestRunFound:
    """Scan every run folder (slow with many runs or a network disk: call it in a worker)."""
    try:
        return LatestRunFound(run_watch.latest_run())
    except OSError:  # an unreadable runs folder: nothing to offer, the prompt still asks
        return LatestRunFound(None)


def watch_prompt(latest: Path | None) -> TextModal:
    """Asks for the run to watch, offering `latest` (find_latest_run's, found beforehand)."""

    def check(value: str) -> str | None:
        try:
            resolve_run(value)
        except WatchError as error:
            return str(error)
        return None

    question = "Watch a run: its name, or its folder (one another machine writes to, say)"
    return TextModal(TextPrompt(question, latest.name if latest else "", check))


@dataclass
class WatchEvents(Message):
    """What the latest poll found in metrics.jsonl."""

    events: list[Any] = field(default_factory=list)


@dataclass
class ActivityChecked(Message):
    """Whether the trainer is still there, and how old the file's last change is."""

    activity: Activity


@dataclass
class RequestSent(Message):
    id: str
    request: Request


@dataclass
class RequestFailed(Message):
    request: Request
    error: str


class WatchScreen(Screen[None]):
    """A live view of a run trained elsewhere, and the keys to steer it."""

    BINDINGS = [
        Binding("escape", "back", "Back", id="watch.back"),
        Binding("p", "send('pause')", "Pause", id="watch.pause"),
        Binding("u", "send('unpause')", "Unpause", id="watch.unpause"),
        Binding("s", "send('stop')", "Stop", id="watch.stop"),
        Binding("ctrl+s", "send('save_now')", "Save", id="watch.save"),
        Binding("n", "send('sample_now')", "Sample", id="watch.sample"),
        Binding("ctrl+l", "log_scale", "Log scale", id="watch.log_scale", show=False),  # as on the Train screen (the plot has l)
        Binding("ctrl+g", "x_axis", "X axis", id="watch.x_axis", show=False),
    ]

    # What the records say the run is doing, in the Train screen's words: STARTING (no record of its start
    # yet), RUNNING, PAUSED, FINISHED, FAILED, or INTERRUPTED (its process ended without a Finished record).
    # Which keys work follows it (check_action).
    state: reactive[Phase] = reactive(Phase.STARTING, bindings=True)

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.session: Session | None = None
        self.activity: Activity | None = None
        self.iter = 0
        self.pending: dict[str, Request] = {}  # request id -> request, awaiting the trainer's acknowledgment
        self.overdue: set[str] = set()  # pending ids already reported as unanswered
        self.recent_acks: dict[str, Ack] = {}  # the latest acknowledgments, for one that overtakes its RequestSent
        self.handled = threading.Event()  # the worker's last batch has been shown: it may post the next
        self.handled.set()

    def compose(self) -> ComposeResult:
        yield ScreenTabs(f"Watch {self.run_dir.name}", back=("esc", "back"))
        yield RunMonitor(status=f"Reading {self.run_dir}…", plot_title=f"loss · {self.run_dir.name}", id="watch-monitor")
        yield KeyFooter()

    @property
    def monitor(self) -> RunMonitor:
        return self.query_one(RunMonitor)

    def on_mount(self) -> None:
        self.monitor.live = False  # the history is drawn once, when it has been read (on_activity_checked)
        self.monitor.trainer = "a trainer"  # until a session record says which
        self.watch_run()

    # -- the worker ------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="watch")
    def watch_run(self) -> None:
        """Poll metrics.jsonl until the screen goes away; never writes anything."""
        worker = get_current_worker()
        watcher = RunWatcher(self.run_dir)
        session: Session | None = None
        checked = 0.0
        while not worker.is_cancelled:
            events = watcher.poll()
            session = next((e for e in reversed(events) if isinstance(e, Session)), session)
            if events:
                while not self.handled.wait(POLL_S):  # one batch in flight: memory stays bounded
                    if worker.is_cancelled:
                        return
                self.handled.clear()
                self.post_message(WatchEvents(events))
            if watcher.more:
                continue  # catching up with a long file
            now = time.monotonic()
            if now - checked >= ACTIVITY_S:
                checked = now
                self.post_message(ActivityChecked(run_activity(self.run_dir, session)))
            worker.cancelled_event.wait(POLL_S)

    def on_watch_events(self, message: WatchEvents) -> None:
        try:
            steps: list[Step] = []
            for event in message.events:
                if isinstance(event, Step):
                    steps.append(event)
                    continue
                if steps:
                    self.show_steps(steps)
                    steps = []
                self.show_event(event)
            if steps:
                self.show_steps(steps)
            self.show_status()
        finally:
            self.handled.set()

    def on_activity_checked(self, message: ActivityChecked) -> None:
        if not self.monitor.live:
            self.monitor.live = True  # everything before this was the run's history
            self.monitor.plot.replot()
        self.activity = message.activity
        if message.activity.pid_alive is False and self.state in TRAINING:
            self.state = Phase.INTERRUPTED
        elif message.activity.pid_alive and self.state == Phase.INTERRUPTED:
            self.state = Phase.RUNNING
        self.show_status()

    # -- showing events ----------------------------------------------------------------------------

    def show_steps(self, steps: list[Step]) -> None:
        self.monitor.show_steps(steps)
        self.iter = steps[-1].iter + 1
        if self.state in (Phase.STARTING, Phase.INTERRUPTED):
            self.state = Phase.RUNNING  # a run recorded before sessions were: steps are all it says

    def show_event(self, event: Any) -> None:
        """Keep the run's state and tell the monitor; what only a watcher sees (Reset, Session, Ack, FileProblem)
        is ours."""
        if isinstance(event, Reset):
            self.monitor.begin(self.monitor.max_iters)
            self.monitor.clear_log()
            self.monitor.write_log("[dim]metrics.jsonl was rewritten (a resumed run trims it): reading it again[/]")
            return
        if isinstance(event, Session):
            self.session = event
            self.monitor.trainer = f"pid {event.pid} on {event.host}"
            return
        if isinstance(event, Ack):
            self.acknowledged(event)
            return
        if isinstance(event, FileProblem):  # the watch goes on: the file may be fixed, or only some lines are bad
            self.monitor.write_log(f"[yellow]{escape(event.message)}[/]")
            return
        self.monitor.show_event(event)
        if isinstance(event, Started):
            self.iter, self.state = event.start_iter, Phase.RUNNING
        elif isinstance(event, Paused):
            self.state, self.iter = Phase.PAUSED, event.iter
        elif isinstance(event, Unpaused):
            self.state = Phase.RUNNING
        elif isinstance(event, Finished):
            self.state, self.iter = Phase.FINISHED, event.iter
            if self.monitor.live:
                self.notify(f"{event.reason} at iteration {event.iter}", title=f"{self.run_dir.name} finished")
        elif isinstance(event, Failed):
            self.state, self.iter = Phase.FAILED, event.iter
            if self.monitor.live:
                self.notify(event.message, title=f"{self.run_dir.name} failed", severity="error", timeout=15)

    def show_status(self) -> None:
        where = f" / {self.monitor.max_iters}" if self.monitor.max_iters else ""
        text = {
            Phase.STARTING: "Waiting for the trainer's first record",
            Phase.RUNNING: f"Training at iteration {self.iter}{where}",
            Phase.PAUSED: f"Paused at iteration {self.iter}{where} (r resumes)",
            Phase.FINISHED: f"Finished at iteration {self.iter}{where}",
            Phase.FAILED: f"Failed at iteration {self.iter}{where}",
            Phase.INTERRUPTED: f"The trainer ended without finishing, at iteration {self.iter}{where}",
        }[self.state]
        parts = [text]
        if self.session:
            try:
                since = datetime.fromisoformat(self.session.started).astimezone().strftime("%Y-%m-%d %H:%M")
            except ValueError:
                since = self.session.started  # as the trainer wrote it
            parts.append(f"trained by pid {self.session.pid} on {self.session.host} since {since}")
        age = self.activity.age_s if self.activity else None
        stalled = age is not None and age >= STALE_S and self.state in TRAINING
        if age is not None:
            parts.append(f"no record for {ago(age)}" if stalled else f"last record {ago(age)} ago")
        self.monitor.set_status(" · ".join(parts), "stalled" if stalled else self.state)

    # -- steering ----------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that cannot do anything now show disabled in the footer."""
        if action != "send":
            return True
        request = parameters[0] if parameters else None
        if request == "pause":
            return True if self.state == Phase.RUNNING else None
        if request == "unpause":
            return True if self.state == Phase.PAUSED else None
        return True if self.state in (Phase.RUNNING, Phase.PAUSED) else None

    def action_send(self, name: str) -> None:
        """Ask the trainer for the request of that name (a Request's, in lower case)."""
        request = Request[name.upper()]
        self.monitor.write_log(f"asking the trainer to {request.label}…")
        self.send_request(request)

    @work(thread=True, exit_on_error=False, group="watch-send")
    def send_request(self, request: Request) -> None:
        try:
            request_id = control.send(self.run_dir, request)
        except OSError as error:
            self.post_message(RequestFailed(request, str(error)))
            return
        self.post_message(RequestSent(request_id, request))

    def on_request_sent(self, message: RequestSent) -> None:
        self.pending[message.id] = message.request
        if message.id in self.recent_acks:
            self.acknowledged(self.recent_acks[message.id])
            return
        self.set_timer(control.ACK_TIMEOUT_S, lambda: self.no_answer(message.id))

    def on_request_failed(self, message: RequestFailed) -> None:
        self.notify(message.error, title=f"Could not ask to {message.request.label}", severity="error")

    def acknowledged(self, ack: Ack) -> None:
        ours = self.pending.pop(ack.id, None) is not None
        late = " (late)" if ack.id in self.overdue else ""
        self.overdue.discard(ack.id)
        self.recent_acks[ack.id] = ack
        if len(self.recent_acks) > control.KEPT_REQUESTS:
            del self.recent_acks[next(iter(self.recent_acks))]
        words = Request.label_of(ack.request)
        if ack.error:
            self.monitor.write_log(f"[red]the trainer refused {words}:[/] {ack.error}")
        else:
            self.monitor.write_log(f"the trainer took {words} at iteration {ack.iter}{late}")
        if ours:
            self.notify(f"at iteration {ack.iter}{late}", title=f"The trainer took {words}", severity="error" if ack.error else "information")

    def no_answer(self, request_id: str) -> None:
        """The request is still unacknowledged after ACK_TIMEOUT_S; a later acknowledgment is still shown."""
        request = self.pending.get(request_id)
        if request is None:
            return
        self.overdue.add(request_id)
        words = request.label
        self.monitor.write_log(f"[yellow]no answer from the trainer to {words}[/]")
        self.notify(
            f"nothing took {words} in {control.ACK_TIMEOUT_S:.0f} s. The trainer reads requests between steps "
            "(a long step, eval or sample delays it): is the run still training, on a machine that sees this folder?",
            title="No answer from the trainer", severity="warning", timeout=10,
        )

    # -- view ----------------------------------------------------------------------------------------

    def action_back(self) -> None:
        self.dismiss(None)  # the worker is cancelled with the screen; the run goes on

    def action_log_scale(self) -> None:
        self.monitor.plot.toggle_log_scale()

    def action_x_axis(self) -> None:
        self.monitor.plot.cycle_x_mode()
