"""The wheel as a user gets it: ``make package`` builds the sdist, the wheel from the sdist,
and a wheelhouse of their dependencies; here the wheel is installed into a fresh virtual
environment and its commands run from an empty folder, far from this checkout, on loopback.

Proves that nothing reads the source tree at run time (configs, schemas, the run document's
template, the demo's example all come from the package) and that the wheel holds what users
run and nothing of the test equipment.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from support.keys import ALL_FAKE_KEYS, FAKE_B2_APP_KEY, FAKE_B2_KEY_ID, FAKE_VULTR_KEY
from support.need import need

import launcher

ROOT = Path(__file__).resolve().parents[2]
DIST, WHEELHOUSE = ROOT / "dist", ROOT / ".wheelhouse"
SHIPPED = ["launcher/_data/configs/launcher.yaml", "launcher/_data/configs/stages/diffusion.yaml",
           "launcher/_data/configs/schema/stage.schema.json", "launcher/_data/cloud-init/run.yaml",
           "launcher/_data/cloud-init/schema.json", "launcher/_data/examples/tiny-train/train.py",
           "launcher/sandbox/tools/blkid", "launcher/runner/__main__.py"]
NOT_SHIPPED = ("tests/", "vmhost/", "launcher/vmhost/", "bench/", "packer/")
ACCOUNT = {"VULTR_KEY": FAKE_VULTR_KEY, "B2_APPLICATION_KEY_ID": FAKE_B2_KEY_ID,
           "B2_APPLICATION_KEY": FAKE_B2_APP_KEY, "B2_BUCKET": "runs",
           "B2_S3_ENDPOINT": "https://s3.us-west-002.backblazeb2.com"}


def built(pattern: str) -> Path:
    found = sorted(DIST.glob(pattern))
    need(len(found) == 1, f"expected one {pattern} in dist/ (found {len(found)}): run "
         "`make package`")
    return found[0]


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel (and its offline extra) installed from the
    wheelhouse only: no index, no network."""
    wheel = built("launcher-*.whl")
    need(WHEELHOUSE.is_dir(), "no .wheelhouse/: run `make package`")
    target = tmp_path_factory.mktemp("installed") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(target)], check=True, timeout=300)
    subprocess.run([str(target / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    "--no-index", "--find-links", str(WHEELHOUSE), f"{wheel}[offline]"],
                   check=True, timeout=600, capture_output=True)
    return target


@pytest.fixture
def user(venv: Path, tmp_path: Path):
    """Run the installed ``launcher`` in an empty folder with a user's bare environment."""
    home = tmp_path / "checkout"
    (home / "scripts").mkdir(parents=True)
    (home / "scripts" / "run_fast_to_sota.py").write_text("")  # looks like a UPS checkout
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "VULTR_API_URL": "http://127.0.0.1:9/v2", **ACCOUNT}

    def run(*argv: str, timeout: float = 120, **extra: str) -> subprocess.CompletedProcess:
        done = subprocess.run([str(venv / "bin" / "launcher"), *argv], cwd=home,
                              env={**env, **extra}, capture_output=True, text=True,
                              timeout=timeout)
        for key in ALL_FAKE_KEYS:
            assert key not in done.stdout + done.stderr
        return done

    run.home, run.env, run.bin = home, env, venv / "bin"
    return run


def test_the_wheel_ships_what_users_run_and_no_test_equipment():
    names = zipfile.ZipFile(built("launcher-*.whl")).namelist()
    assert [n for n in SHIPPED if n not in names] == []
    assert [n for n in names if n.startswith(NOT_SHIPPED)] == []


def test_the_sdist_holds_what_a_rebuild_needs():
    # make package builds the wheel from this sdist: the files are there as files, not links
    with tarfile.open(built("launcher-*.tar.gz")) as sdist:
        members = {m.name.split("/", 1)[1]: m for m in sdist.getmembers() if "/" in m.name}
    assert {"pyproject.toml", "README.md", "launcher/resources.py"} <= set(members)
    for name in SHIPPED:
        assert members[name].isfile(), name


def test_the_installed_package_reads_nothing_from_this_checkout(venv, user):
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import launcher.resources as r; "
         "print(r.data_path().resolve()); print(r.template_path().resolve())"],
        cwd=user.home, env=user.env, capture_output=True, text=True, check=True, timeout=60)
    for line in where.stdout.splitlines():
        assert Path(line).is_relative_to(venv.resolve()), line

    version = user("--version")
    assert version.returncode == 0 and launcher.__version__ in version.stdout


def test_init_config_show_and_render_from_a_training_checkout(user):
    init = user("init")
    assert init.returncode == 0, init.stderr
    assert "wrote .launcher/stages/diffusion.yaml" in init.stdout

    shown = user("config", "show", "--stage", "diffusion")
    assert shown.returncode == 0, shown.stderr
    assert "config dir: .launcher" in shown.stdout

    rendered = user("render", "--stage", "diffusion")
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stdout.startswith("#cloud-config")


def test_offers_against_the_installed_emulator(user):
    refused = user("offers", "--stage", "diffusion")
    assert refused.returncode == 2 and "`launcher init` writes the starter" in refused.stderr
    assert user("init").returncode == 0
    emulator = subprocess.Popen([str(user.bin / "launcher"), "emulator", "--timing", "instant"],
                                cwd=user.home, env=user.env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
    try:
        ready, _, _ = select.select([emulator.stdout], [], [], 60)
        assert ready, "the installed emulator printed nothing in 60 s"
        first = emulator.stdout.readline().strip()
        assert first.startswith("VULTR_API_URL=http://127.0.0.1:"), first
        offers = user("offers", "--stage", "diffusion", "--json",
                      VULTR_API_URL=first.split("=", 1)[1])
        assert offers.returncode == 0, offers.stderr
        assert json.loads(offers.stdout)
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)


def test_the_offline_demo_runs_from_the_wheel(user):
    demo = user("demo", "--instant", "--json", timeout=600)
    assert demo.returncode == 0, demo.stderr[-2000:]
    report = json.loads(demo.stdout)
    assert report["state"] == "succeeded" and report["left_over"] == 0
