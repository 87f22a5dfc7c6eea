"""Reading a run document the way cloud-init would, for a sandbox machine.

:func:`parse_document` turns an instance's ``user_data`` (base64 of a ``#cloud-config``
document) into a :class:`BootPlan`: the files to write (decoded, with their modes) and the
systemd unit ``runcmd`` starts, with its ``ExecStart`` argv and ``Environment``. It
understands exactly what ``launcher/render`` emits — ``package_update``/``package_upgrade``,
``write_files`` (``b64``, ``gz+b64`` and plain text, ``owner``, ``permissions``) and
``runcmd`` made of ``systemctl`` calls — and refuses anything else with
:class:`DocumentRefused`, naming what it did not understand. A sandbox never guesses.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import yaml

HEADER = "#cloud-config"
TOP_KEYS = {"package_update", "package_upgrade", "write_files", "runcmd"}
FILE_KEYS = {"path", "content", "encoding", "owner", "permissions"}
TEXT = ("", "text/plain")
BASE64 = ("b64", "base64")
GZIP_BASE64 = ("gz+b64", "gz+base64", "gzip+b64", "gzip+base64")
UNIT_DIR = PurePosixPath("/etc/systemd/system")
PERMISSIONS = re.compile(r"^0?[0-7]{3,4}$")


class DocumentRefused(ValueError):
    """The document holds something the sandbox does not understand; the message says what."""


@dataclass(frozen=True)
class FileEntry:
    """One ``write_files`` entry, decoded: ``path`` is the instance's absolute path."""

    path: str
    data: bytes = field(repr=False)
    mode: int
    owner: str
    encoding: str


@dataclass(frozen=True)
class BootPlan:
    """What booting the document means: write ``files``, then start ``unit`` (whose
    ``exec_start`` argv and ``environment`` come from its unit file). ``ignored`` lists what
    a real instance would also do but a sandbox does not (timers, daemon-reload)."""

    files: tuple[FileEntry, ...]
    unit: str
    exec_start: tuple[str, ...]
    environment: tuple[tuple[str, str], ...]
    ignored: tuple[str, ...]
    exec_start_pre: tuple[str, ...] = ()

    def file(self, path: str) -> FileEntry:
        for entry in self.files:
            if entry.path == path:
                return entry
        raise DocumentRefused(f"the document writes no {path}")


def parse_document(user_data_b64: str) -> BootPlan:
    """The boot plan of ``user_data_b64``, or :class:`DocumentRefused`."""
    document = load_cloud_config(user_data_b64)
    unknown = sorted(set(document) - TOP_KEYS)
    if unknown:
        raise DocumentRefused(f"unknown cloud-config key(s): {', '.join(unknown)}")
    for key in ("package_update", "package_upgrade"):
        if document.get(key, False) is not False:
            raise DocumentRefused(f"{key} must be false: a sandbox installs no packages")
    files = tuple(decode_file(entry, n) for n, entry in enumerate(_list(document, "write_files")))
    unit, ignored = interpret_runcmd(_list(document, "runcmd"))
    unit_file = next((f for f in files if f.path == str(UNIT_DIR / unit)), None)
    if unit_file is None:
        raise DocumentRefused(f"runcmd starts {unit}, which the document does not write")
    service = read_unit(unit_file.data.decode("utf-8", errors="replace"), unit)
    return BootPlan(files, unit, service.exec_start, service.environment, tuple(ignored),
                    service.exec_start_pre)


