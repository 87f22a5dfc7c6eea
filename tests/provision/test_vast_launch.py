"""``launcher run --provider vast``: the launch as a reconcile on the Vast emulator and a real
bucket (SeaweedFS): the onstart and run spec the instance gets, failover when an offer is
taken, no duplicate after an ambiguous create, and a rollback that leaves 0 instances on
every failure path (Ctrl-C included)."""

from __future__ import annotations

import json

import pytest
from support.keys import (
    FAKE_B2_APP_KEY,
    FAKE_B2_KEY_ID,
    FAKE_VAST_KEY,
    FAKE_WANDB_KEY,
)

from launcher.config import load_account
from launcher.emulator.vast import ManualClock, VastEmulator, VastTiming
from launcher.errors import NotFoundError, TransientError
from launcher.providers.vast import VastProvider, tags_of
from launcher.provision import (
    CapacityExhaustedError,
    LaunchDeps,
    LaunchRequest,
    LaunchResult,
    RecordingProgress,
    RollbackIncompleteError,
    dry_run,
    plan_launch,
    run_stage,
)
from launcher.provision import onstart as onstart_module
from launcher.provision import plan as plan_module
from launcher.render.onstart import MAX_ONSTART_CHARS
from launcher.runner.spec import PythonEnv
from launcher.secrets import Secret
from launcher.vast import VastClient, VastHttp
from launcher.vultr.waits import PollPolicy
from provision.conftest import NOW, bucket_at  # noqa: F401 - fixtures below
from provision.test_failover_rollback import Faulty


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def vast(clock):
    with VastEmulator(api_key=FAKE_VAST_KEY, clock=clock, timing=VastTiming.realistic()) as emu:
        yield emu


@pytest.fixture
def deps(vast, clock, s3_server, bucket, tmp_path):
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    account = load_account({"VAST_API_URL": vast.url, "VAST_API_KEY": FAKE_VAST_KEY,
                            "B2_BUCKET": bucket, "B2_APPLICATION_KEY_ID": FAKE_B2_KEY_ID,
                            "B2_APPLICATION_KEY": FAKE_B2_APP_KEY,
                            "WANDB_API_KEY": FAKE_WANDB_KEY}, env_file)
    http = VastHttp(Secret(FAKE_VAST_KEY), base_url=vast.url, sleep=clock.advance, clock=clock)
    provider = VastProvider(VastClient(http, poll=PollPolicy(initial=1.0, max_interval=2.0)))
    return LaunchDeps(account=account, provider=provider,
                      bucket_for=bucket_at(s3_server.endpoint, account),
                      confirm=lambda plan: True, progress=RecordingProgress(),
                      now=lambda: NOW, monotonic=clock, sleep=clock.advance)


@pytest.fixture
def request_for(config_dir, code_dir):
    def make(**changes) -> LaunchRequest:
        return LaunchRequest(stage="smoke", config_dir=config_dir, code_dir=code_dir, **changes)
    return make


def live(vast: VastEmulator) -> list:
    """Instances the emulator still holds (a stopped one bills: it counts)."""
    return list(vast.state.instances.values())


def test_a_vast_launch_creates_one_running_container_with_its_bootstrap(deps, request_for,
                                                                       vast, s3_server,
                                                                       bucket):
    result = run_stage(request_for(), deps)
    assert isinstance(result, LaunchResult) and result.volume is None
    assert result.instance.state == "running"
    [made] = live(vast)
    assert made.onstart and len(made.onstart) <= MAX_ONSTART_CHARS
    assert FAKE_B2_APP_KEY not in made.onstart and FAKE_WANDB_KEY not in made.onstart
    assert made.image.startswith("pytorch/pytorch:")
    assert dict(made.env) == {"B2_KEY_ID": FAKE_B2_KEY_ID, "B2_APP_KEY": FAKE_B2_APP_KEY,
                              "WANDB_API_KEY": FAKE_WANDB_KEY}
    assert "launcher" in tags_of(made.label) and f"run:{result.run_id}" in made.label
    store = deps.bucket_for(result.candidate.stage.storage)
    [spec_key] = [o.key for o in store.list(f"s3://{bucket}/runs/{result.run_id}/boot/*")
                  if o.key.endswith(".json")]
    spec = json.loads(store.read_text(f"s3://{bucket}/{spec_key}"))
    assert spec["placement"]["provider"] == "vast" and spec["api_url"] == vast.url
    assert spec["volume"]["block_id"] == "" and spec["container"]["s5cmd_sha256"]
    assert spec["placement"]["usd_per_hour"] > 0 and spec["placement"]["launched_epoch"] == NOW
    # The image's python3 makes the environment, seeing the image's torch.
    assert spec["python_env"]["python"] == "python3"
    assert spec["python_env"]["system_site_packages"] is True


