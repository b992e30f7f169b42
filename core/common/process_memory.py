"""This process's memory as the operating system counts it (torch-free): resident now, and at its peak.

Read from Linux's /proc and from getrusage; None where the system does not tell (the caller shows nothing).
"""

from __future__ import annotations

import os
import sys


def resident_bytes() -> int | None:
    """This process's resident memory (RSS) now, or None where /proc is not there."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def peak_resident_bytes() -> int | None:
    """The most resident memory this process has held since it started, or None (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere
