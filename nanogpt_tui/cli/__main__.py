"""`python -m nanogpt_tui.cli`: the same as the `nanogpt-tui` command."""

import sys

from nanogpt_tui.cli import main

sys.exit(main())
