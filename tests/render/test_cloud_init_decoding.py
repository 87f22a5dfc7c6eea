"""Debian's cloud-init itself reads the document back: its YAML loader and its write_files
decoders give back every file byte for byte, and the unpacked bootstrap starts under the
system interpreter."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from support.need import need

from launcher.render import BootInputs, render
from launcher.render.pipeline import boot_zipapp

from .conftest import fake_secrets, make_spec, tiny_runner

SYSTEM_PYTHON = Path("/usr/bin/python3")
UNPACK = r'''
import hashlib, json, sys
from pathlib import Path
from cloudinit import util
from cloudinit.config.cc_write_files import canonicalize_extraction, decode_perms, extract_contents

document = util.load_yaml(Path(sys.argv[1]).read_text())
root = Path(sys.argv[2])
report = {"top": sorted(document)}
for entry in document["write_files"]:
    data = extract_contents(entry["content"], canonicalize_extraction(entry["encoding"]))
    data = data.encode() if isinstance(data, str) else data
    target = root / entry["path"].lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    target.chmod(decode_perms(entry["permissions"], 0o644))
    report[entry["path"]] = [hashlib.sha256(data).hexdigest(), oct(target.stat().st_mode & 0o777)]
print(json.dumps(report))
'''


@pytest.fixture(scope="module")
def system_cloud_init() -> Path:
    probe = None
    if SYSTEM_PYTHON.exists():
        probe = subprocess.run([str(SYSTEM_PYTHON), "-c", "import cloudinit.config.cc_write_files"],
                               capture_output=True, timeout=60, check=False)
    need(probe is not None and probe.returncode == 0,
         "the system python3 has no cloudinit package: install Debian's cloud-init "
                    "(CI does) to decode documents with cloud-init's own code")
    return SYSTEM_PYTHON


def _sha(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


@pytest.mark.parametrize("boot_kind", ["real", "tiny"])  # gz+b64, then plain b64
def test_cloud_init_decodes_every_file_exactly(system_cloud_init, runner_bytes, tmp_path,
                                               boot_kind):
    boot = {"real": boot_zipapp(), "tiny": tiny_runner()}[boot_kind]
    spec, secrets = make_spec(), fake_secrets()
    document = render(spec, secrets, BootInputs(runner_bytes, delete_volume=True, boot=boot))
    source = tmp_path / "user-data"
    source.write_text(document.text)
    result = subprocess.run([str(system_cloud_init), "-c", UNPACK, str(source),
                             str(tmp_path / "root")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["top"] == ["package_update", "package_upgrade", "runcmd", "write_files"]
    assert report["/opt/launcher/boot.pyz"] == [_sha(boot), "0o755"]
    assert report["/etc/launcher/boot.json"] == [_sha(document.boot_spec.to_json() + "\n"),
                                                 "0o644"]
    assert report["/etc/launcher/secrets.env"] == [_sha(secrets.to_env_file()), "0o600"]
    if boot_kind == "real":
        pyz = tmp_path / "root" / "opt" / "launcher" / "boot.pyz"
        started = subprocess.run([str(system_cloud_init), "-I", "-S", str(pyz), "--help"],
                                 capture_output=True, text=True, timeout=60, check=False)
        assert started.returncode == 0 and "fetch" in started.stdout, started.stderr[-2000:]
