"""The `nanogpt-tui` command: the app by default, or a headless subcommand (one module per command).

Subcommands import the engine lazily, so `nanogpt-tui` alone opens the app without waiting for torch.
Engine errors meant for the user (a missing file, a corrupt checkpoint, an unavailable device, ...)
print as one clear line and exit with status 1; anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import atexit
import gc

from core.common import paths
from core.common.cpu_threads import limit_spinning
from nanogpt_tui.cli import bench, export, inference, inspect, ladder, listing, prepare, train
from nanogpt_tui.cli.common import err_console, error_line, is_user_error

COMMAND_MODULES = (prepare, train, ladder, inference, listing, inspect, export, bench)

# At exit the interpreter's last collection walks every object still alive; frozen, they are skipped
# (measured on 2 cores: `eval` of a small checkpoint ends in 2.5 s instead of 3.2).
atexit.register(gc.freeze)


def run_app(args: argparse.Namespace) -> int:
    from nanogpt_tui.app import NanoGPTApp

    app = NanoGPTApp()
    app.run()
    return app.return_code or 0  # non-zero when the app crashed (Textual printed why)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nanogpt-tui",
        description="Learn, train and play with small GPTs. Without a command it opens the app (a terminal UI); "
                    "each command below runs the same work headless.",
    )
    parser.add_argument("--home", metavar="DIR", help=f"data folder (default: ${paths.HOME_ENV} or the user data dir)")
    parser.set_defaults(func=run_app)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    limit_spinning()  # before torch loads, here or in a training child
    args = build_parser().parse_args(argv)
    if args.home:
        paths.set_home(args.home)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        err_console.print("Interrupted.")
        return 130
    except Exception as error:  # user errors print cleanly, bugs re-raise
        if not is_user_error(error):
            raise
        err_console.print(error_line(error))
        return 1

