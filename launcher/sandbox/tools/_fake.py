"""The sandbox's fake machine tools: one implementation behind every shim in this directory.

A sandbox machine (:mod:`launcher.sandbox`) is a process on the demo machine, not a VM: it
has no block device to format or mount, no firewall to change and no GPU. The runner calls
these names on its PATH exactly as on an instance; each fake does the harmless equivalent,
says in its output (stderr) that it is a sandbox fake, and appends a JSON line to
``<host>/var/log/sandbox-fakes.jsonl``. ``<host>`` is ``$LAUNCHER_RUNNER_TEST_HOST_ROOT``,
the machine's host root; no fake ever writes outside it.

- ``blkid -p -o export DEV``: a fresh (sparse, all-zero) device is blank (exit 2, no output,
  as blkid says); after the fake ``mkfs`` the device's first bytes hold a marker header and
  blkid reports ``TYPE`` and ``UUID`` from it.
- ``mkfs.ext4`` / ``mkfs.xfs DEV``: writes that marker header into the device file.
- ``mount -t T -o O DEV DIR`` / ``umount [-l] DIR``: the "mount" is a line added to (removed
  from) ``<host>/proc/mounts``, and what the run writes to the volume lands in DIR, a plain
  directory. A read-write mount notes DIR in the device's marker header (``HOME``), so the
  volume knows where its files are; a read-only mount (``-o ro``) of a volume whose files are
  elsewhere (another machine's, after a detach and attach) makes an empty DIR a symbolic
  link to them, and ``umount`` turns it back into an empty directory. Read-only is not
  enforced, and a read-write mount never follows ``HOME`` (data does not travel with a
  read-write volume: a runner that finds it empty syncs again).
- ``iptables``: recorded; ``-C`` (is the rule there?) answers no, everything else succeeds.
- ``apt-get``: recorded, installs nothing and succeeds (a container image's missing
  packages, :mod:`launcher.runner.aptget`: the demo machine's own packages are never touched).
- ``nvidia-smi``: fails loudly: a sandbox runs cpu_only documents only and must not ask.
- ``useradd``: refuses: the sandbox never creates accounts on the demo machine.
- ``python3``: the health phase's matmul probe (``python3 -c <script> cpu|cuda N``, a script
  that imports torch) is SIMULATED — there is no torch on the demo machine; every other use
  (the training command, for instance) runs the real interpreter.

The runner's own tests (``tests/runner/machine/fakes/``) reuse this module for the same
behaviour and add, on their side only, failure knobs and a call log; ``main(tool, args)``,
``is_matmul_probe`` and ``matmul_report`` are the whole of what they use. Nothing here reads
a test's settings.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

HOST_ENV = "LAUNCHER_RUNNER_TEST_HOST_ROOT"
MAGIC = b"LAUNCHER-SANDBOX-FAKE-FS\n"
HEADER_BYTES = 4096
HERE = Path(__file__).resolve().parent


def say(tool: str, text: str) -> None:
    sys.stderr.write(f"sandbox fake {tool}: {text}\n")


def host_root() -> Path | None:
    value = os.environ.get(HOST_ENV, "")
    return Path(value).resolve() if value and os.path.isabs(value) else None


def record(tool: str, args: list[str]) -> None:
    root = host_root()
    if root is None or not root.is_dir():
        return
    log = root / "var/log/sandbox-fakes.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"t": round(time.time(), 3), "tool": tool, "argv": args}) + "\n")


def inside_host(path: str) -> Path | None:
    """``path`` resolved, when it lies under the host root; else None (never touched)."""
    root = host_root()
    if root is None:
        return None
    resolved = Path(path).resolve()
    return resolved if resolved == root or root in resolved.parents else None


def read_header(device: Path) -> dict | None:
    with open(device, "rb") as handle:
        head = handle.read(HEADER_BYTES)
    if not head.startswith(MAGIC):
        return None if not head.strip(b"\0") else {"TYPE": ""}
    return json.loads(head[len(MAGIC):].split(b"\n", 1)[0])


def blkid(args: list[str]) -> int:
    device = inside_host(args[-1]) if args else None
    if device is None or not device.is_file():
        say("blkid", f"{args[-1] if args else '(no device)'} is not a sandbox device")
        return 2 if device is None or not device.exists() else 4
    found = read_header(device)
    if found is None:
        return 2  # blank: exactly what blkid -p says about a device with nothing on it
    if not found.get("TYPE"):
        say("blkid", f"{device}: unknown data (not written by the sandbox mkfs)")
        return 4
    sys.stdout.write(f"DEVNAME={args[-1]}\nUUID={found['UUID']}\nTYPE={found['TYPE']}\n"
                     f"LABEL={found.get('LABEL', '')}\nUSAGE=filesystem\n")
    say("blkid", f"{found['TYPE']} marker written by the sandbox mkfs (no real filesystem)")
    return 0


def mkfs(tool: str, args: list[str]) -> int:
    fs_type = tool.split(".", 1)[1]
    device = inside_host(args[-1]) if args else None
    if device is None or not device.is_file():
        say(tool, f"refusing: {args[-1] if args else '(no device)'} is not a sandbox device")
        return 1
    label = args[args.index("-L") + 1] if "-L" in args[:-1] else ""
    header = {"TYPE": fs_type, "UUID": str(uuid.uuid4()), "LABEL": label}
    with open(device, "r+b") as handle:
        handle.write(MAGIC + json.dumps(header).encode() + b"\n")
    say(tool, f"wrote a {fs_type} marker header to {device} (no real filesystem)")
    return 0


def mount(args: list[str]) -> int:
    root = host_root()
    if root is None or len(args) < 2 or "-t" not in args:
        say("mount", f"refusing: expected mount -t TYPE [-o OPTS] DEV DIR on a sandbox host: "
            f"{args}")
        return 32
    fs_type, device, target = args[args.index("-t") + 1], args[-2], args[-1]
    options = args[args.index("-o") + 1].split(",") if "-o" in args[:-2] else []
    if inside_host(device) is None:
        say("mount", f"refusing: {device} is not a sandbox device")
        return 32
    Path(target).mkdir(parents=True, exist_ok=True)
    mode = "ro" if "ro" in options else "rw"
    files = show_files if mode == "ro" else note_home
    where = files(Path(device), Path(target))
    escaped = target.replace("\\", "\\134").replace(" ", "\\040")
    with open(root / "proc/mounts", "a", encoding="utf-8") as handle:
        handle.write(f"{device} {escaped} {fs_type} {mode},noatime 0 0\n")
    say("mount", f"recorded {device} on {target} in {root / 'proc/mounts'} ({where})")
    return 0


def note_home(device: Path, target: Path) -> str:
    """A read-write mount: the volume's files are in ``target`` from now on."""
    header = read_header(device) if device.is_file() else None
    if header and header.get("TYPE") and header.get("HOME") != str(target.resolve()):
        header["HOME"] = str(target.resolve())
        try:
            with open(device, "r+b") as handle:
                handle.write(MAGIC + json.dumps(header).encode() + b"\n")
        except OSError as exc:
            return f"a plain directory; where the files are is not noted: {exc}"
    return "a plain directory"


