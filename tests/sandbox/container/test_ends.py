"""A container's end as the cloud sets it: a destroy stands, whatever comes after it."""

from __future__ import annotations

from launcher.sandbox.container import ContainerRequest, ContainerSandbox
from sandbox.containerbed import wait_until

# Traps the stop's SIGTERM and lingers, as a runner does while it uploads and destroys itself.
LINGERING = "trap 'sleep 1; exit 0' TERM\nsleep 60 & wait\n"


def test_a_stop_that_ends_after_the_destroy_leaves_the_container_destroyed(sandbox_root):
    sandbox = ContainerSandbox(sandbox_root, delete_grace_s=20.0, stop_grace_s=5.0)
    try:
        sandbox.start(ContainerRequest("7", LINGERING))
        assert wait_until(lambda: bool(sandbox.processes("7")), 10)
        sandbox.instance_stopped(ContainerRequest("7", ""))
        sandbox.instance_deleted(ContainerRequest("7", ""))
        assert wait_until(lambda: sandbox.view("7").state == "destroyed", 30)
        assert sandbox.wait_idle("7", 10)
        sandbox.instance_stopped(ContainerRequest("7", ""))  # a late stop changes nothing
        assert not wait_until(lambda: sandbox.view("7").state != "destroyed", 2)
    finally:
        sandbox.close()


def test_a_stop_alone_leaves_the_container_stopped_with_its_disk(sandbox_root):
    sandbox = ContainerSandbox(sandbox_root, delete_grace_s=20.0, stop_grace_s=5.0)
    try:
        sandbox.start(ContainerRequest("8", LINGERING))
        assert wait_until(lambda: bool(sandbox.processes("8")), 10)
        sandbox.instance_stopped(ContainerRequest("8", ""))
        assert wait_until(lambda: sandbox.view("8").state == "stopped", 30)
        assert (sandbox_root / "8" / "root/onstart.sh").is_file()
    finally:
        sandbox.close()
