"""The CLI's help: every option explained, and what the bare command does (offline advice: test_cli.py)."""

from __future__ import annotations

import argparse

import pytest

from nanogpt_tui.cli import build_parser, main


def options(parser: argparse.ArgumentParser, command: str = "nanogpt-tui"):
    """(command, option) for every argument of the parser and its subcommands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from options(sub, f"{command} {name}")
        else:
            yield command, action


def test_every_option_has_help() -> None:
    missing = [f"{command} {'/'.join(action.option_strings) or action.dest}"
               for command, action in options(build_parser()) if not action.help]
    assert missing == []


def test_help_says_the_bare_command_opens_the_app(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "Without a command it opens the app" in " ".join(capsys.readouterr().out.split())