def show_files(device: Path, target: Path) -> str:
    """A read-only mount: an empty ``target`` becomes a link to the volume's files when they
    are elsewhere (see the module's text)."""
    header = read_header(device) if device.is_file() else None
    home = Path(header.get("HOME", "")) if header else None
    if home is None or not home.is_absolute() or not home.is_dir() or \
            home == target.resolve():
        return "a plain directory"
    if target.is_symlink() or any(target.iterdir()):
        return f"a plain directory: not empty, so not linked to the volume's files in {home}"
    target.rmdir()
    target.symlink_to(home, target_is_directory=True)
    return f"linked to the volume's files in {home}; read-only by convention only"


def umount(args: list[str]) -> int:
    root = host_root()
    if root is None or not args:
        say("umount", "refusing: no sandbox host")
        return 32
    target = args[-1].replace("\\", "\\134").replace(" ", "\\040")
    point = Path(args[-1])
    if point.is_symlink() and inside_host(str(point.parent)) is not None:
        point.unlink()  # a read-only mount's link (see show_files): the empty mount point again
        point.mkdir()
    table = root / "proc/mounts"
    lines = table.read_text(encoding="utf-8").splitlines() if table.exists() else []
    kept = [line for line in lines if line.split()[1:2] != [target]]
    table.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
    say("umount", f"removed {len(lines) - len(kept)} line(s) for {args[-1]} from {table}")
    return 0 if len(kept) < len(lines) else 32


def iptables(args: list[str]) -> int:
    say("iptables", f"recorded, nothing changed: {' '.join(args)}")
    return 1 if "-C" in args else 0


def nvidia_smi(args: list[str]) -> int:
    say("nvidia-smi", "REFUSED: a sandbox machine has no GPU and runs cpu_only documents "
        "only; the runner should never have asked")
    return 9


def apt_get(args: list[str]) -> int:
    say("apt-get", f"recorded, nothing installed: {' '.join(args)}")
    return 0


def useradd(args: list[str]) -> int:
    say("useradd", f"REFUSED: the sandbox never creates accounts (asked: {' '.join(args)}); "
        "give the sandbox an existing trainer_user")
    return 1


def _real_python() -> str:
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and Path(p).resolve() != HERE)
    found = shutil.which("python3", path=path)
    return found or sys.executable


def is_matmul_probe(args: list[str]) -> bool:
    """``-c <script importing torch> cpu|cuda N``: the health phase's matmul probe."""
    return (len(args) == 4 and args[0] == "-c" and "import torch" in args[1]
            and args[2] in ("cpu", "cuda") and args[3].isdigit())


def matmul_report(device: str, ok: bool, **measured: object) -> int:
    """Print the probe's one JSON line, as the real script does; its exit status."""
    report = {"device": device, "ok": ok, "seconds": 0.0, "tflops": 0.0,
              "count": 1 if ok else 0, "max_rel_err": 0.0, **measured}
    sys.stdout.write(json.dumps(report) + "\n")
    return 0 if ok else 1


def python3(args: list[str]) -> int:
    if not is_matmul_probe(args):
        real = sys.executable or _real_python()
        os.execv(real, [real, *args])  # noqa: S606 - argv list, the real interpreter
    device = args[2]
    say("python3", f"SIMULATED matmul probe ({device}, n={args[3]}): no torch on the demo "
        "machine, so nothing was multiplied")
    return matmul_report(device, device == "cpu",
                         sandbox="simulated: no torch on the demo machine")


HANDLERS = {"blkid": blkid, "mount": mount, "umount": umount, "iptables": iptables,
            "nvidia-smi": nvidia_smi, "useradd": useradd, "python3": python3,
            "apt-get": apt_get}


def main(tool: str, args: list[str] | None = None) -> int:
    args = sys.argv[1:] if args is None else args
    if tool != "python3" or (args[:1] == ["-c"] and "import torch" in "".join(args[1:2])):
        record(tool, args if tool != "python3" else ["-c", "<matmul probe>", *args[2:]])
    if tool.startswith("mkfs."):
        return mkfs(tool, args)
    return HANDLERS[tool](args)
