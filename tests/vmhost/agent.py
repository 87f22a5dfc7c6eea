"""The QEMU guest agent of a test VM: run one command inside the guest, as root.

The test image carries ``qemu-guest-agent``; each VM gets a virtio-serial port named
``org.qemu.guest_agent.0`` whose host end is a unix socket (:func:`agent_devices`). Only the
host that runs the VM reaches it: the tests use it to do what an operator with root on the
instance could do (kill the runner), never to deliver or inspect a run.

:func:`guest_exec` synchronises the channel (``guest-sync``), starts the command
(``guest-exec``) and polls ``guest-exec-status`` until it exits or the deadline passes.
"""

from __future__ import annotations

import base64
import json
import random
import socket
import time
from dataclasses import dataclass
from pathlib import Path

AGENT_PORT = "org.qemu.guest_agent.0"
READ_CHUNK = 65536


class AgentError(RuntimeError):
    """The guest agent did not answer in time, refused, or the socket failed."""


@dataclass(frozen=True)
class ExecResult:
    """A finished ``guest-exec``: exit code (None when killed by a signal) and output."""

    exit_code: int | None
    stdout: str
    stderr: str


def agent_devices(socket_path: Path) -> list[str]:
    """The QEMU arguments that give the guest its agent port, host end at ``socket_path``."""
    return ["-device", "virtio-serial-pci,id=vser0",
            "-chardev", f"socket,id=qga0,path={socket_path},server=on,wait=off",
            "-device", f"virtserialport,bus=vser0.0,chardev=qga0,name={AGENT_PORT}"]


class _Channel:
    """Line-delimited JSON on the agent's socket; every read bounded by ``deadline``."""

    def __init__(self, path: Path, deadline: float) -> None:
        self.deadline = deadline
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.buffer = b""
        try:
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            self.sock.connect(str(path))
        except OSError as exc:
            self.sock.close()
            raise AgentError(f"cannot reach the guest agent at {path}: {exc}") from None

    def close(self) -> None:
        self.sock.close()

    def send(self, name: str, **arguments: object) -> None:
        message = {"execute": name, **({"arguments": arguments} if arguments else {})}
        try:
            self.sock.sendall(json.dumps(message).encode() + b"\n")
        except OSError as exc:
            raise AgentError(f"cannot send {name}: {exc}") from None

    def reply(self) -> dict:
        """The next JSON message (bytes before a stray 0xff are dropped)."""
        while b"\n" not in self.buffer:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise AgentError("the guest agent did not answer in time")
            self.sock.settimeout(min(left, 5.0))
            try:
                chunk = self.sock.recv(READ_CHUNK)
            except TimeoutError:
                continue
            except OSError as exc:
                raise AgentError(f"guest agent socket: {exc}") from None
            if not chunk:
                raise AgentError("the guest agent closed its socket")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            return json.loads(line.replace(b"\xff", b"").decode() or "{}")
        except ValueError:
            return {}

    def call(self, name: str, **arguments: object) -> object:
        self.send(name, **arguments)
        while True:
            answer = self.reply()
            if "error" in answer:
                raise AgentError(f"{name}: {answer['error'].get('desc', answer['error'])}")
            if "return" in answer:
                return answer["return"]


def _sync(channel: _Channel) -> None:
    """Drop whatever an earlier session left on the channel (``guest-sync`` with a nonce);
    retried until the agent is up or the deadline passes."""
    nonce = random.randint(1, 2**31)  # noqa: S311 - a message id, not a secret
    channel.send("guest-sync", id=nonce)
    while channel.reply().get("return") != nonce:
        pass


def guest_exec(path: Path, argv: list[str], timeout: float) -> ExecResult:
    """Run ``argv`` in the guest as root through the agent at ``path``; its result.
    :class:`AgentError` when the agent cannot be reached or the command outlives
    ``timeout``."""
    deadline = time.monotonic() + timeout
    delay = 1.0
    while True:
        channel = _Channel(path, deadline)
        try:
            _sync(channel)
            break
        except AgentError:
            channel.close()
            if time.monotonic() + delay >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
    try:
        started = channel.call("guest-exec", path=argv[0], arg=argv[1:],
                               **{"capture-output": True})
        pid = started["pid"]  # type: ignore[index]
        delay = 0.2
        while True:
            status = channel.call("guest-exec-status", pid=pid)
            if status.get("exited"):  # type: ignore[union-attr]
                return ExecResult(status.get("exitcode"),  # type: ignore[union-attr]
                                  _decoded(status, "out-data"), _decoded(status, "err-data"))
            if time.monotonic() + delay >= deadline:
                raise AgentError(f"{argv[0]} still running after {timeout:g}s")
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    finally:
        channel.close()


def _decoded(status: object, key: str) -> str:
    data = status.get(key) if isinstance(status, dict) else None
    return base64.b64decode(data).decode(errors="replace") if data else ""
