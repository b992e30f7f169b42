"""Watching a run that another process trains: its metrics.jsonl read as it grows (torch-free).

`RunWatcher.poll()` turns the records added since the last call into the events a Trainer reports
(core.runs.events: Step, Eval, Sample, ...; a "session" record becomes a `Session` and a `Started`), plus
core.runs.control's `Ack`s, so a screen that draws a live run draws a watched one with the same code.

The file is read from the last offset, at most `CHUNK` bytes a call (`more` says whether some is left),
so memory stays bounded whatever its length. A last line without its newline is being written: it waits
for the next call. When the file is replaced (a resumed run trims it: a new inode) or shrinks, the watcher
starts again from its first byte and reports `Reset` first: what was shown is to be forgotten. The file
is read through core.common.safe_files (never a link, a FIFO or a device) and each line parsed by
core.runs.metrics.parse_record, as resume and curves do: what is not a record is skipped, counted, and
reported as a `FileProblem`, as is a file that cannot be read; neither ends the watch.

Whether a process trains the run now (`run_activity`): the session's pid when it runs on this host,
else how fresh the file is (a waiting trainer touches it every core.runs.control.HEARTBEAT_S).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.common import folder_lock, paths
from core.runs.control import Ack, Session
from core.runs.events import Event, Started
from core.common.safe_files import open_regular
from core.runs.metrics import MAX_LINE, METRICS_FILE, Skipped, event_from_record, parse_record
from core.settings.train_config import config_from_dict

CHUNK = 1 << 20  # bytes read per poll at most
STALE_S = 60.0  # no change to metrics.jsonl for this long: nobody seems to be training the run


class WatchError(ValueError):
    """The run to watch cannot be found."""


@dataclass
class Reset:
    """metrics.jsonl was replaced or truncated: forget what it said; it is read again from the start."""


@dataclass
class FileProblem:
    """metrics.jsonl cannot be read (a link, a FIFO...: `message` says which), or some of its lines are
    not records (how many, and the first). Reported once each time it changes; the watcher reads on."""

    message: str


WatchEvent = Event | Session | Ack | Reset | FileProblem


class MetricsTail:
    """Reads the complete lines added to a JSON-lines file since the last call (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.inode: int | None = None
        self.partial = b""  # the start of a line still being written
        self.partial_dropped = False  # that start was longer than MAX_LINE: the line is skipped when it ends
        self.more = False  # whether the file held more than the last call read
        self.lines = 0  # complete lines read so far (line numbers for `skipped`)
        self.skipped = Skipped()  # the lines that were not records (metrics.parse_record says why)

    def read(self, limit: int = CHUNK) -> tuple[list[dict[str, Any]], bool]:
        """The new records, and whether the file was replaced or truncated first (a reset). UnsafeFile
        (an OSError) when the file is a link, a FIFO or anything but a regular file."""
        try:
            file = open_regular(self.path)
        except FileNotFoundError:
            self.more = False
            return [], False
        with file:
            st = os.fstat(file.fileno())
            reset = self.inode is not None and (st.st_ino != self.inode or st.st_size < self.offset)
            if reset:
                self.offset, self.partial, self.partial_dropped, self.lines = 0, b"", False, 0
                self.skipped = Skipped()
            self.inode = st.st_ino
            file.seek(self.offset)
            data = file.read(limit)
        self.offset += len(data)
        self.more = self.offset < st.st_size
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        records = []
        for line in lines:
            self.lines += 1
            if self.partial_dropped:  # the end of a line too long to be a record
                self.partial_dropped = False
                self.skipped.add(self.lines, f"longer than {MAX_LINE} bytes, not a record")
                continue
            if not line.strip():
                continue
            record = parse_record(line)
            if isinstance(record, str):
                self.skipped.add(self.lines, record)
            else:
                records.append(record)
        if len(self.partial) > MAX_LINE:  # never a record: keep only that it was too long
            self.partial, self.partial_dropped = b"", True
        return records, reset


class RunWatcher:
    """The events in a run folder's metrics.jsonl, as it grows."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.tail = MetricsTail(self.run_dir / METRICS_FILE)
        self._problem = ""  # the last FileProblem reported
        self._skipped = 0  # skipped lines already reported

    @property
    def more(self) -> bool:
        """Whether the last poll left some of the file unread (call again at once)."""
        return self.tail.more

    def poll(self) -> list[WatchEvent]:
        try:
            records, reset = self.tail.read()
        except OSError as error:  # a link, a FIFO, a device in its place: said once, then looked at again
            return self._report(str(error))
        self._problem = ""
        events: list[WatchEvent] = [Reset()] if reset else []
        if reset:
            self._skipped = 0
        for record in records:
            kind = record.get("type")
            try:
                if kind == "session":
                    events += self._session(record)
                elif kind == "ack":
                    events.append(Ack(str(record["id"]), str(record["request"]), int(record["iter"]), record.get("error")))
                else:
                    event = event_from_record(record, self.run_dir)
                    if event is not None:
                        events.append(event)
            except (KeyError, TypeError, ValueError, OverflowError):
                continue  # malformed: not written by a trainer
        if self.tail.skipped.lines > self._skipped:
            self._skipped = self.tail.skipped.lines
            events.append(FileProblem(f"{self.tail.path} {self.tail.skipped}"))
        return events

    def _report(self, problem: str) -> list[WatchEvent]:
        if problem == self._problem:
            return []
        self._problem = problem
        return [FileProblem(problem)]

    def _session(self, record: dict[str, Any]) -> list[WatchEvent]:
        start = int(record["iter"])
        best = record.get("best_val_loss")
        started = Started(
            run_dir=self.run_dir, n_params=int(record["n_params"]), device=str(record["device"]),
            dtype=str(record["dtype"]), config=config_from_dict(record.get("config") or {}), start_iter=start,
            max_iters=int(record["max_iters"]), resumed=start > 0,
            best_val_loss=float("inf") if best is None else float(best),
            history={"steps": [], "evals": []},  # the earlier sessions' records come from the file itself
            plan=str(record.get("plan") or ""),
        )
        return [Session(int(record["pid"]), str(record["host"]), str(record["started"])), started]


@dataclass
class Activity:
    """Whether a process trains a run now: True, False, or None when that cannot be told."""

    live: bool | None
    age_s: float | None  # seconds since metrics.jsonl last changed (None: there is none)
    pid_alive: bool | None  # the session's process, when it runs on this host


def pid_alive(pid: int) -> bool | None:
    """Whether process `pid` runs on this host (None where that cannot be asked without harm)."""
    if os.name == "nt":
        return None  # os.kill(pid, 0) would terminate it on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except OSError:
        return None
    return True


def run_activity(run_dir: Path, session: Session | None = None) -> Activity:
    """Whether someone trains the run in `run_dir` now. The one place that decides: the run's lock first
    (held by a live writer on this machine), then the session's pid on this host, then the file's age (a
    writer on another machine, whose lock a shared folder may not show)."""
    try:
        age: float | None = max(0.0, time.time() - os.stat(Path(run_dir) / METRICS_FILE).st_mtime)
    except OSError:
        age = None
    alive = pid_alive(session.pid) if session is not None and session.host == socket.gethostname() else None
    if folder_lock.in_use(run_dir):
        return Activity(True, age, alive)
    if alive is not None:
        return Activity(alive, age, alive)
    return Activity(None if age is None else age < STALE_S, age, None)


def resolve_run(spec: str) -> Path:
    """A run folder from a name in the data folder's runs or a path; WatchError if it has no metrics.jsonl."""
    spec = spec.strip()
    if not spec:
        raise WatchError("name a run (a folder holding metrics.jsonl)")
    candidates = [Path(spec).expanduser()]
    if "/" not in spec and "\\" not in spec:
        candidates.insert(0, paths.runs_dir() / spec)
    for path in candidates:
        folder = path.parent if path.name == METRICS_FILE else path
        if (folder / METRICS_FILE).is_file():
            return folder
    raise WatchError(f"{spec!r} is not a run folder: no {METRICS_FILE} in it (yet)")


def latest_run() -> Path | None:
    """The run folder in the data folder whose metrics.jsonl changed last, if any."""
    latest: tuple[float, Path] | None = None
    for folder in paths.runs_dir().iterdir():
        try:
            mtime = (folder / METRICS_FILE).stat().st_mtime
        except OSError:
            continue
        if latest is None or mtime > latest[0]:
            latest = (mtime, folder)
    return latest[1] if latest else None