@pytest.mark.parametrize(("given", "made"), [
    ({}, ("python3", True)),
    ({"system_site_packages": False}, ("python3", False)),
    ({"python": "/opt/venv/bin/python"}, ("/opt/venv/bin/python", None)),
])
def test_the_container_s_environment_uses_the_image_s_python_unless_the_stage_says(given, made):
    env = onstart_module.container_python_env(PythonEnv(install=("-e", "."), **given))
    assert (env.python, env.system_site_packages) == made and env.install == ("-e", ".")


def test_a_taken_offer_moves_on_to_the_next(deps, request_for, vast):
    def take_first(plan) -> bool:
        vast.set_offer(int(plan.first.offer.plan_id), rented=True)
        return True

    deps.confirm = take_first
    result = run_stage(request_for(), deps)
    assert result.tried and result.instance.plan  # the first was refused, the next launched
    assert len(live(vast)) == 1
    assert any("refused" in line for line in deps.progress.lines)


def test_every_offer_taken_leaves_nothing(deps, request_for, vast):
    def take_all(plan) -> bool:
        for cand in plan.candidates:
            vast.set_offer(int(cand.offer.plan_id), rented=True)
        return True

    deps.confirm = take_all
    with pytest.raises(CapacityExhaustedError, match="nothing launched"):
        run_stage(request_for(), deps)
    assert live(vast) == []


def test_an_ambiguous_create_makes_one_instance(deps, request_for, vast):
    vast.inject("PUT /asks/{id}/", "ambiguous_create")
    result = run_stage(request_for(), deps)
    assert [str(i.id) for i in live(vast)] == [result.instance.id]


@pytest.mark.parametrize("when", ["wait", "create"])
def test_ctrl_c_rolls_back_to_nothing(deps, request_for, vast, when):
    provider = deps.provider
    if when == "wait":
        def interrupted(instance_id, deadline_s):
            raise KeyboardInterrupt
        provider.wait_instance_ready = interrupted
    else:
        real = provider.create_instance

        def created_then_interrupted(request):
            real(request)
            raise KeyboardInterrupt
        provider.create_instance = created_then_interrupted
    with pytest.raises(KeyboardInterrupt):
        run_stage(request_for(), deps)
    assert live(vast) == []
    assert any("rolling back" in line for line in deps.progress.lines)


def test_a_failed_wait_rolls_back_and_a_failed_destroy_is_named(deps, request_for, vast):
    vast.inject("GET /instances/{id}/", "500", count=1000)
    vast.inject("DELETE /instances/{id}/", "500", count=1000)
    with pytest.raises(RollbackIncompleteError) as raised:
        run_stage(request_for(), deps)
    message = str(raised.value)
    assert "$VAST_API_KEY" in message and "/instances/" in message
    vast.clear_faults()
    assert len(live(vast)) == 1  # named, with the command that destroys it


def test_the_dry_run_shows_the_rent_and_the_onstart_and_creates_nothing(deps, request_for,
                                                                        vast):
    result = dry_run(plan_launch(request_for(), deps), deps)
    rent = [c for c in result.calls if c.method == "PUT" and c.target.startswith("/asks/")]
    assert len(rent) == 1 and rent[0].body["env"] == {
        "B2_KEY_ID": "<secret>", "B2_APP_KEY": "<secret>", "WANDB_API_KEY": "<secret>"}
    assert rent[0].body["runtype"] == "ssh_direct"  # what the real create sends
    assert "presigned-at-launch.invalid" in result.document
    assert FAKE_B2_KEY_ID not in json.dumps(result.as_dict())
    assert live(vast) == []


