"""Training in a child process: the same Trainer, its events sent back over a pipe.

The app trains this way. In one process, every moment the UI thread holds the GIL (drawing the plot,
handling a key) the trainer's thread waits, and on a few cores each wait stalls all of torch's worker
threads: measured on 2 cores, in-process training in the app ran at 0.69 of headless speed. In a
child process the trainer has a GIL of its own and pays only for the CPU time the UI really uses.
The child runs at a lower scheduling priority (CHILD_NICENESS): its threads take every core, and when
the UI needs one (a key, a screen's first visit) the kernel hands it over at once rather than sharing
it out; the trainer loses only the time the UI really uses, as before.

`TrainerProcess` has the Trainer's interface: `run()` blocks (call it from a worker thread) and calls
`on_event` with each event, in order, in that thread; it is `Steerable` (core.runs.control) like the
Trainer: pause, unpause, stop, save_now and sample_now may be called from any thread. This module imports no torch: only the child does.

The pipes: the parent writes the pickled (config, resume) and then `Request`s to the child's stdin;
the child writes pickled events to its stdout. Whatever else the child prints goes to a log file,
never to the terminal the app draws on. If the child dies without a Finished or Failed event (killed,
crashed), `run()` reports a Failed event with its exit code and the log's last lines. If the parent
dies, the child's stdin closes and it stops the Trainer, which saves the latest checkpoint. SIGTERM
and SIGHUP (a closed terminal, a shutdown) stop it the same way, and once the checkpoint is saved it
ends by that signal. It ignores SIGINT: a Ctrl-C reaches the whole process group, and the parent
decides when training stops.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from core.common.child_process import child_env, module_command
from core.runs.control import Request, apply
from core.runs.events import Event, Failed, Finished, Paused, Started, Step, Unpaused
from core.settings.train_config import TrainConfig
from core.training.stop_signals import end_by_signal

STOP_SIGNALS = tuple(name for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
LOG_TAIL_CHARS = 2000
CHILD_NICENESS = 5  # added to the app's: the UI first when both want a core


def _child() -> None:
    """The child process: read (config, resume) from stdin, run a Trainer, pickle its events to stdout,
    serve the requests that follow on stdin."""
    # Ctrl-C reaches the whole process group: the parent decides when we stop, and if it dies, our
    # stdin closes and we stop with a checkpoint saved. Until there is a trainer, a hangup has nothing to save.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):  # (a system may refuse it: then at the app's priority)
            os.nice(CHILD_NICENESS)
    # Requests are read on a copy of stdin: the reading thread blocks in it until the parent closes the
    # pipe, and at exit Python's teardown of sys.stdin would wait on that read's lock and abort.
    requests, events = os.fdopen(os.dup(0), "rb"), os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to the log (our stderr), never into the event stream
    config, resume = pickle.load(requests)
    from core.training.trainer import Trainer  # torch loads here, in the child only

    # torch's modules live as long as we do: frozen, the collector never walks them again (each
    # collection and the last one at exit, which took 0.5 s of a short run's end on 2 cores).
    gc.freeze()

    sending = threading.Lock()

    def send(event: Event) -> None:
        with sending:
            try:
                pickle.dump(event, events)
                events.flush()
            except OSError:  # the parent is gone: stop (which saves); there is no one to tell
                trainer.stop()

    trainer = Trainer(config, send, resume=resume)

    def serve_requests() -> None:
        while True:
            try:
                request = pickle.load(requests)
            except (EOFError, OSError, pickle.UnpicklingError):  # the parent is gone: stop, which saves
                trainer.stop()
                return
            if isinstance(request, Request):
                apply(trainer, request)

    received: list[int] = []

    def on_stop_signal(signum: int, frame: object) -> None:
        received.append(signum)
        trainer.stop()  # (the trainer's lock is reentrant: safe even if this thread holds it now)

    for name in STOP_SIGNALS:
        signal.signal(getattr(signal, name), on_stop_signal)
    threading.Thread(target=serve_requests, name="requests", daemon=True).start()
    trainer.run()
    if received:  # the checkpoint is saved: end as the signal asked, so whoever sent it sees it did
        with contextlib.suppress(OSError):
            events.close()
        end_by_signal(received[0])


class TrainerProcess:
    """A Trainer run in a child process (see the module docstring)."""

    def __init__(
        self,
        config: TrainConfig,
        on_event: Callable[[Event], None],
        resume: str | os.PathLike[str] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.on_event = on_event
        self.resume_from = None if resume is None else str(resume)
        self.cancel = cancel or threading.Event()
        self.run_dir: Path | None = None  # known once the Started event arrives
        self.pid: int | None = None  # the child's process id, once it runs
        self.iter_num = 0  # the latest iteration reported
        self.returncode: int | None = None  # the child's exit status, once it has ended
        self._paused = False
        self._requests: IO[bytes] | None = None
        self._sending = threading.Lock()
        self._stopping = False

    @property
    def paused(self) -> bool:
        return self._paused

    def _send(self, message: Any) -> None:
        with self._sending:
            if self._requests is None:
                return
            try:
                pickle.dump(message, self._requests)
                self._requests.flush()
            except (OSError, ValueError):
                pass  # the child has ended: nothing left to ask

    def pause(self) -> None:
        self._paused = True
        self._send(Request.PAUSE)

    def unpause(self) -> None:
        self._paused = False
        self._send(Request.UNPAUSE)

    def stop(self) -> None:
        self._stopping = True
        self._send(Request.STOP)

    def save_now(self) -> None:
        self._send(Request.SAVE_NOW)

    def sample_now(self) -> None:
        self._send(Request.SAMPLE_NOW)

    def run(self) -> None:
        """Start the child and relay its events until it ends. Never raises: a failure is a Failed event."""
        with tempfile.TemporaryFile() as log:
            try:
                process = subprocess.Popen(
                    module_command("core.training.process"),
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=child_env(),
                )
            except OSError as error:
                self.on_event(Failed(0, f"could not start the training process: {error}", "error"))
                return
            assert process.stdin is not None and process.stdout is not None
            self.pid = process.pid
            with self._sending:
                self._requests = process.stdin
            self._send((self.config, self.resume_from))
            if self._paused:  # asked for before the child was there
                self._send(Request.PAUSE)
            watcher = threading.Thread(target=self._watch_cancel, args=(process,), name="cancel-watch", daemon=True)
            watcher.start()
            ended = self._relay(process.stdout)
            self.returncode = process.wait()
            with self._sending:
                self._requests = None
                process.stdin.close()
            if not ended:
                log.seek(0)
                self._died(process.returncode, log.read().decode("utf-8", "replace"))

    def _watch_cancel(self, process: subprocess.Popen[bytes]) -> None:
        """Turn the cancel event (a worker's, say) into a stop request while the child runs."""
        while process.poll() is None:
            if self.cancel.wait(0.2):
                if not self._stopping:
                    self.stop()
                return  # asked once: the child saves and ends by itself

    def _relay(self, events: IO[bytes]) -> bool:
        """Pass the child's events on until its stream ends; True when it sent Finished or Failed."""
        ended = False
        while True:
            try:
                event = pickle.load(events)
            except (EOFError, OSError, pickle.UnpicklingError):
                return ended
            if isinstance(event, Started):
                self.run_dir = event.run_dir
                self.iter_num = event.start_iter
            elif isinstance(event, Step):
                self.iter_num = event.iter + 1
            elif isinstance(event, (Paused, Unpaused)):
                self._paused = isinstance(event, Paused)
            elif isinstance(event, (Finished, Failed)):
                self.iter_num = event.iter
                ended = True
            self.on_event(event)

    def _died(self, returncode: int | None, log: str) -> None:
        how = f"was killed by signal {-returncode}" if returncode and returncode < 0 else f"exited with status {returncode}"
        kept = f" Its latest checkpoint is in {self.run_dir}." if self.run_dir else ""
        self.on_event(Failed(self.iter_num, f"the training process {how} before it finished.{kept}", "error",
                             log[-LOG_TAIL_CHARS:].strip()))


if __name__ == "__main__":
    _child()
