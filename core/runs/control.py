"""Steering a run from outside its process: `control.json` in the run folder (torch-free).

A file, not a socket, so it works wherever the run folder is seen: another terminal, another machine
on a shared folder, a cluster job. The protocol:

- A controller (the app's Watch screen) adds a request to `control.json` with `send()`: a new id, a
  `Request`, who sent it. The file keeps the last `KEPT_REQUESTS` requests and is replaced
  atomically (core.common.disk.write_atomic), so a reader never sees half of it.
- The trainer (`RunControl.poll`, called between steps and twice a second while paused) stats the file
  at most every `POLL_S`, reads it when it changed, passes each request it has not seen to the trainer
  (any `Steerable`: its own thread-safe methods, through `apply`) and acknowledges it with an
  `{"type": "ack", "id", "request", "iter", "error"}` record in metrics.jsonl. Requests already in the file
  when the trainer starts are old (meant for an earlier session) and ignored. Each id is served and
  acknowledged once, however often the file repeats it; only its last `KEPT_REQUESTS` entries count.
- The file is input from anyone who can write the folder: it is read through core.common.safe_files
  (never through a link, never a FIFO or device, at most `MAX_CONTROL_BYTES`, JSON nested at most
  safe_files.MAX_DEPTH deep). A file that fails any of that is ignored, with a warning in the trainer's
  log (the same one at most every `WARN_EVERY_S`): it never stops, blocks or slows a run. A controller
  replaces such a file with a good one.
- At start the trainer records who it is: `{"type": "session", "iter", "pid", "host", "started", ...}`
  (see `session_record`). While it waits (paused) it touches metrics.jsonl every `HEARTBEAT_S`, so a
  watcher can tell a paused run from a dead one by the file's time.

Two controllers writing at the same moment can lose one request (the last replace wins): its sender
sees no acknowledgment and says so. On NFS the trainer may see a request a few seconds late
(attribute caching): `ACK_TIMEOUT_S` leaves room for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, TextIO

from core.common.disk import DEFAULT_MODE, DiskWriteError, write_text_atomic
from core.common.safe_files import read_json
from core.runs import metrics

CONTROL_FILE = "control.json"
KEPT_REQUESTS = 16  # the file keeps this many latest requests (the trainer tells them apart by id)
POLL_S = 0.5  # the trainer looks at the file at most this often
HEARTBEAT_S = 10.0  # a waiting trainer touches metrics.jsonl this often
ACK_TIMEOUT_S = 15.0  # a controller waits this long for an acknowledgment
MAX_CONTROL_BYTES = 64 * 2**10  # a control file holds KEPT_REQUESTS requests of about 150 bytes each
WARN_EVERY_S = 60.0  # the trainer repeats a warning about the same unreadable control file this rarely
MAX_WORD = 100  # characters of an unknown request word an acknowledgment repeats
log = logging.getLogger(__name__)


class Request(str, enum.Enum):  # (enum.StrEnum is Python 3.11+; the project supports 3.10)
    """What a trainer can be asked between steps, from its own process (the app's training child, a thread)
    or another one (control.json). The values are the words control.json carries (FORMATS.md)."""

    PAUSE = "pause"
    UNPAUSE = "resume"  # control.json's word since version 1: it means "unpause", not a resume from a checkpoint
    STOP = "stop"  # end the run cleanly, saving its latest checkpoint
    SAVE_NOW = "save_now"
    SAMPLE_NOW = "sample_now"

    @property
    def label(self) -> str:
        """The request in a user's words: "pause", "unpause", "stop", "save now", "sample now"."""
        return self.name.lower().replace("_", " ")

    @classmethod
    def label_of(cls, word: str) -> str:
        """The label of a request named in control.json (an unknown word as it is)."""
        try:
            return cls(word).label
        except ValueError:
            return word


class Steerable(Protocol):
    """What takes requests: the Trainer, and TrainerProcess (a Trainer in a child process). Each method
    may be called from any thread and returns at once; the trainer acts on it between steps."""

    @property
    def paused(self) -> bool: ...
    def pause(self) -> None: ...
    def unpause(self) -> None: ...
    def stop(self) -> None: ...
    def save_now(self) -> None: ...
    def sample_now(self) -> None: ...


def apply(target: Steerable, request: Request) -> None:
    """Pass `request` on to `target`'s method for it."""
    methods: dict[Request, Callable[[], None]] = {
        Request.PAUSE: target.pause, Request.UNPAUSE: target.unpause, Request.STOP: target.stop,
        Request.SAVE_NOW: target.save_now, Request.SAMPLE_NOW: target.sample_now,
    }
    methods[request]()


class ControlError(OSError):
    """A request could not be written (a read-only or vanished run folder)."""


@dataclass
class Ack:
    """The trainer took request `id` at iteration `iter` (or refused it: `error`)."""

    id: str
    request: str
    iter: int
    error: str | None = None


@dataclass
class Session:
    """Who trains a run: the process and host that recorded a session, and when it started (ISO 8601)."""

    pid: int
    host: str
    started: str


def read_requests(path: Path) -> list[dict[str, Any]]:
    """The requests in a control file (its last KEPT_REQUESTS, each with a string id); none if it is
    missing or holds no requests list. UnsafeFile (an OSError) naming the file when it cannot be read
    as one: a link, a FIFO, larger than MAX_CONTROL_BYTES, not JSON, nested too deeply
    (core.common.safe_files.read_json)."""
    try:
        data = read_json(path, MAX_CONTROL_BYTES)
    except FileNotFoundError:
        return []
    requests = data.get("requests") if isinstance(data, dict) else None
    if not isinstance(requests, list):
        return []
    return [r for r in requests if isinstance(r, dict) and isinstance(r.get("id"), str)][-KEPT_REQUESTS:]


def send(run_dir: Path, request: Request) -> str:
    """Add `request` to the run's control file; its id, which the trainer's acknowledgment will carry.
    A control file that cannot be read (see `read_requests`) is replaced, never written through."""
    try:
        request = Request(request)
    except ValueError:
        raise ValueError(f"unknown request {request!r}: one of {', '.join(r.value for r in Request)}") from None
    path = Path(run_dir) / CONTROL_FILE
    entry = {
        "id": uuid.uuid4().hex, "request": request.value, "from": f"{socket.gethostname()}:{os.getpid()}",
        "sent": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        earlier = read_requests(path)
    except OSError:
        earlier = []  # not ours to keep: the new file replaces it
    requests = (earlier + [entry])[-KEPT_REQUESTS:]
    try:
        write_text_atomic(path, json.dumps({"requests": requests}), mode=DEFAULT_MODE, what=f"write {CONTROL_FILE}")
    except DiskWriteError as error:
        raise ControlError(str(error)) from None
    except OSError as error:
        raise ControlError(f"cannot write {path}: {error.strerror or error}") from None
    return entry["id"]


def session_record(config: dict[str, Any], start_iter: int, device: str, n_params: int,
                   best_val_loss: float, plan: str = "") -> dict[str, Any]:
    """The record a trainer writes when it starts: what a watcher needs to show the run and who trains it.
    `config` is every TrainConfig field; `plan` what a time budget chose and why (only when there is one)."""
    record = {
        "type": "session", "iter": start_iter, "max_iters": config["max_iters"],
        "pid": os.getpid(), "host": socket.gethostname(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": device, "dtype": config["dtype"], "n_params": n_params,
        "best_val_loss": best_val_loss, "config": config,
    }
    if plan:
        record["plan"] = plan
    return record


class RunControl:
    """The trainer's end: serves the control file's new requests to `target` and acknowledges them in
    the run's metrics.jsonl, open as `log` (see the module docstring). Nothing in the control file can
    stop, block or slow the trainer: a file that cannot be read is ignored, with a warning in the log
    (at most once per WARN_EVERY_S for the same problem)."""

    def __init__(self, target: Steerable, run_dir: Path, log: TextIO) -> None:
        self.target = target
        self.run_dir = run_dir
        self.log = log
        self.path = run_dir / CONTROL_FILE
        self._signature = self._stat()
        self._warned: tuple[str, float] | None = None  # the last problem warned about, and when
        # Requests left from an earlier session are not for us: a stale "stop" must not end this one.
        self._seen = {r["id"] for r in self._read() or []}
        self._checked = self._touched = time.monotonic()

    def _stat(self) -> tuple[int, int, int, int] | None:
        try:
            st = os.lstat(self.path)  # (a link's own: a swapped target is seen as a change)
        except OSError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode

    def _read(self) -> list[dict[str, Any]] | None:
        """The file's requests; None, with a warning, when it cannot be read."""
        try:
            return read_requests(self.path)
        except OSError as error:
            self._warn(str(error))
            return None

    def _warn(self, problem: str) -> None:
        now = time.monotonic()
        if self._warned is None or self._warned[0] != problem or now - self._warned[1] >= WARN_EVERY_S:
            self._warned = (problem, now)
            log.warning("%s; requests in it are ignored", problem)

    def poll(self, iter_num: int) -> None:
        """Pass new requests on to the target, acknowledged at `iter_num` (cheap: a stat at most every
        POLL_S, a read only on change). Each id is passed on and acknowledged once."""
        now = time.monotonic()
        if now - self._checked < POLL_S:
            return
        self._checked = now
        if self.target.paused and now - self._touched >= HEARTBEAT_S:
            self._touched = now
            with contextlib.suppress(OSError):
                if os.utime in os.supports_fd:
                    os.utime(self.log.fileno())  # through our open file: never a link's target
                else:  # (Windows)
                    os.utime(self.run_dir / metrics.METRICS_FILE)
        signature = self._stat()
        if signature == self._signature:
            return
        self._signature = signature
        requests = self._read()
        if requests is None:  # (the ids seen are kept: a file put back later is not served again)
            return
        for entry in requests:
            if entry["id"] in self._seen:
                continue
            self._seen.add(entry["id"])  # (an id repeated in the file is served once)
            word = entry.get("request")
            try:
                request: Request | None = Request(word)
            except (ValueError, TypeError):
                request = None
            if request is not None:
                apply(self.target, request)
            shown = str(word)[:MAX_WORD]
            ack = Ack(entry["id"], shown, iter_num, None if request else f"unknown request {shown!r}")
            metrics.write_record(self.log, {"type": "ack", **dataclasses.asdict(ack)})
        # Only ids still in the file can come again: the set stays as small as the file.
        self._seen = {r["id"] for r in requests}
