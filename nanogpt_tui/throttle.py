"""Batching a worker's stream of events into few UI messages (each message costs the UI thread time)."""

from __future__ import annotations

import time
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class EventThrottle(Generic[T]):
    """Called in a worker thread with each event: batchable ones are posted together at most every
    `interval` seconds, any other one at once.

    An unbatchable event flushes the batch before it, so the receiver sees every event, in order.
    Call `flush()` when the stream ends, for the events still held back.
    """

    def __init__(self, post: Callable[[list[T]], None], batchable: Callable[[T], bool], interval: float) -> None:
        self.post = post
        self.batchable = batchable
        self.interval = interval
        self.pending: list[T] = []
        self.last_post = 0.0

    def __call__(self, event: T) -> None:
        self.pending.append(event)
        if not self.batchable(event) or time.monotonic() - self.last_post >= self.interval:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            events, self.pending = self.pending, []
            self.post(events)
            self.last_post = time.monotonic()
