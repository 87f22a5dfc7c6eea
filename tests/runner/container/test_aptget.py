"""System packages the image lacks: looked up with dpkg-query, installed with apt-get only when
missing, every failure an env-phase failure that names the package. ``dpkg-query`` and
``apt-get`` are fakes on a private PATH: no test touches this machine's packages."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from support.keys import FAKE_B2_APP_KEY

from launcher.runner import aptget
from launcher.runner.status import PhaseFailed

from .conftest import vast_context, vast_spec

# dpkg-query answers "installed" for the packages listed in $FAKE_INSTALLED; apt-get appends
# its arguments (and whether a secret reached it) to $FAKE_CALLS, exiting $FAKE_APT_EXIT.
DPKG_QUERY = """#!/bin/sh
for last; do :; done
case " $FAKE_INSTALLED " in *" $last "*) printf installed; exit 0;; esac
echo "dpkg-query: no packages found matching $last" >&2; exit 1
"""
APT_GET = """#!/bin/sh
echo "$* frontend=$DEBIAN_FRONTEND secret=${B2_APP_KEY:-none}" >> "$FAKE_CALLS"
[ "${FAKE_APT_EXIT:-0}" = 0 ] || echo "E: Unable to locate package $*" >&2
exit "${FAKE_APT_EXIT:-0}"
"""


def tools_dir(tmp_path: Path, apt: bool = True) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    for name, text in (("dpkg-query", DPKG_QUERY), ("apt-get", APT_GET if apt else None)):
        if text is None:
            continue
        path = folder / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return folder


def context(tmp_path: Path, installed: str = "", apt: bool = True, apt_exit: int = 0):
    # The fakes' folder alone: this machine's own apt-get must never be found.
    env = {"PATH": str(tools_dir(tmp_path, apt)),
           "FAKE_INSTALLED": installed, "FAKE_CALLS": str(tmp_path / "calls"),
           "FAKE_APT_EXIT": str(apt_exit), "B2_APP_KEY": FAKE_B2_APP_KEY}
    return vast_context(vast_spec(tmp_path), env)


def calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls"
    return path.read_text().splitlines() if path.exists() else []


def test_only_the_missing_packages_are_installed(tmp_path):
    ctx = context(tmp_path, installed="git")
    assert aptget.ensure(ctx, ("git", "rclone")) == ("rclone",)
    assert calls(tmp_path) == [
        "update -qq frontend=noninteractive secret=none",
        "install -y -qq --no-install-recommends rclone frontend=noninteractive secret=none"]
    log = (tmp_path / "log" / "apt.log").read_text()
    assert "$ apt-get install" in log and FAKE_B2_APP_KEY not in log


def test_an_image_that_has_them_all_runs_no_apt_get(tmp_path):
    assert aptget.ensure(context(tmp_path, installed="git"), ("git",)) == ()
    assert aptget.ensure(context(tmp_path), ()) == ()
    assert calls(tmp_path) == []


def test_a_failed_install_fails_the_env_phase_naming_the_package(tmp_path):
    with pytest.raises(PhaseFailed, match=r"installing git: apt-get update failed .*apt\.log"):
        aptget.ensure(context(tmp_path, apt_exit=100), ("git",))


def test_an_image_without_apt_get_is_told_to_use_another_image(tmp_path):
    with pytest.raises(PhaseFailed, match=r"lacks git and has no apt-get.*vast\.image"):
        aptget.ensure(context(tmp_path, apt=False), ("git",))


@pytest.mark.parametrize("name", ["git; rm -rf /", "-y", "Git", ""])
def test_a_name_that_is_no_debian_package_is_refused_before_anything_runs(tmp_path, name):
    with pytest.raises(PhaseFailed, match="not a Debian package name"):
        aptget.ensure(context(tmp_path), ("git", name))
    assert calls(tmp_path) == []


def test_the_container_s_env_phase_installs_the_spec_s_packages_first(tmp_path):
    from dataclasses import replace

    from launcher.runner import container

    ctx = context(tmp_path, installed="git")
    ctx.spec = replace(ctx.spec, container=replace(ctx.spec.container,
                                                   apt_packages=("git", "rclone")))
    assert container.container_phases().prepare_env is container.prepare_env
    assert container.prepare_env(ctx, tmp_path) is None  # the spec installs no environment
    assert calls(tmp_path)[-1].startswith("install -y -qq --no-install-recommends rclone")
