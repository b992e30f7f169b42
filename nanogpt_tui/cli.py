"""The `nanogpt-tui` command: the app by default, or a headless subcommand."""

from __future__ import annotations

import argparse
import sys

from core import paths


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nanogpt-tui", description="Learn, train and play with small GPTs.")
    parser.add_argument("--home", metavar="DIR", help=f"data folder (default: ${paths.HOME_ENV} or the user data dir)")
    parser.set_defaults(func=run_app)
    return parser


def run_app(args: argparse.Namespace) -> int:
    from nanogpt_tui.app import NanoGPTApp

    NanoGPTApp().run()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.home:
        paths.set_home(args.home)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
