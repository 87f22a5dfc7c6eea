"""A small ``.env`` reader: ``NAME=value`` lines, nothing more.

Accepted: blank lines, ``#`` comment lines, an optional ``export`` prefix, spaces around
``=``, values in single quotes (literal) or double quotes (``\\"``, ``\\\\``, ``\\n``, ``\\t``
escapes), and a ``#`` comment after an unquoted value when whitespace precedes it
(``A=b#c`` keeps ``b#c``). Nothing is interpolated: ``$HOME`` stays ``$HOME``. A later line
wins over an earlier one. Values are one line each.

Errors name the file and line, never the line's text: it may hold a key. Only a regular
file is read (a FIFO would block for ever, a device never end); one that other users may
read or change is read with a warning on stderr (once, when it sets anything), saying the
``chmod`` that fixes it.
"""

from __future__ import annotations

import re
import shlex
import stat
from pathlib import Path

from launcher.errors import ConfigError
from launcher.localfiles import read_local
from launcher.waiting import stderr_line

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
EXPORT = re.compile(r"export\s+")
ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}
MAX_BYTES = 1 << 20
_warned: set[str] = set()


def read_env_file(path: Path) -> dict[str, str] | None:
    """The variables in ``path``; None when there is no such file, {} for ``/dev/null``.
    Anything else but a regular file is a ConfigError, found without blocking."""
    found = read_local(path, expected="a regular file of NAME=value lines", limit=MAX_BYTES)
    if found is None:
        return None
    try:
        text = found.data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    values = parse_dotenv(text, str(path))
    if values:
        warn_if_others_can_read(path, found.mode)
    return values


def others_may_read(mode: int) -> bool:
    """Whether a file of this mode is open to its group or to everyone (``mode & 0o077``)."""
    return bool(stat.S_IMODE(mode) & 0o077)


def exposure(path: Path, mode: int) -> str:
    """``<path> can be read or changed by other users (mode 0644) and holds keys``."""
    return (f"{path} can be read or changed by other users (mode {stat.S_IMODE(mode):04o}) "
            "and holds keys")


def chmod_command(path: Path) -> str:
    return f"chmod 600 {shlex.quote(str(path))}"


def warn_if_others_can_read(path: Path, mode: int) -> None:
    """Say once per process, on stderr, that ``path`` is open to other users."""
    if others_may_read(mode) and str(path) not in _warned:
        _warned.add(str(path))
        stderr_line(f"warning: {exposure(path, mode)}: {chmod_command(path)}")


def parse_dotenv(text: str, origin: str = ".env") -> dict[str, str]:
    """The variables of a ``.env`` text; ``origin`` names it in errors."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.removeprefix("\ufeff").splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, value = _assignment(stripped, f"{origin}:{number}")
        values[name] = value
    return values


def _assignment(line: str, where: str) -> tuple[str, str]:
    export = EXPORT.match(line)
    if export and "=" not in line[:export.end()]:
        line = line[export.end():]
    name, sep, rest = line.partition("=")
    name = name.strip()
    if not sep or not NAME.fullmatch(name):
        raise ConfigError(f"{where}: expected NAME=value (a variable name, '=', a value)")
    return name, _value(rest, where)


def _value(raw: str, where: str) -> str:
    rest = raw.strip()
    if not rest or (raw[0].isspace() and rest.startswith("#")):
        return ""
    quote = rest[0]
    if quote not in "'\"":
        return re.split(r"\s#", rest, maxsplit=1)[0].rstrip()
    end, value = _quoted(rest, quote)
    if end is None:
        raise ConfigError(f"{where}: the {quote} quote is not closed on this line "
                          "(values are one line)")
    tail = rest[end + 1:].strip()
    if tail and not tail.startswith("#"):
        raise ConfigError(f"{where}: unexpected text after the closing {quote} quote")
    return value


def _quoted(text: str, quote: str) -> tuple[int | None, str]:
    """Where the quote opened at ``text[0]`` closes, and the value inside it."""
    out: list[str] = []
    index = 1
    while index < len(text):
        char = text[index]
        if char == quote:
            return index, "".join(out)
        if quote == '"' and char == "\\" and index + 1 < len(text):
            following = text[index + 1]
            out.append(ESCAPES.get(following, "\\" + following))
            index += 2
            continue
        out.append(char)
        index += 1
    return None, ""
