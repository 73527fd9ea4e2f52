"""One ``--help`` style for every command: a default is shown once, and only when it says
something.

argparse's ``ArgumentDefaultsHelpFormatter`` appends ``(default: X)`` to every
option, so options whose help already names their default showed it twice
(``(default: min(3, datanodes)) (default: None)``), flags showed the value of
their destination (``--no-fsync ... (default: True)`` while fsync is on), and
lists came out as Python reprs.  This formatter leaves the help alone when it
already mentions a default, for flags (``store_true``/``store_false``/
``store_const``) and when the default is None; lists are joined with commas,
and ``--x/--no-x`` options name the flag that is on.
"""

from __future__ import annotations

import argparse

_FLAG_ACTIONS = (argparse._StoreTrueAction, argparse._StoreFalseAction,  # noqa: SLF001
                 argparse._StoreConstAction, argparse._CountAction,  # noqa: SLF001
                 argparse._AppendConstAction)  # noqa: SLF001


class DefaultsHelpFormatter(argparse.HelpFormatter):
    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if isinstance(action, argparse.BooleanOptionalAction):
            # it appends "(default: %(default)s)" itself, i.e. "True": name the flag instead
            text = text.replace(" (default: %(default)s)", "")
            if isinstance(default, bool):
                on = [o for o in action.option_strings if not o.startswith("--no-")]
                off = [o for o in action.option_strings if o.startswith("--no-")]
                flag = (on if default else off) or action.option_strings
                return f"{text} (default: {flag[0]})"
            return text
        if ("default" in text.lower() or not action.option_strings
                or isinstance(action, _FLAG_ACTIONS)
                or default is None or default is argparse.SUPPRESS or default in ([], (), "")):
            return text
        if isinstance(default, (list, tuple)):
            default = ",".join(str(v) for v in default)
        shown = str(default).replace("%", "%%")   # help strings are %-formatted
        return f"{text} (default: {shown})" if text else f"(default: {shown})"
