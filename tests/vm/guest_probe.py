"""The e2e stages' training command wrapper, run inside the guest as the trainer user:

    python3 e2e_probe.py [--hold SECONDS] -- python3 train.py ...

It looks at the instance from the training process's side and writes what it saw to
``$LAUNCHER_REPORT_DIR/e2e-probe.json`` (uploaded with the run's outputs): who it runs as,
whether it can read the secrets file or reach the metadata address (both must fail), the
volume's mount, and the sha256 of every synced data file. Then it sleeps ``--hold`` seconds
(a long training step, for the scenarios that act mid-training) and becomes the real
training command. Standard library only; it never prints a secret (it reads none).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pwd
import socket
import sys
import time
from pathlib import Path

SECRETS_FILE = "/etc/launcher/secrets.env"
METADATA = ("169.254.169.254", 80)


def try_read_secrets() -> str:
    try:
        with open(SECRETS_FILE, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        return f"refused: {type(exc).__name__}"
    return "READABLE"


def try_metadata(timeout: float = 5.0) -> str:
    try:
        with socket.create_connection(METADATA, timeout=timeout) as conn:
            conn.sendall(b"GET /v1.json HTTP/1.0\r\nHost: 169.254.169.254\r\n\r\n")
            conn.settimeout(timeout)
            head = conn.recv(64)
    except OSError as exc:
        return f"unreachable: {type(exc).__name__}"
    return "REACHED" if head else "unreachable: closed"


def volume_mount(data_dir: str) -> str:
    """The /proc/mounts line of the filesystem holding ``data_dir``."""
    best = ""
    with open("/proc/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if data_dir.startswith(fields[1].rstrip("/") + "/") and len(fields[1]) > len(
                    best.split()[1] if best else ""):
                best = line.strip()
    return best


def checksums(data_dir: str) -> dict[str, str]:
    root = Path(data_dir)
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hold", type=float, default=0.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    data_dir = os.environ.get("LAUNCHER_DATA_DIR", "")
    report = {"uid": os.getuid(), "user": pwd.getpwuid(os.getuid()).pw_name,
              "secrets_file": try_read_secrets(), "metadata": try_metadata(),
              "mount": volume_mount(data_dir), "data_sha256": checksums(data_dir),
              "hold_s": args.hold, "started": time.time()}
    out = Path(os.environ["LAUNCHER_REPORT_DIR"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "e2e-probe.json").write_text(json.dumps(report, indent=2))
    print(f"e2e probe: {json.dumps({k: report[k] for k in ('user', 'secrets_file', 'metadata')})}",
          flush=True)
    time.sleep(args.hold)
    os.execvp(command[0], command)


if __name__ == "__main__":
    sys.exit(main())
