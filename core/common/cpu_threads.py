"""How long torch's idle CPU threads spin before they sleep: set before torch loads (torch-free).

torch's Linux wheels run their CPU threads on libgomp, which by default spins a thread that ran out of
work up to 300,000 times (milliseconds) before it sleeps. Alone that costs nothing; beside another busy
process (a second training, a test suite) the spinning threads hold the cores the working ones need.
Measured on 2 cores beside a training 3x96 (`nanogpt-tui` processes on 2 threads each, steps timed for
8 s): a 2x64 step took 141 and 1,421 ms (medians) with the default, 85-96 ms with 20,000 spins, 68-97 ms
with 2,000 and 44-48 ms with no spinning (OMP_WAIT_POLICY=PASSIVE). Alone, 3x96 steps took 45.4 ms with
20,000 spins against 45.9 with the default (median of 5 alternating pairs); 2,000 spins took 53.4 and
no spinning 25-70% longer. So 20,000: as fast alone, many times faster beside a load.
"""

from __future__ import annotations

import os

SPIN_COUNT = 20_000


def limit_spinning() -> None:
    """Set libgomp's spin count for this process and the ones it starts, unless the user chose one (or a
    wait policy). It takes effect only where torch has not loaded yet: call it first."""
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", str(SPIN_COUNT))
