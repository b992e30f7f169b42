"""The threads the app's thread workers run on: ones that quitting can leave behind.

Textual runs a thread worker in its event loop's default executor, and when the app ends, asyncio waits
for every thread of that executor, and then Python waits for them again at exit. A worker blocked in
the kernel (opening a FIFO, reading a hung network disk) cannot see its cancellation, so the app would
stay on screen (blank, its terminal given back) until it was killed. `AbandonableExecutor` runs each
job on a daemon thread of its own and waits for them when shut down (by asyncio, or at Python's exit:
`wait_at_exit`) as a ThreadPoolExecutor does, until `quitting()`: from then on it waits at most
`GRACE_S`, and a worker still running then is abandoned: the process ends without it. (The training
worker is waited for before that: `NanoGPTApp.action_quit` stops the training child and waits for its
save.)
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
GRACE_S = 1.0  # how long quitting waits for workers that have not ended yet


class AbandonableExecutor(ThreadPoolExecutor):
    """Runs each job on a daemon thread of its own; `shutdown` waits for them, at most `grace_s` in all
    once the app is `quitting` (None: as long as they run).

    A ThreadPoolExecutor only because asyncio's `set_default_executor` takes nothing else: none of its
    pool is used (no thread is started but those `submit` starts)."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.grace_s: float | None = None
        self.live: set[threading.Thread] = set()
        self._guard = threading.Lock()
        self._closed = False
        self._deadline: float | None = None  # when shutting down stops waiting (once quitting)

    def quitting(self, grace_s: float = GRACE_S) -> None:
        """The user quits: from now on, shutting down waits at most `grace_s` for the jobs still running."""
        self.grace_s = grace_s

    def wait_at_exit(self) -> None:
        """Shut down (waiting as `shutdown` does) when Python exits, if nothing did before: daemon threads
        are not waited for there, and a worker saving a file should still finish."""
        atexit.register(self.shutdown)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()

        def run() -> None:
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        result = fn(*args, **kwargs)
                    except BaseException as error:  # as ThreadPoolExecutor: the future carries it
                        future.set_exception(error)
                    else:
                        future.set_result(result)
            finally:
                with self._guard:
                    self.live.discard(thread)

        thread = threading.Thread(target=run, name=f"worker-{getattr(fn, '__name__', 'job')}", daemon=True)
        with self._guard:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self.live.add(thread)
        thread.start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No new jobs; with `wait`, wait for the running ones (once quitting, until `grace_s` after the
        first shutdown: asyncio's and the one at exit wait together at most that long)."""
        with self._guard:
            self._closed = True
            running = list(self.live)
        if not wait:
            return
        if self.grace_s is not None and self._deadline is None:  # (the first shutdown starts the clock)
            self._deadline = time.monotonic() + self.grace_s
        for thread in running:
            thread.join(None if self._deadline is None else max(0.0, self._deadline - time.monotonic()))
