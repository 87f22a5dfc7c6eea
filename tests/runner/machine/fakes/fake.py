"""The test layer over the sandbox's fake machine tools (``launcher/sandbox/tools/_fake.py``):
each shim in this directory runs ``$FAKE_PYTHON fake.py <tool> <args...>``. Every call is
appended to ``$FAKE_STATE/calls.jsonl`` (tool, argv and the names in its environment); then a
failure knob below answers, or the sandbox's own fake does. So blkid reports what the fake
mkfs wrote into the device file (a fresh device is blank), mount adds a line to
``$LAUNCHER_RUNNER_TEST_HOST_ROOT/proc/mounts``, and the matmul probe is recognised and
reported exactly as in the sandbox. The knobs, per environment variable (test-only: the
shipped tools never read them):

  FAKE_BLKID        real | error | ptable | ambivalent (unset: the sandbox's blkid);
                    real also runs the real mkfs
  FAKE_MKFS         fail
  FAKE_MOUNT        fail
  FAKE_NVSMI        a GPU machine: the CSV nvidia-smi prints (``|`` separates lines);
                    FAKE_NVSMI_Q what ``nvidia-smi -q`` prints, FAKE_NVSMI_EXIT its status
                    (none of the three set: the sandbox's nvidia-smi, which refuses)
  FAKE_MATMUL       ok (default) | wrong | crash | garbage; FAKE_MATMUL_COUNT the device count
  FAKE_DD           nodirect (refuses oflag=direct as tmpfs does); dd is otherwise the real one
"""

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STATE = Path(os.environ["FAKE_STATE"])
ENV = os.environ.get
SANDBOX = Path(importlib.util.find_spec("launcher").origin).parent / "sandbox/tools"
sys.path.insert(0, str(SANDBOX))
sys.dont_write_bytecode = True  # leave no __pycache__ in the shipped tools/
import _fake  # noqa: E402  (the sandbox's implementation)


def real(tool, args):
    """exec the real program of that name, found on PATH past this directory."""
    path = os.pathsep.join(p for p in ENV("PATH", "").split(os.pathsep)
                           if Path(p).resolve() != HERE)
    found = shutil.which(tool, path=path)
    if not found:
        sys.exit(f"{tool}: real program not found")
    os.execv(found, [found, *args])


def fail(text, status):
    print(text, file=sys.stderr)
    return status


def blkid(args):
    device, mode = args[-1], ENV("FAKE_BLKID")
    if mode == "real":
        real("blkid", args)
    if mode == "error":
        return fail(f"blkid: error: {device}: Input/output error", 4)
    if mode == "ambivalent":
        return fail(f"{device}: ambivalent result (probably more filesystems on the device)", 8)
    if mode == "ptable":
        print(f"DEVNAME={device}\nPTUUID=abcd\nPTTYPE=gpt")
        return 0
    return None


def mkfs(tool, args):
    if ENV("FAKE_MKFS") == "fail":
        return fail(f"{tool}: Device size reported to be zero.", 1)
    if ENV("FAKE_BLKID") == "real":
        real(tool, args)
    return None


def mount(args):
    if ENV("FAKE_MOUNT") == "fail":
        return fail("mount: wrong fs type, bad option, bad superblock", 32)
    return None


def nvidia_smi(args):
    if not {"FAKE_NVSMI", "FAKE_NVSMI_Q", "FAKE_NVSMI_EXIT"} & set(os.environ):
        return None
    print(ENV("FAKE_NVSMI_Q" if args == ["-q"] else "FAKE_NVSMI", "").replace("|", "\n"))
    return int(ENV("FAKE_NVSMI_EXIT", "0"))


def python3(args):
    """A GPU machine's probe: unlike the sandbox (no torch), cuda works unless told not to."""
    if not _fake.is_matmul_probe(args):
        return None
    mode = ENV("FAKE_MATMUL", "ok")
    if mode == "crash":
        return fail("ModuleNotFoundError: No module named 'torch'", 1)
    if mode == "garbage":
        print("this is not json")
        return 0
    return _fake.matmul_report(args[2], mode == "ok", seconds=0.01, tflops=123.4,
                               count=int(ENV("FAKE_MATMUL_COUNT", "1")),
                               max_rel_err=1e-6 if mode == "ok" else 0.5)


def dd(args):
    if ENV("FAKE_DD") == "nodirect" and "oflag=direct" in args:
        return fail("dd: failed to open 'probe': Invalid argument", 1)
    real("dd", args)


KNOBS = {"blkid": blkid, "mount": mount, "nvidia-smi": nvidia_smi, "python3": python3,
         "dd": dd}


def main():
    tool, args = sys.argv[1], sys.argv[2:]
    with open(STATE / "calls.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"tool": tool, "argv": args, "env": sorted(os.environ)}) + "\n")
    knob = mkfs(tool, args) if tool.startswith("mkfs.") else KNOBS[tool](args)
    return _fake.main(tool, args) if knob is None else knob


if __name__ == "__main__":
    sys.exit(main())