def load_cloud_config(user_data_b64: str) -> dict[str, Any]:
    """Base64 → text → ``#cloud-config`` YAML mapping."""
    if not user_data_b64:
        raise DocumentRefused("the instance has no user_data: a sandbox machine boots run "
                              "documents only")
    try:
        text = base64.b64decode(user_data_b64, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise DocumentRefused("user_data is not base64 of UTF-8 text") from None
    if not text.startswith(HEADER + "\n"):
        raise DocumentRefused(f"user_data does not start with {HEADER!r}: only cloud-config "
                              "documents are understood")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:  # its text may quote the document: name the line only
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise DocumentRefused(f"the cloud-config is not valid YAML{where}: {problem}") from None
    if not isinstance(document, dict):
        raise DocumentRefused("the cloud-config is not a mapping")
    return document


def _list(document: dict[str, Any], key: str) -> list[Any]:
    value = document.get(key)
    if not isinstance(value, list) or not value:
        raise DocumentRefused(f"{key} must be a non-empty list")
    return value


def decode_file(entry: Any, number: int) -> FileEntry:
    """One ``write_files`` entry: path checked, content decoded, permissions parsed."""
    where = f"write_files[{number}]"
    if not isinstance(entry, dict):
        raise DocumentRefused(f"{where} is not a mapping")
    unknown = sorted(set(entry) - FILE_KEYS)
    if unknown:
        raise DocumentRefused(f"{where}: unknown key(s) {', '.join(unknown)}")
    path, content = entry.get("path"), entry.get("content", "")
    if not isinstance(path, str) or not safe_path(path):
        raise DocumentRefused(f"{where}: path {path!r} is not a clean absolute path")
    if not isinstance(content, str):
        raise DocumentRefused(f"{where} ({path}): content is not text")
    encoding = str(entry.get("encoding", "") or "")
    permissions = str(entry.get("permissions", "0644"))
    if not PERMISSIONS.match(permissions):
        raise DocumentRefused(f"{where} ({path}): permissions {permissions!r} not understood")
    return FileEntry(path, decode_content(content, encoding, f"{where} ({path})"),
                     int(permissions, 8), str(entry.get("owner", "root:root")), encoding or "text")


def safe_path(path: str) -> bool:
    """Absolute, normalised, no ``..``: it can be placed under a host root and stay there."""
    pure = PurePosixPath(path)
    return (pure.is_absolute() and ".." not in pure.parts and str(pure) == path
            and path != "/" and "\x00" not in path)


def decode_content(content: str, encoding: str, where: str) -> bytes:
    """cloud-init's encodings: plain text, base64, gzip then base64."""
    try:
        if encoding in TEXT:
            return content.encode("utf-8")
        if encoding in BASE64:
            return base64.b64decode(content, validate=True)
        if encoding in GZIP_BASE64:
            return gzip.decompress(base64.b64decode(content, validate=True))
    except (binascii.Error, ValueError, OSError, EOFError) as exc:
        raise DocumentRefused(f"{where}: content does not decode as {encoding}: {exc}") from None
    raise DocumentRefused(f"{where}: encoding {encoding!r} not understood")


def interpret_runcmd(runcmd: list[Any]) -> tuple[str, list[str]]:
    """The one service ``runcmd`` starts, and what it does that a sandbox skips.

    Understood: ``systemctl daemon-reload``, ``systemctl enable --now <x>.timer`` (not
    emulated: no timers in a sandbox), ``systemctl start [--no-block] <x>.service``
    (exactly one)."""
    started: list[str] = []
    ignored: list[str] = []
    for number, argv in enumerate(runcmd):
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise DocumentRefused(f"runcmd[{number}] is not an argv list")
        if argv == ["systemctl", "daemon-reload"]:
            ignored.append("systemctl daemon-reload (no systemd in a sandbox)")
        elif argv[:3] == ["systemctl", "enable", "--now"] and len(argv) == 4 \
                and argv[3].endswith(".timer"):
            ignored.append(f"{argv[3]} (timers are not emulated: no watchdog runs)")
        elif argv[:2] == ["systemctl", "start"] and argv[-1].endswith(".service") \
                and set(argv[2:-1]) <= {"--no-block"} and len(argv) <= 4:
            started.append(argv[-1])
        else:
            raise DocumentRefused(f"runcmd[{number}] {argv!r} is not understood")
    if len(started) != 1:
        raise DocumentRefused(f"runcmd must start exactly one service, not {started!r}")
    return started[0], ignored


@dataclass(frozen=True)
class Service:
    """The ``[Service]`` settings a sandbox acts on."""

    exec_start: tuple[str, ...]
    environment: tuple[tuple[str, str], ...]
    exec_start_pre: tuple[str, ...] = ()


def read_unit(text: str, unit: str) -> Service:
    """``ExecStartPre`` and ``ExecStart`` (split on spaces, as the renderer joins them) and
    the ``Environment`` pairs of a unit file's ``[Service]`` section."""
    section, commands, environment = "", {}, []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        if section != "Service" or not sep:
            continue
        if key in ("ExecStart", "ExecStartPre"):
            if key in commands:
                raise DocumentRefused(f"{unit}: more than one {key} is not understood")
            commands[key] = tuple(value.split())
        elif key == "Environment":
            for pair in value.split():
                name, eq, setting = pair.partition("=")
                if not eq:
                    raise DocumentRefused(f"{unit}: Environment item {pair!r} not understood")
                environment.append((name, setting))
    if "ExecStart" not in commands:
        raise DocumentRefused(f"{unit} has no ExecStart in [Service]")
    return Service(commands["ExecStart"], tuple(environment), commands.get("ExecStartPre", ()))
