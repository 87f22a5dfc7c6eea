"""A sandbox container's output: its onstart run with stdout and stderr on a pipe, copied to
``console.log`` unchanged and, line by line as it arrives, to an optional
``output(instance_id, text)`` callback (the Vast emulator's container log, which
``request_logs`` serves). Line by line because a failing onstart destroys its instance before
it exits: output held until the end would be lost with the instance.

A reader thread copies until the pipe closes; a finished onstart waits at most
:data:`OUTPUT_DRAIN_S` for it (a background process may keep the pipe open, and the reader
then goes on alone). The callback gets at most :data:`OUTPUT_LINE_MAX` bytes of a line (the
rest of that line is skipped there, kept in the console); one that raises is logged and not
called again for that onstart. Nothing here raises for the output's sake: the console stays
the record.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

OUTPUT_LINE_MAX = 8192  # bytes of one output line handed to the callback
OUTPUT_DRAIN_S = 5.0  # how long a finished onstart waits for its output to be copied

Output = Callable[[str, str], None]


@dataclass(frozen=True)
class Console:
    """Where one container's output goes: ``path`` (its ``console.log``) and ``output``."""

    instance_id: str
    path: Path
    output: Output | None
    log: Callable[[str], None]

    def run(self, argv: Sequence[str], *, env: dict[str, str], cwd: Path, umask: int,
            timeout: float) -> int:
        """Run ``argv`` in its own session, its output pumped; its exit status. Killed
        after ``timeout`` (subprocess.TimeoutExpired is raised, as ``subprocess.run``
        would)."""
        proc = subprocess.Popen(list(argv), env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True, umask=umask)
        assert proc.stdout is not None
        reader = threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True,
                                  name=f"output-{self.instance_id}")
        reader.start()
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        finally:
            reader.join(OUTPUT_DRAIN_S)

    def _pump(self, stream: IO[bytes]) -> None:
        send, cut = self.output, False
        try:
            with stream, open(self.path, "ab", buffering=0) as console:
                for chunk in iter(lambda: stream.readline(OUTPUT_LINE_MAX), b""):
                    console.write(chunk)
                    if send is not None and not cut:
                        send = self._send(send, chunk)
                    cut = not chunk.endswith(b"\n") and len(chunk) >= OUTPUT_LINE_MAX
        except OSError as exc:
            self.log(f"container {self.instance_id}: output lost ({type(exc).__name__}: "
                     f"{exc})")

    def _send(self, send: Output, chunk: bytes) -> Output | None:
        """One line to the callback; None (no more calls) once it has raised."""
        text = chunk.decode("utf-8", "replace").rstrip("\r\n")
        try:
            send(self.instance_id, text)
        except Exception as exc:  # the callback's failure must not end the output's copy
            self.log(f"container {self.instance_id}: output callback failed "
                     f"({type(exc).__name__}: {exc}); console.log only from here")
            return None
        return send
