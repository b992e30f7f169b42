"""The CLI's help: every option explained, and what the bare command does (offline advice: test_cli.py)."""

from __future__ import annotations

import argparse

import pytest

from nanogpt_tui.cli import build_parser, main


def options(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, argparse.Action]]:
    """(command, option) for every argument the CLI's parser and its subcommands' parsers add, as
    `build_parser` adds them (ArgumentParser.add_argument returns each; argparse lists them privately)."""
    added: list[tuple[str, argparse.Action]] = []
    add_argument = argparse.ArgumentParser.add_argument

    def recording(parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> argparse.Action:
        action = add_argument(parser, *args, **kwargs)
        added.append((parser.prog, action))
        return action

    monkeypatch.setattr(argparse.ArgumentParser, "add_argument", recording)
    build_parser()
    return added


def test_every_option_has_help(monkeypatch: pytest.MonkeyPatch) -> None:
    added = options(monkeypatch)
    assert len({command for command, _action in added}) > 10  # the commands' own parsers are seen too
    missing = [f"{command} {'/'.join(action.option_strings) or action.dest}"
               for command, action in added if not action.help]
    assert missing == []


def test_help_says_the_bare_command_opens_the_app(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "Without a command it opens the app" in " ".join(capsys.readouterr().out.split())


def test_every_commands_help_prints(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """argparse formats help text with %: a stray one (a "1%" in a help) broke `sample --help`."""
    commands = sorted({command.split()[1] for command, _action in options(monkeypatch) if len(command.split()) == 2})
    assert "sample" in commands and "train" in commands
    for command in commands:
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0, command
        assert "usage:" in capsys.readouterr().out, command
