"""One implementation behind every fake tool; each shim in this directory runs
``$FAKE_PYTHON fake.py <tool> <args...>``. Every call is appended to ``$FAKE_STATE/calls.jsonl``.

Behaviour, per environment variable:
  FAKE_BLKID        blank | ext4 | xfs | error | ptable | ambivalent | real (default blank);
                    once a fake mkfs ran, blkid reports what it made.
  FAKE_MKFS         ok | fail
  FAKE_MOUNTS       a mounts-table file the fake mount appends to; FAKE_MOUNT=fail fails it
  FAKE_NVSMI        the CSV nvidia-smi prints (``|`` separates lines); FAKE_NVSMI_EXIT its status
  FAKE_MATMUL       ok | wrong | crash | garbage;  FAKE_MATMUL_COUNT the device count it reports
  FAKE_DD           real (default) | nodirect (refuses oflag=direct as tmpfs does, else real)
"""

import json
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STATE = Path(os.environ["FAKE_STATE"])


def record(tool, args):
    with open(STATE / "calls.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"tool": tool, "argv": args, "env": sorted(os.environ)}) + "\n")


def real(tool, args):
    """exec the real program of that name, found on PATH past this directory."""
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                           if Path(p).resolve() != HERE)
    found = shutil.which(tool, path=path)
    if not found:
        sys.exit(f"{tool}: real program not found")
    os.execv(found, [found, *args])


def blkid(args):
    made = STATE / "made-fs"
    mode = made.read_text() if made.exists() else os.environ.get("FAKE_BLKID", "blank")
    device = args[-1]
    if mode == "real":
        real("blkid", args)
    if mode == "blank":
        return 2
    if mode == "error":
        print(f"blkid: error: {device}: Input/output error", file=sys.stderr)
        return 4
    if mode == "ambivalent":
        print(f"{device}: ambivalent result (probably more filesystems on the device)",
              file=sys.stderr)
        return 8
    if mode == "ptable":
        print(f"DEVNAME={device}\nPTUUID=abcd\nPTTYPE=gpt")
        return 0
    print(f"DEVNAME={device}\nUUID=0000aaaa-{mode}-4bbb-8ccc-123456789abc\nTYPE={mode}\n"
          "USAGE=filesystem")
    return 0


def mkfs(tool, args):
    if os.environ.get("FAKE_MKFS", "ok") == "fail":
        print(f"{tool}: Device size reported to be zero.", file=sys.stderr)
        return 1
    if os.environ.get("FAKE_BLKID") != "real":
        (STATE / "made-fs").write_text(tool.split(".", 1)[1])
        return 0
    real(tool, args)


def mount(args):
    if os.environ.get("FAKE_MOUNT") == "fail":
        print("mount: wrong fs type, bad option, bad superblock", file=sys.stderr)
        return 32
    fs_type, device, target = args[args.index("-t") + 1], args[-2], args[-1]
    with open(os.environ["FAKE_MOUNTS"], "a", encoding="utf-8") as handle:
        handle.write(f"{device} {target.replace(' ', chr(92) + '040')} {fs_type} rw,noatime 0 0\n")
    return 0


def nvidia_smi(args):
    if args == ["-q"]:  # the full report: only what FAKE_NVSMI_Q says ("|" for newlines)
        print(os.environ.get("FAKE_NVSMI_Q", "").replace("|", "\n"))
    else:
        print(os.environ.get("FAKE_NVSMI", "").replace("|", "\n"))
    return int(os.environ.get("FAKE_NVSMI_EXIT", "0"))


def python3(args):
    mode = os.environ.get("FAKE_MATMUL", "ok")
    device = args[2] if len(args) > 2 else "?"
    if mode == "crash":
        print("ModuleNotFoundError: No module named 'torch'", file=sys.stderr)
        return 1
    if mode == "garbage":
        print("this is not json")
        return 0
    count = int(os.environ.get("FAKE_MATMUL_COUNT", "1"))
    ok = mode == "ok"
    print(json.dumps({"device": device, "ok": ok, "seconds": 0.01, "tflops": 123.4,
                      "count": count, "max_rel_err": 1e-6 if ok else 0.5}))
    return 0 if ok else 1


def dd(args):
    if os.environ.get("FAKE_DD") == "nodirect" and "oflag=direct" in args:
        print("dd: failed to open 'probe': Invalid argument", file=sys.stderr)
        return 1
    real("dd", args)


def main():
    tool, args = sys.argv[1], sys.argv[2:]
    record(tool, args)
    if tool.startswith("mkfs."):
        return mkfs(tool, args)
    handler = {"blkid": blkid, "mount": mount, "nvidia-smi": nvidia_smi, "python3": python3,
               "dd": dd}[tool]
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
