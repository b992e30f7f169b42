"""Launch to first paint: a fresh Python process imports the app, starts it, and reports when its first
screen has been drawn (interpreter start and imports included)."""

from __future__ import annotations

import subprocess
import sys
import time

# Run in a fresh interpreter: prints seconds from process start to the first screen drawn.
FIRST_PAINT_SCRIPT = """
import asyncio, sys, time
started = float(sys.argv[1])
from nanogpt_tui.app import NanoGPTApp

async def main():
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)):  # returns once the first screen is mounted
        painted = asyncio.Event()
        app.call_after_refresh(painted.set)  # runs once that screen has been drawn
        await painted.wait()
        print(time.time() - started)

asyncio.run(main())
"""



def first_paint_seconds() -> float:
    """Seconds from launching a fresh Python process to the app's first screen drawn."""
    started = time.time()
    result = subprocess.run(
        [sys.executable, "-c", FIRST_PAINT_SCRIPT, str(started)], capture_output=True, text=True, check=True, timeout=120
    )
    return float(result.stdout.strip().splitlines()[-1])
