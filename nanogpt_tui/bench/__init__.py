"""`nanogpt-tui bench tui`: is the app responsive while it trains, and does it slow training down?

One module per measurement, and `tui` runs them all and prints the table:
- training.py: training in the app against headless, key-to-screen latency and the UI's load meanwhile;
- first_paint.py: launch to first paint, in a fresh Python process;
- switches.py: screen switches (first visits and warm), in a headless app over a realistic home;
- displays.py: the app run headless but drawing its screen updates as for a terminal, to time and count them;
- tui.py: `bench_tui`, their goals and the figures' table.
"""
