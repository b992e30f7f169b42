"""Ending a process the way a stop signal asked, once its work is saved (torch-free).

`nanogpt-tui train` and the app's training child both catch Ctrl-C / SIGTERM / SIGHUP, let the trainer
save, and then end by that same signal, so a shell sees 128 + signum and a script running them stops too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys


def flush_output() -> None:
    """Flush stdout and stderr, unless they are gone (after a SIGHUP the terminal may be)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def end_by_signal(signum: int) -> int:
    """End this process by `signum` with its default action; where that is impossible, the status a
    shell would show."""
    flush_output()
    with contextlib.suppress(OSError, ValueError, AttributeError):
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    return 128 + signum
