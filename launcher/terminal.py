"""Text from outside made safe to print on the operator's terminal.

What the commands print comes partly from places anyone may have written: a run's
``status.json``, logs and manifest (anything holding the run's B2 key can write them) and
Vultr's API (labels, tags, error texts). Printed raw, an escape sequence in them would drive
the terminal: clear it, retitle it, hide or forge lines. :func:`printable` shows every control
character as a visible escape instead (ESC as ``\\x1b``): C0 except newline and tab, DEL, C1,
and the bidirectional marks and overrides that reorder text on screen. A carriage return
becomes a line break (a progress bar's updates then read as lines; none overwrites another).
:func:`escape` is that, then rich's markup escape, for text printed through rich (where
``[bold]`` would be markup); every command imports it in place of rich's own.
:func:`make_console` is the one way a command makes a rich console: no highlighting of numbers
and paths it did not mean to colour, and no ``:name:`` emoji codes (a status text reading
``:warning:`` is shown as written, not as a symbol the run never sent).
"""

from __future__ import annotations

import re

from rich.console import Console
from rich.markup import escape as _markup_escape

_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e"
                          "\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with each control character written as a visible escape (see the module
    doc); newlines and tabs are kept, ``\\r\\n`` and a lone ``\\r`` become ``\\n``."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _UNPRINTABLE.sub(_visible, text)


def escape(text: str) -> str:
    """:func:`printable`, then escaped for rich's markup: shown exactly as it reads."""
    return _markup_escape(printable(text))


def make_console(*, stderr: bool = False, soft_wrap: bool = False) -> Console:
    """A rich console for the command's own output (see the module doc)."""
    return Console(stderr=stderr, highlight=False, emoji=False, soft_wrap=soft_wrap)


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
