"""The supervisor publishes the SSH host keys between harden and volume, and a failure there
never fails the run."""

from __future__ import annotations

from dataclasses import replace

import pytest

from launcher.runner.supervisor import Phases, supervise

from .conftest import make_context, make_spec, read_status
from .test_supervisor import ALL, Fake


@pytest.fixture
def ctx(tmp_path):
    return make_context(make_spec(tmp_path))


def test_the_host_keys_are_published_after_hardening(ctx):
    fake = Fake(ctx)
    phases = replace(fake.phases(), publish_host_keys=lambda c: fake.calls.append("hostkeys"))
    assert supervise(ctx, phases, signals=False) == 0
    assert fake.calls == [ALL[0], "hostkeys", *ALL[1:]]


def test_a_failing_publication_is_a_note_and_the_run_goes_on(ctx):
    fake = Fake(ctx)

    def broken(c):
        raise ModuleNotFoundError("No module named 'launcher.runner.hostkeys'")

    assert supervise(ctx, replace(fake.phases(), publish_host_keys=broken),
                     signals=False) == 0
    status = read_status(ctx.spec)
    assert status["state"] == "succeeded"
    assert any(n.startswith("ssh: host keys not published (ModuleNotFoundError")
               for n in status["notes"])


def test_the_real_binding_and_the_test_host_root(tmp_path):
    assert Phases.real().publish_host_keys.__name__ == "hostkeys.publish"
    assert Phases.on_test_host(tmp_path).publish_host_keys.__name__ == "publish_host_keys"
