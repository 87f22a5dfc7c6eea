"""Running the image bake's provisioning scripts inside a debootstrap'd root, as root.

:func:`provisioning_root` mounts ``/proc``, ``/sys``, ``/dev`` and ``/dev/pts`` into the root,
keeps services from starting (``policy-rc.d``), gives it the build machine's name servers and
CA bundle (public certificates: the build's package and wheel downloads must verify as the
build machine's do) under ``/tmp/launcher-build``, and undoes all of it on the way out — the
image keeps none of it. Nothing else of the build machine enters the root: the scripts run
with a clean environment (:func:`script_env`), never the caller's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

BUILD_DIR = "tmp/launcher-build"  # inside the root; removed afterwards
GUEST_BUILD_DIR = "/" + BUILD_DIR  # the same, as the scripts see it
MOUNTS = (("proc", "proc", ("-t", "proc", "proc")), ("sys", "sysfs", ("-t", "sysfs", "sysfs")),
          ("dev", "bind", ("--bind", "/dev")), ("dev/pts", "bind", ("--bind", "/dev/pts")))
POLICY_RC = "usr/sbin/policy-rc.d"
MOUNT_TIMEOUT_S = 30
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ChrootError(RuntimeError):
    """The root could not be prepared or a script failed; the message says which."""


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below ``root`` (from ``/proc/self/mounts``), deepest first."""
    prefix = str(root.resolve())
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    points = [line.split()[1] for line in lines if len(line.split()) > 1]
    inside = [p for p in points if p == prefix or p.startswith(prefix + "/")]
    return sorted(set(inside), key=len, reverse=True)


def safe_rmtree(path: Path, log: Callable[[str], None]) -> bool:
    """Remove ``path`` unless something is still mounted below it (then say so, keep it)."""
    left = mounts_under(path)
    if left:
        log(f"NOT removing {path}: still mounted below it: {', '.join(left)}")
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True


def host_ca_bundle() -> Path | None:
    """The CA bundle this machine's TLS clients trust (``SSL_CERT_FILE``, else OpenSSL's)."""
    paths = ssl.get_default_verify_paths()
    for candidate in (os.environ.get("SSL_CERT_FILE"), paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def _unmount(root: Path, log: Callable[[str], None]) -> None:
    for point in mounts_under(root):
        if point == str(root.resolve()):
            continue
        done = _run(["umount", point], MOUNT_TIMEOUT_S)
        if done.returncode != 0:
            log(f"umount {point} failed ({done.stderr.strip()}); detaching it lazily")
            _run(["umount", "-l", point], MOUNT_TIMEOUT_S)


@contextlib.contextmanager
def provisioning_root(root: Path, log: Callable[[str], None]) -> Iterator[Path]:
    """Prepare ``root`` for running scripts; yield its build directory (in the root)."""
    build = root / BUILD_DIR
    resolv = root / "etc/resolv.conf"
    try:
        for rel, _kind, how in MOUNTS:
            (root / rel).mkdir(parents=True, exist_ok=True)
            done = _run(["mount", *how, str(root / rel)], MOUNT_TIMEOUT_S)
            if done.returncode != 0:
                raise ChrootError(f"cannot mount {rel} in the root: {done.stderr.strip()}")
        (root / POLICY_RC).write_text("#!/bin/sh\nexit 101\n")
        (root / POLICY_RC).chmod(0o755)
        build.mkdir(parents=True, exist_ok=True)
        resolv.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            shutil.copyfile("/etc/resolv.conf", resolv)
        ca = host_ca_bundle()
        if ca is not None:
            shutil.copyfile(ca, build / "ca.pem")
        yield build
    finally:
        _unmount(root, log)
        (root / POLICY_RC).unlink(missing_ok=True)
        shutil.rmtree(build, ignore_errors=True)
        with contextlib.suppress(OSError):
            resolv.unlink(missing_ok=True)
            resolv.write_text("")  # the guest's DHCP client fills it at boot


def script_env(extra: dict[str, str], with_ca: bool) -> dict[str, str]:
    """The clean environment a provisioning script gets (plus ``extra``)."""
    env = {"PATH": GUEST_PATH, "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb",
           "DEBIAN_FRONTEND": "noninteractive"}
    if with_ca:
        ca = GUEST_BUILD_DIR + "/ca.pem"
        env.update(PIP_CERT=ca, SSL_CERT_FILE=ca, REQUESTS_CA_BUNDLE=ca, CURL_CA_BUNDLE=ca)
    env.update(extra)
    return env


def run_in_root(root: Path, argv: list[str], env: dict[str, str], log_file: Path,
                timeout: float) -> None:
    """``chroot root env -i ... argv``, output appended to ``log_file``; raises
    :class:`ChrootError` on a non-zero status or after ``timeout`` seconds."""
    assignments = [f"{k}={v}" for k, v in sorted(env.items())]
    full = ["chroot", str(root), "/usr/bin/env", "-i", *assignments, *argv]
    with open(log_file, "ab") as out:
        try:
            done = subprocess.run(full, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise ChrootError(f"{' '.join(argv)} ran past {timeout:g}s (see {log_file})"
                              ) from None
    if done.returncode != 0:
        raise ChrootError(f"{' '.join(argv)} exited with {done.returncode} (see {log_file})")
