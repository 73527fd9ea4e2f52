"""Every command's --help shows each default once and only when it says something."""

from __future__ import annotations

import argparse
import re

import pytest

from hdfs_csi.cli import SUBCOMMANDS, build_parser


def _subparser(name: str) -> argparse.ArgumentParser:
    for action in build_parser(name)._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return action.choices[name]
    raise AssertionError(name)


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_help_shows_defaults_once_and_every_option_has_help(command: str) -> None:
    parser = _subparser(command)
    text = re.sub(r"\s+", " ", parser.format_help())
    assert "(default: None)" not in text
    assert not re.search(r"\(default: [^)]*\) \(default:", text), text
    assert "(default: [" not in text and "['" not in text          # no list reprs
    assert "(default: True)" not in text and "(default: False)" not in text
    for action in parser._actions:  # noqa: SLF001
        if action.option_strings and action.help != argparse.SUPPRESS:
            assert action.help, f"{command} {action.option_strings} has no help"
