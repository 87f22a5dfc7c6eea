"""``python -m launcher.vmhost``: build (or find) the cached test guest image; print where."""

from __future__ import annotations

import argparse
import json
import sys

from launcher.vmhost.image import ImageError, ensure_image


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m launcher.vmhost",
                                     description="build the cached test guest image")
    parser.add_argument("--cache", help="cache directory (default $LAUNCHER_VM_CACHE or "
                                        "~/.cache/launcher/vm)")
    args = parser.parse_args(argv)
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
