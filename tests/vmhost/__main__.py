"""``python -m vmhost``: build (or find) the cached test guest image; print where.

``--if-possible`` (what ``make test`` uses): a machine that cannot build or boot the image
(not root, no QEMU or debootstrap) is told why and exits 0 — the e2e tests then skip with
the same reason. A build that starts and fails still exits 1."""

from __future__ import annotations

import argparse
import json
import shutil
import sys

from vmhost.image import ImageError, cached_image, ensure_image, missing_tools
from vmhost.qemu import QEMU, QEMU_IMG


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vmhost",
                                     description="build the cached test guest image")
    parser.add_argument("--cache", help="cache directory (default $LAUNCHER_VM_CACHE or "
                                        "~/.cache/launcher/vm)")
    parser.add_argument("--if-possible", action="store_true",
                        help="exit 0 with the reason when this machine cannot build or boot it")
    args = parser.parse_args(argv)
    if args.if_possible:
        missing = [t for t in (QEMU, QEMU_IMG) if shutil.which(t) is None]
        if cached_image(cache=args.cache) is None:
            missing += missing_tools()
        if missing:
            _say(f"vm-image: skipped, missing {', '.join(dict.fromkeys(missing))}: the e2e "
                 "tests will skip (apt-get install qemu-system-x86 qemu-utils debootstrap; "
                 "run as root)")
            return 0
    try:
        image = ensure_image(cache=args.cache, log=_say)
    except ImageError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    _say(json.dumps({"image": str(image.directory), "digest": image.digest,
                     "steps": image.manifest.get("steps", [])}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
