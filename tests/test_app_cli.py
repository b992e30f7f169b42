"""The command line's Ctrl-C handling while a training run saves (the rest of the CLI: test_cli.py)."""

from __future__ import annotations

import threading

import pytest

from nanogpt_tui.cli import wait_for_event


class InterruptedEvent(threading.Event):
    """An Event whose first `interrupts` waits are cut short by Ctrl-C, as a user pressing it would."""

    def __init__(self, interrupts: int) -> None:
        super().__init__()
        self.interrupts = interrupts

    def wait(self, timeout: float | None = None) -> bool:
        if self.interrupts:
            self.interrupts -= 1
            raise KeyboardInterrupt
        self.set()  # the trainer finished its save
        return super().wait(timeout)


def test_ctrl_c_while_saving_keeps_waiting_for_the_trainer() -> None:
    event = InterruptedEvent(3)
    told: list[str] = []
    wait_for_event(event, lambda: told.append("saving"))
    assert event.is_set() and told == ["saving"] * 3


def test_ctrl_c_while_training_reaches_the_caller() -> None:
    with pytest.raises(KeyboardInterrupt):
        wait_for_event(InterruptedEvent(1))
