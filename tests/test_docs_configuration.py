"""CONFIGURATION.md documents every flag of every command and every key.

Flags are read from the real argument parsers and keys from
``csi_driver.params``, so adding a knob without documenting it fails here.
"""

from __future__ import annotations

import argparse
import pathlib

import pytest

from hdfs_csi.cli import build_parser

REPO = pathlib.Path(__file__).resolve().parents[1]
DOC = (REPO / "CONFIGURATION.md").read_text(encoding="utf-8")


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser(name)
    for action in parser._actions:  # noqa: SLF001 - argparse has no public accessor
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return action.choices[name]
    raise AssertionError(f"no subcommand {name}")


@pytest.mark.parametrize("command", ["driver", "mount", "minidfs", "bench", "demo"])
def test_every_flag_is_documented(command: str) -> None:
    flags = {opt for action in _subparser(command)._actions  # noqa: SLF001
             for opt in action.option_strings
             if opt.startswith("--") and opt != "--help" and action.help != argparse.SUPPRESS}
    missing = sorted(f for f in flags if f"`{f}`" not in DOC and f"`{f} " not in DOC
                     and f"{f}`" not in DOC)
    assert not missing, f"CONFIGURATION.md does not mention {command} flags {missing}"


def test_every_key_and_env_var_is_documented() -> None:
    from csi_driver import cli, params

    keys = {*params.STORAGE_CLASS_KEYS, *params.VOLUME_CONTEXT_KEYS, *params.SECRET_KEYS}
    missing = sorted(k for k in keys if f"`{k}`" not in DOC)
    assert not missing, f"CONFIGURATION.md does not mention keys {missing}"
    env_missing = sorted(v for v in cli.ENV.values() if f"`{v}`" not in DOC)
    assert not env_missing, f"CONFIGURATION.md does not mention env vars {env_missing}"
