"""train.run: the command verbatim as argv, as a real unprivileged user (as root), in a clean
environment holding only the W&B secret, with heartbeats, deadline stops and exit codes."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import time
from pathlib import Path

import pytest
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID, FAKE_VULTR_KEY, FAKE_WANDB_KEY

from launcher.runner import train, users
from launcher.runner.spec import DataSource, RunSecrets
from launcher.runner.status import PhaseFailed

from .conftest import IS_ROOT, SYSTEM_PATH, fake_secrets, make_context, make_spec

CHILD = r'''
import json, os, signal, sys, time
out = {"argv": sys.argv[1:], "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
       "groups": os.getgroups(), "cwd": os.getcwd(), "env": dict(os.environ)}
probe = os.environ.get("CHILD_READ")
if probe:
    try:
        open(probe).read()
        out["read"] = True
    except PermissionError:
        out["read"] = False
with open(os.path.join(os.environ["LAUNCHER_REPORT_DIR"], "child.json"), "w") as handle:
    json.dump(out, handle)
print("hello on stdout", flush=True)
print("hello on stderr", file=sys.stderr, flush=True)
mode = os.environ.get("CHILD_MODE", "")
if mode == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if mode in ("hang", "ignore-term"):
    time.sleep(600)
time.sleep(float(os.environ.get("CHILD_SLEEP", "0")))
sys.exit(int(os.environ.get("CHILD_EXIT", "0")))
'''
HOSTILE = ("; rm -rf / #", "it's \"quoted\"\nand a new line", "$(touch /tmp/pwned)", "*",
           "`id`", "a b\tc", "--help")
NO_SECRET_NAMES = ("VULTR_KEY", "B2_KEY_ID", "B2_APP_KEY")


@pytest.fixture
def job(world, child_python, trainer_name):
    """Build a context that runs the child script as the trainer inside ``world``."""
    (world / "code" / "child.py").write_text(CHILD)

    def make(*args, env=(), command=None, secrets=None, **changes):
        spec = make_spec(world, command=command or (child_python, "child.py", *args),
                         env=tuple(env), paths={"trainer_user": trainer_name}, **changes)
        return make_context(spec, {"PATH": SYSTEM_PATH}, run_secrets=secrets)
    return make


def child_report(ctx) -> dict:
    return json.loads((ctx.mount / "reports" / "child.json").read_text())


def test_the_command_runs_with_its_arguments_unchanged_and_exit_0(job):
    ctx = job(*HOSTILE)
    beats = []
    assert train.run(ctx, ctx.spec.paths.code_dir, lambda: beats.append(1)) == 0
    seen = child_report(ctx)
    assert seen["argv"] == list(HOSTILE)
    assert seen["cwd"] == str(Path(ctx.spec.paths.code_dir).resolve())
    assert not Path("/tmp/pwned").exists()
    assert beats == [1]  # the final heartbeat
    log = Path(ctx.spec.paths.log_dir, "train.log").read_text()
    assert "hello on stdout" in log and "hello on stderr" in log and "launcher:" in log


def test_a_shell_looking_command_is_an_argv_never_a_shell_line(job, monkeypatch):
    seen = {}

    class Recorder:
        pid = 424242
        returncode = 0

        def __init__(self, argv, **options):
            seen.update(argv=argv, options=options)

        def poll(self):
            return 0

    monkeypatch.setattr(train.subprocess, "Popen", Recorder)
    monkeypatch.setattr(train, "_signal_group", lambda proc, sig: None)
    ctx = job(command=("sh", "-c", "echo hi; rm -rf /"))
    assert train.run(ctx, ctx.spec.paths.code_dir, lambda: None) == 0
    assert seen["argv"] == ["sh", "-c", "echo hi; rm -rf /"]
    assert "shell" not in seen["options"] and "executable" not in seen["options"]


@pytest.mark.parametrize("status", [3, 137])
def test_exit_codes_pass_through(job, status):
    ctx = job(env=[("CHILD_EXIT", str(status))])
    assert train.run(ctx, ctx.spec.paths.code_dir, lambda: None) == status


def test_the_environment_is_clean_and_holds_only_the_wandb_secret(job, trainer_name):
    ctx = job(env=[("HF_HOME", "/custom/hf"), ("VULTR_KEY", "from-the-spec"),
                   ("LAUNCHER_DATA_DIR", "/elsewhere"), ("PATH", SYSTEM_PATH)])
    train.run(ctx, ctx.spec.paths.code_dir, lambda: None)
    env = child_report(ctx)["env"]
    values = "\n".join(env.values())
    assert FAKE_VULTR_KEY not in values and FAKE_B2_APP_KEY not in values
    assert FAKE_B2_KEY_ID not in values
    assert not set(NO_SECRET_NAMES) & set(env)
    assert env["WANDB_API_KEY"] == FAKE_WANDB_KEY
    assert env["HOME"] == pwd.getpwnam(trainer_name).pw_dir and env["USER"] == trainer_name
    assert env["HF_HOME"] == "/custom/hf"
    assert env["LAUNCHER_DATA_DIR"] == str(ctx.mount / "data")
    assert env["TORCH_HOME"] == str(ctx.mount / "cache" / "torch")
    assert "environment=vultr" in env["WANDB_TAGS"].split(",")
    assert env["WANDB_RUN_GROUP"] == ctx.spec.run_id and env["WANDB_MODE"] == "online"
    assert not {"SUDO_USER", "MAIL", "PWD", "OLDPWD"} & set(env)
    assert os.environ.get("FAKE_STATE") is None or "FAKE_STATE" not in env


def test_trainer_env_is_pure_and_complete(tmp_path):
    spec = make_spec(tmp_path, env=(("B2_APP_KEY", "x"), ("EXTRA", "1")))
    user = users.User("trainer", 999, 999, "/home/trainer")
    env = train.trainer_env(spec, fake_secrets(), user, stop_epoch=1234.4)
    for name in ("PATH", "LANG", "HOME", *train.CACHE_DIRS, "LAUNCHER_DATA_DIR",
                 "LAUNCHER_CHECKPOINT_DIR", "LAUNCHER_REPORT_DIR", "LAUNCHER_RUN_ID",
                 "LAUNCHER_STAGE", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_MODE",
                 "WANDB_RUN_GROUP", "WANDB_TAGS", "WANDB_DIR", "WANDB_API_KEY"):
        assert env.get(name), name
    assert not set(NO_SECRET_NAMES) & set(env) and env["EXTRA"] == "1"
    assert env["LAUNCHER_DEADLINE_EPOCH"] == "1234"
    assert all(value.startswith(str(tmp_path / "mnt" / "cache"))
               for name, value in env.items() if name in train.CACHE_DIRS)
    offline = train.trainer_env(spec, RunSecrets({"VULTR_KEY": FAKE_VULTR_KEY}), user)
    assert offline["WANDB_MODE"] == "offline" and "WANDB_API_KEY" not in offline


def test_wandb_tags_carry_the_placement_skip_empties_and_fit_64_chars(tmp_path):
    spec = make_spec(tmp_path, wandb={"tags": ("baseline", "a,b", "x" * 80, "baseline", " ")},
                     placement={"plan": "", "snapshot_description": "s" * 70})
    tags = train.wandb_tags(spec)
    assert tags[:3] == ("baseline", "a_b", "x" * 64)
    assert "environment=vultr" in tags and "region=ewr" in tags and "gpu=NVIDIA_A100" in tags
    assert "stage=diffusion" in tags
    assert "git_sha=0123456789abcdef0123456789abcdef01234567" in tags
    assert not any(tag.startswith("plan=") for tag in tags)
    assert all(0 < len(tag) <= 64 and "," not in tag for tag in tags)
    assert len(tags) == len(set(tags))


@pytest.mark.parametrize("workdir", ["..", "../code2", "/etc", "sub/../../x", "link"])
def test_a_workdir_outside_the_code_is_refused(tmp_path, workdir):
    code = tmp_path / "code"
    (code / "sub").mkdir(parents=True)
    (tmp_path / "code2").mkdir()
    (code / "link").symlink_to(tmp_path)
    with pytest.raises(PhaseFailed, match="escapes the code directory"):
        train.resolve_workdir(code, workdir)
    assert train.resolve_workdir(code, "sub") == (code / "sub").resolve()


def test_the_command_is_stopped_at_the_deadline(job):
    ctx = job(env=[("CHILD_MODE", "hang")], deadline_epoch=time.time() + 1.0)
    started = time.monotonic()
    status = train.run(ctx, ctx.spec.paths.code_dir, lambda: None, grace_s=5)
    assert status == -15 and time.monotonic() - started < 5
    assert any("deadline reached" in note for note in ctx.reporter.snapshot()["notes"])


def test_a_command_ignoring_sigterm_is_killed_after_the_grace(job):
    ctx = job(env=[("CHILD_MODE", "ignore-term")])
    started = time.monotonic()
    status = train.run(ctx, ctx.spec.paths.code_dir, lambda: None,
                       reserve_s=ctx.seconds_left() - 0.8, grace_s=0.3)
    assert status == -9 and time.monotonic() - started < 5


def test_heartbeats_come_periodically_and_a_failing_one_does_not_stop_training(job):
    ctx = job(env=[("CHILD_SLEEP", "2.4")], heartbeat_s=1)
    beats = []

    def heartbeat():
        beats.append(time.monotonic())
        raise OSError("status upload failed")

    assert train.run(ctx, ctx.spec.paths.code_dir, heartbeat) == 0
    assert len(beats) >= 3  # at ~1 s, ~2 s (~3 s on a slow machine), and at the end
    assert beats[1] - beats[0] >= 0.9
    assert "heartbeat failed, training goes on: OSError" in ctx.reporter.log_path.read_text()


def test_no_time_left_and_a_missing_program_fail_the_phase(job):
    ctx = job(deadline_epoch=time.time() - 1)
    with pytest.raises(PhaseFailed, match="no time left"):
        train.run(ctx, ctx.spec.paths.code_dir, lambda: None)
    ctx = job(command=("/nonexistent/train",))
    with pytest.raises(PhaseFailed, match="cannot start /nonexistent/train"):
        train.run(ctx, ctx.spec.paths.code_dir, lambda: None)


@pytest.mark.need(IS_ROOT, "dropping to another user needs root")
def test_the_command_runs_as_the_unprivileged_trainer(job, world, trainer_name):
    secret = world / "root-only"
    secret.write_text("root's eyes only")
    secret.chmod(0o600)
    ctx = job(env=[("CHILD_READ", str(secret))],
              data_sources=(DataSource("caches/v1", dest="latent_cache/v1", writable=True),
                            DataSource("sets/v1", dest="sets")),
              code_links=(("reports", "outputs/reports"),))
    for synced in ("data/latent_cache/v1/a.pt", "data/sets/x.h5"):  # as root's sync left them
        (ctx.mount / synced).parent.mkdir(parents=True, exist_ok=True)
        (ctx.mount / synced).write_text("synced")
    assert train.run(ctx, ctx.spec.paths.code_dir, lambda: None) == 0
    seen = child_report(ctx)
    user = pwd.getpwnam(trainer_name)
    assert seen["uid"] == seen["euid"] == user.pw_uid != 0
    assert seen["gid"] == user.pw_gid and 0 not in seen["groups"]
    assert seen["read"] is False
    for name in ("checkpoints", "reports", "cache/huggingface", "wandb", "outputs/reports",
                 "data/latent_cache/v1", "data/latent_cache/v1/a.pt"):
        assert (ctx.mount / name).stat().st_uid == user.pw_uid, name
    for name in ("data", "data/sets", "data/sets/x.h5"):  # a plain source stays root's
        assert (ctx.mount / name).stat().st_uid == 0, name
    log = Path(ctx.spec.paths.log_dir, "train.log")
    assert log.stat().st_uid == 0 and log.stat().st_mode & 0o777 == 0o640


@pytest.mark.need(IS_ROOT, "creating a user needs root")
def test_a_missing_trainer_account_is_created_once(world, child_python, fresh_user_name):
    (world / "code" / "child.py").write_text(CHILD)
    spec = make_spec(world, command=(child_python, "child.py"),
                     paths={"trainer_user": fresh_user_name})
    ctx = make_context(spec, {"PATH": SYSTEM_PATH})
    assert users.lookup(fresh_user_name) is None
    assert train.run(ctx, spec.paths.code_dir, lambda: None) == 0
    entry = pwd.getpwnam(fresh_user_name)
    assert entry.pw_shell == "/usr/sbin/nologin" and entry.pw_uid != 0
    assert child_report(ctx)["uid"] == entry.pw_uid
    assert users.ensure(fresh_user_name, {"PATH": SYSTEM_PATH}).uid == entry.pw_uid


def test_bad_user_names_and_root_are_refused():
    for name in ("-oops", "Root", "a b", "x" * 40):
        with pytest.raises(PhaseFailed, match="not a valid user name"):
            users.ensure(name, {"PATH": SYSTEM_PATH})
    with pytest.raises(PhaseFailed, match="uid 0"):
        users.ensure("root", {"PATH": SYSTEM_PATH})


def test_leftover_processes_of_the_command_are_stopped(job, world):
    marker = world / "state" / "grandchild.pid"
    script = ("import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', "
              "'import time; time.sleep(600)']); "
              f"open({str(marker)!r}, 'w').write(str(p.pid))")
    (world / "state").chmod(0o777)
    ctx = job(command=(job().spec.command[0], "-c", script))
    assert train.run(ctx, ctx.spec.paths.code_dir, lambda: None) == 0
    pid = int(marker.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    done = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True,
                          text=True, check=False)
    return done.returncode == 0 and not done.stdout.strip().startswith("Z")
