"""A small ``.env`` reader: ``NAME=value`` lines, nothing more.

Accepted: blank lines, ``#`` comment lines, an optional ``export`` prefix, spaces around
``=``, values in single quotes (literal) or double quotes (``\\"``, ``\\\\``, ``\\n``, ``\\t``
escapes), and a ``#`` comment after an unquoted value when whitespace precedes it
(``A=b#c`` keeps ``b#c``). Nothing is interpolated: ``$HOME`` stays ``$HOME``. A later line
wins over an earlier one. Values are one line each.

Errors name the file and line, never the line's text: it may hold a key.
"""

from __future__ import annotations

import re
from pathlib import Path

from launcher.errors import ConfigError

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
EXPORT = re.compile(r"export\s+")
ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}


def read_env_file(path: Path) -> dict[str, str] | None:
    """The variables in ``path``; None when there is no such file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_dotenv(text, str(path))


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