class FaultyBucket:
    """The real bucket, except that ``method`` raises ``error``."""

    def __init__(self, real, method: str, error: BaseException):
        self.real, self.method, self.error, self.address = real, method, error, real.address

    def __getattr__(self, name):
        if name != self.method:
            return getattr(self.real, name)

        def call(*args, **kwargs):
            raise self.error
        return call


# Every step of a Vast launch: the uploads (code bundle, runner, spec), the presigning, the
# onstart's render, the create (refused, or done and unheard of), the wait.
STEPS = [("put_file", None), ("presign", None), ("render", None), ("create_instance", False),
         ("create_instance", True), ("wait_instance_ready", False)]


def arm(deps, monkeypatch, step: str, after: bool | None, error: BaseException):
    if step in ("put_file", "presign"):
        real_factory = deps.bucket_for
        deps.bucket_for = lambda storage: FaultyBucket(real_factory(storage), step, error)
        if step == "presign":  # the plan's trial render presigns too: fail the launch's
            monkeypatch.setattr(plan_module, "trial_onstart", lambda cand, d: None)
    elif step == "render":
        def broken(*args, **kwargs):
            raise error
        monkeypatch.setattr(onstart_module, "render_onstart", broken)
    else:
        deps.provider = Faulty(deps.provider, step, error, bool(after))
        deps.provider.title = deps.provider.real.title
        deps.provider.capabilities = deps.provider.real.capabilities


@pytest.mark.parametrize(("step", "after"), STEPS)
@pytest.mark.parametrize("error", [TransientError("boom", method="PUT", path="/x"),
                                   KeyboardInterrupt()], ids=["failure", "ctrl-c"])
def test_a_failure_or_ctrl_c_at_any_step_leaves_no_instance(deps, request_for, vast,
                                                            monkeypatch, step, after, error):
    arm(deps, monkeypatch, step, after, error)
    with pytest.raises(type(error)):
        run_stage(request_for(), deps)
    assert live(vast) == []
    if after:  # the create happened and the launcher never heard: rolled back all the same
        assert any("rolling back" in line for line in deps.progress.lines)


def test_a_run_that_ended_before_the_launcher_saw_it_run_is_not_rolled_back(
        deps, request_for, vast, tmp_path):
    """A short run can train, upload and destroy its machine between two looks."""
    provider, planned = deps.provider, []

    def remember(plan) -> bool:
        planned.append(plan)
        return True

    def ran_and_left(instance_id, deadline_s):
        plan = planned[0]
        status = tmp_path / "status.json"
        status.write_text(json.dumps({"state": "succeeded", "phases": []}))
        bucket = deps.bucket_for(plan.stage.storage)
        bucket.put_file(status, bucket.address.run_url(plan.run_id, "status.json"))
        provider.client.destroy_instance(int(instance_id))
        return provider.client.wait_instance_running(int(instance_id), deadline_s=deadline_s)

    deps.confirm = remember
    provider.wait_instance_ready = ran_and_left
    result = run_stage(request_for(), deps)
    assert result.instance.state == "gone" and live(vast) == []
    assert not any("rolling back" in line for line in deps.progress.lines)
    assert any("already ran and removed itself" in line for line in deps.progress.lines)


def test_an_instance_gone_without_a_status_is_a_failed_launch(deps, request_for, vast):
    provider = deps.provider

    def vanished(instance_id, deadline_s):
        provider.client.destroy_instance(int(instance_id))
        return provider.client.wait_instance_running(int(instance_id), deadline_s=deadline_s)

    provider.wait_instance_ready = vanished
    with pytest.raises(NotFoundError):
        run_stage(request_for(), deps)
    assert live(vast) == []
