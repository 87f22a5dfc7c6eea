"""The manual probe of a real Vultr account (tests/integration/probe_vultr.sh), run here for real
against the emulator: on a free 127.0.0.1 port, in this process (so every exchange is checked
against Vultr's OpenAPI document, and its state and request log can be read), with realistic
timing (a new instance is still booting when the probe attaches to it).

What each probe records must be what the emulator answers, in its words; nothing the probe
created may be left; the key never shows (not in its output, its report, curl's argv or
environment); and it refuses, creating nothing, without MANUAL=1, over budget, or without a
terminal to confirm on. Ctrl-C (SIGINT to the process group) and SIGTERM mid-run clean up.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import re
import select
import shutil
import signal
import subprocess
import termios
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from support.keys import FAKE_VULTR_KEY
from support.need import need

from launcher.emulator import RateLimit, Timing
from launcher.emulator.catalogue import SNAPSHOTS, SSH_KEYS

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "integration" / "probe_vultr.sh"
SNAPSHOT_ID = SNAPSHOTS[0]["id"]
SEEDED_KEYS = {key["id"] for key in SSH_KEYS}
DEADLINE_S = 60

# The emulator's words (launcher/emulator/errors.py; the first two are Vultr's own).
NOT_ATTACHED = "Block storage volume is not currently attached to a server"
LOCKED = "Server is currently locked"
NOT_FOUND = "Instance not found."
NOT_AVAILABLE = "Plan is not available in the selected region."


@pytest.fixture
def tools() -> None:
    for tool in ("bash", "curl", "python3"):
        need(shutil.which(tool) is not None, f"the probe needs {tool}")


@pytest.fixture
def bed(make_emulator, tmp_path: Path, tools):
    """An emulator, a curl that logs its argv and environment, and the probe's environment."""
    emu = make_emulator(timing=Timing.realistic(), rate_limit=RateLimit())
    exchanges: list = []
    emu.add_listener(exchanges.append)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    curl = bin_dir / "curl"
    curl.write_text('#!/bin/sh\nprintf "%s\\n" "$@" >> "$CURL_LOG"\nenv >> "$CURL_ENV_LOG"\n'
                    f'exec {shutil.which("curl")} "$@"\n')
    curl.chmod(0o755)
    work = tmp_path / "tmp"
    work.mkdir()
    env = {
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(tmp_path),
        "LANG": "C.UTF-8", "TMPDIR": str(work), "CURL_LOG": str(tmp_path / "curl-argv.log"),
        "CURL_ENV_LOG": str(tmp_path / "curl-env.log"),
        "MANUAL": "1", "PROBE_YES": "1", "VULTR_KEY": FAKE_VULTR_KEY, "VULTR_API_URL": emu.url,
        "PROBE_POLL_S": "0.2", "PROBE_GONE_RECHECK_S": "1",
        "PROBE_REPORT": str(tmp_path / "report.md"),
    }
    return emu, exchanges, env, tmp_path


def run(env: dict[str, str], timeout: float = 120, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT)], env={**env, **extra}, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False,
                          start_new_session=True)


def left(emu) -> dict[str, int]:
    state = emu.state
    return {"instances": len(state.list_instances(None, None, None)),
            "blocks": len(state.list_blocks()),
            "ssh_keys": len([k for k in state.list_ssh_keys() if k.id not in SEEDED_KEYS])}


NOTHING = {"instances": 0, "blocks": 0, "ssh_keys": 0}


def summary(report: str) -> dict[str, tuple[str, str, str]]:
    """The report's summary table: question → (probe, status, answer)."""
    table = report.split("\n## Summary\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        if not line.startswith("| ") or line.startswith("| probe |"):
            continue
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        probe, question, status, answer = cells
        rows[question] = (probe, status, answer)
    return rows


def section(report: str, title: str) -> str:
    return report.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def assert_secret_kept(done: subprocess.CompletedProcess, tmp_path: Path) -> None:
    texts = [done.stdout, done.stderr]
    for name in ("report.md", "curl-argv.log", "curl-env.log"):
        if (tmp_path / name).exists():
            texts.append((tmp_path / name).read_text())
    assert not [t for t in texts if FAKE_VULTR_KEY in t]
    assert list((tmp_path / "tmp").iterdir()) == []  # its work area (key file) is gone


def posted(exchanges: list, route: str) -> list[dict]:
    return [json.loads(e.request_body) for e in exchanges
            if e.method == "POST" and e.path == f"/v2{route}"]


# -- the script itself ---------------------------------------------------------------------


def test_it_parses_and_passes_shellcheck():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], check=False).returncode == 0
    assert os.access(SCRIPT, os.X_OK)
    assert SCRIPT.read_text().splitlines()[0] == "#!/usr/bin/env bash"
    need(shutil.which("shellcheck") is not None, "shellcheck is not installed")
    done = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout


def test_every_curl_call_is_bounded():
    text = SCRIPT.read_text()
    calls = re.findall(r"^\s*[^#\n]*\bcurl \"\$\{args\[@\]\}\"", text, re.M)
    assert len(calls) == 1  # one place speaks HTTP, with these options:
    for option in ("--max-time", "--connect-timeout", "--config", "-q"):
        assert option in text.split("api() {", 1)[1].split("\n}\n", 1)[0]


# -- refusals: nothing created ----------------------------------------------------------------


def test_without_manual_it_refuses_in_one_line_and_calls_nothing(bed):
    emu, _, env, tmp_path = bed
    done = run({k: v for k, v in env.items() if k != "MANUAL"})
    assert done.returncode == 2
    assert done.stdout == "" and len(done.stderr.splitlines()) == 1
    assert "set MANUAL=1" in done.stderr
    assert emu.events == [] and not (tmp_path / "report.md").exists()


@pytest.mark.parametrize(("change", "said"), [
    ({"VULTR_KEY": ""}, "set VULTR_KEY"),
    ({"VULTR_API_URL": "http://example.com/v2"}, "plain http only to this machine"),
    ({"PROBE_BUDGET_USD": "two"}, "PROBE_BUDGET_USD must be a number"),
    ({"PROBE_GPU_PLANS": "vcg-a16-2c-8g-2vram"}, "needs PROBE_SNAPSHOT or PROBE_GPU_OS_ID"),
    ({"PROBE_MAX_MINUTES": "3"}, "leaves no time to probe and then clean up"),
])
def test_bad_settings_are_refused_before_any_call(bed, change, said):
    emu, _, env, tmp_path = bed
    done = run({**env, **change})
    assert done.returncode == 2, done.stderr
    assert said in done.stderr
    assert emu.events == []
    assert_secret_kept(done, tmp_path)


def test_over_budget_it_refuses_after_reading_only(bed):
    emu, _, env, tmp_path = bed
    done = run(env, PROBE_BUDGET_USD="0.50")
    assert done.returncode == 2, done.stderr
    # 4 x vc2-1c-1gb $0.007 + 40 GB at $0.10/GB-month (/672 h) + the sold-out A40 $1.71, 20 min
    assert "worst case: $0.58" in done.stdout
    assert "instance vcg-a40-24c-120g-48vram in ewr (expected to be refused" in done.stdout
    assert "the worst case $0.58 is not under PROBE_BUDGET_USD=$0.50" in done.stderr
    assert emu.mutations() == [] and left(emu) == NOTHING
    assert not (tmp_path / "report.md").exists()
    assert_secret_kept(done, tmp_path)


def test_without_a_terminal_to_confirm_on_it_refuses(bed):
    emu, _, env, tmp_path = bed
    done = run({k: v for k, v in env.items() if k != "PROBE_YES"})
    assert done.returncode == 2
    assert "no terminal to confirm on: set PROBE_YES=1" in done.stderr
    assert "worst case:" in done.stdout  # it said what it would have created
    assert emu.mutations() == []


def _on_a_terminal(env: dict[str, str], typed: str) -> tuple[int, str]:
    """Run the probe with a pseudo-terminal as its controlling terminal; type ``typed`` once
    it asks. Returns its exit status and what the terminal showed."""
    controller, terminal = os.openpty()

    def take_terminal() -> None:  # in the child, after setsid: fd 0 becomes its /dev/tty
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(["bash", str(SCRIPT)], env=env, cwd=ROOT, stdin=terminal,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, preexec_fn=take_terminal)
    os.close(terminal)
    shown, answered = b"", False
    try:
        while proc.poll() is None:
            ready, _, _ = select.select([controller], [], [], DEADLINE_S)
            if not ready:
                raise AssertionError(f"the probe hung at: {shown[-300:]!r}")
            try:
                shown += os.read(controller, 4096)
            except OSError:  # the terminal closed: the probe is done
                break
            if not answered and b"type yes" in shown:
                os.write(controller, typed.encode() + b"\n")
                answered = True
        return proc.wait(timeout=DEADLINE_S), shown.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(controller)


@pytest.mark.parametrize(("typed", "code"), [("no", 2), ("yes", 0)])
def test_on_a_terminal_it_goes_on_only_when_told_yes(bed, typed, code):
    emu, _, env, tmp_path = bed
    env = {k: v for k, v in env.items() if k != "PROBE_YES"}
    env.update(PROBE_SKIP_CATALOGUE="1", PROBE_SKIP_REFUSALS="1", PROBE_USERDATA_KIB="16")
    returncode, shown = _on_a_terminal(env, typed)
    assert returncode == code, shown
    assert "probe: type yes to create the above: " in shown
    if typed == "yes":
        assert [e.route for e in emu.mutations()] == ["/instances", "/instances/{id}"]
        assert left(emu) == NOTHING
    else:
        assert emu.mutations() == []
    assert FAKE_VULTR_KEY not in shown


# -- a whole run -------------------------------------------------------------------------------


def test_a_whole_run_records_the_emulators_answers_and_leaves_nothing(bed):
    emu, exchanges, env, tmp_path = bed
    done = run(env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = (tmp_path / "report.md").read_text()
    rows = summary(report)
    run_tag = re.search(r"\(tags launcher-probe, (launcher-probe-[0-9a-f-]+)\)", report)[1]

    # 1. user_data: the emulator takes all three sizes and keeps them byte for byte.
    for kib, b64 in ((16, 21848), (32, 43692), (64, 87384)):
        assert rows[f"user_data {kib} KiB ({kib * 1024} bytes, {b64} base64 characters)"] == (
            "1", "202", f"accepted; read back {kib * 1024} bytes, identical to what was sent")
    sizes = [len(base64.b64decode(b["user_data"])) for b in posted(exchanges, "/instances")
             if "user_data" in b]
    assert sizes == [16384, 32768, 65536]
    assert all(base64.b64decode(b["user_data"]).startswith(b"#cloud-config\n")
               for b in posted(exchanges, "/instances") if "user_data" in b)

    # 2. refusals, in the emulator's words.
    assert rows["detach of a block that is not attached"] == ("2", "400", NOT_ATTACHED)
    assert rows["attach while the instance is still booting"] == ("2", "400", LOCKED)
    assert rows["DELETE of the instance just created"] == ("2", "204", "accepted")
    assert rows["GET of the deleted instance, at once"] == ("2", "404", NOT_FOUND)
    assert rows["DELETE of the deleted instance, at once"] == ("2", "404", NOT_FOUND)
    assert rows["GET of the deleted instance, 1 s later"] == ("2", "404", NOT_FOUND)
    assert rows["create of a plan availability does not list "
                "(vcg-a40-24c-120g-48vram in ewr, sold out)"] == ("2", "400", NOT_AVAILABLE)
    refusals = section(report, "2. Refusal texts")
    assert re.search(rf"\| `POST /v2/blocks/[0-9a-f-]+/detach` \| 400 \| {NOT_ATTACHED} \|",
                     refusals)
    assert re.search(r"the instance just after that attach: pending stopped none", refusals)

    # 3. catalogue: the emulator lists its whole-node plans (type vdm) under type=vcg.
    h100, b200 = "vcg-h100-8x-224c-2048g-640vram", "vcg-b200-248c-2826g-1536vram"
    assert rows["GET /plans?type=vcg lists plans of type vdm"] == (
        "3", "200", f"yes: {b200}, {h100}")
    assert rows["GPU plans with neither gpu_type nor gpu_vram_gb"] == ("3", "200", b200)
    assert rows["GPU plans carrying deploy_ondemand"] == ("3", "200", "20 of 20")
    assert rows["GET /regions/{r}/availability?type=vcg lists vdm plan ids"] == (
        "3", "200", f"yes: ewr: {h100}; sea: {h100}; ord: {b200}")
    assert f"| {b200} | vdm | absent | absent | absent | true | false | 47.84 | yes |" in report

    # 4. no GPU plans given: skipped, saying why.
    assert rows["GPU virtualization mode"][2].startswith("skipped: PROBE_GPU_PLANS is not set")

    # Everything it made carried the run's tag (or label), and nothing is left.
    instances = posted(exchanges, "/instances")
    assert len(instances) == 5
    assert all(b["tags"] == ["launcher-probe", run_tag] and b["label"].startswith(run_tag)
               and b["backups"] == "disabled" for b in instances)
    assert [b["label"] for b in posted(exchanges, "/blocks")] == [f"{run_tag}-refusals"]
    assert all(e.request_headers.get("User-Agent") == "launcher/probe-vultr.sh"
               for e in exchanges)
    proof = section(report, "Cleanup proof")
    assert f"- instances tagged {run_tag}: 0" in proof and "**0 left.**" in proof
    assert "- created by this run: instances 4, blocks 1, SSH keys 0" in proof
    assert "| result | complete |" in report
    assert "cleanup proof: 0 left" in done.stdout
    assert left(emu) == NOTHING

    # The key: only ever in curl's config file, never on its argv or in its environment.
    argv = (tmp_path / "curl-argv.log").read_text()
    assert "--config" in argv and "Authorization" not in argv
    assert "VULTR_KEY" not in (tmp_path / "curl-env.log").read_text()
    assert_secret_kept(done, tmp_path)
    host = emu.url.split("/")[2]
    assert f"| API | http://{host}/v2 |" in report


def test_the_gpu_probe_times_the_boot_from_a_snapshot_with_its_own_ssh_key(bed):
    need(shutil.which("ssh-keygen") is not None, "the GPU probe needs ssh-keygen")
    emu, exchanges, env, tmp_path = bed
    plan = "vcg-a16-2c-8g-2vram"
    done = run(env, PROBE_SKIP_USERDATA="1", PROBE_SKIP_REFUSALS="1", PROBE_SKIP_CATALOGUE="1",
               PROBE_GPU_PLANS=plan, PROBE_SNAPSHOT=SNAPSHOT_ID, PROBE_SKIP_SSH="1")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = (tmp_path / "report.md").read_text()
    rows = summary(report)
    assert rows["user_data size limit"] == ("1", "-", "skipped: PROBE_SKIP_USERDATA=1")
    assert rows["refusal texts"] == ("2", "-", "skipped: PROBE_SKIP_REFUSALS=1")
    assert rows["catalogue"] == ("3", "-", "skipped: PROBE_SKIP_CATALOGUE=1")
    active = rows[f"{plan} in ewr from snapshot: seconds from create to status active"]
    ok = rows[f"{plan} in ewr from snapshot: seconds from create to server_status ok"]
    # Realistic timing: active 1 s after the create, server_status ok 3 s after.
    assert active[1] == ok[1] == "200"
    assert 1.0 <= float(active[2]) < 3.0 <= float(ok[2]) < 10
    assert rows[f"{plan} in ewr: nvidia-smi over ssh"] == ("4", "-", "skipped: PROBE_SKIP_SSH=1")

    run_tag = re.search(r"\(tags launcher-probe, (launcher-probe-[0-9a-f-]+)\)", report)[1]
    (key,) = posted(exchanges, "/ssh-keys")
    assert key["name"] == run_tag and key["ssh_key"].startswith("ssh-ed25519 ")
    (created,) = posted(exchanges, "/instances")
    assert created["snapshot_id"] == SNAPSHOT_ID and created["plan"] == plan
    assert len(created["sshkey_id"]) == 1
    deleted = [e.path for e in exchanges if e.method == "DELETE" and e.status == 204]
    assert f"/v2/ssh-keys/{created['sshkey_id'][0]}" in deleted
    assert "**0 left.**" in section(report, "Cleanup proof")
    assert left(emu) == NOTHING
    assert_secret_kept(done, tmp_path)


# -- interrupted, and what cannot be deleted ----------------------------------------------------


def _read_until(proc: subprocess.Popen, marker: str) -> list[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    while True:
        try:
            line = lines.get(timeout=DEADLINE_S)
        except queue.Empty:
            proc.kill()
            raise AssertionError(f"no '{marker}' line: {seen[-20:]}") from None
        seen.append(line)
        if marker in line:
            return seen


@pytest.mark.parametrize(("signum", "to_group", "marker", "code"), [
    # Ctrl-C: the terminal sends SIGINT to the whole process group, curl included.
    (signal.SIGINT, True, "created block", 130),
    # SIGTERM to the script alone, while an instance exists and a request hangs.
    (signal.SIGTERM, False, "created instance", 143),
], ids=["ctrl-c-after-block", "sigterm-after-instance"])
def test_an_interrupted_run_deletes_what_it_made(bed, signum, to_group, marker, code):
    emu, _, env, tmp_path = bed
    extra = {"PROBE_SKIP_CATALOGUE": "1", "PROBE_USERDATA_KIB": "16"}
    if marker == "created block":
        extra["PROBE_SKIP_USERDATA"] = "1"
    else:  # the read-back after the create hangs: the signal lands while the instance exists
        emu.inject("GET /instances/{id}/user-data", "hang", hang_s=3)
    proc = subprocess.Popen(["bash", str(SCRIPT)], env={**env, **extra}, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _read_until(proc, marker)
        made = left(emu)
        assert made["instances" if "instance" in marker else "blocks"] == 1
        if to_group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        _, err = proc.communicate(timeout=DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err[-2000:]
    assert left(emu) == NOTHING
    report = (tmp_path / "report.md").read_text()
    assert f"| result | interrupted by {signum.name}; what it had created was deleted" in report
    assert "**0 left.**" in section(report, "Cleanup proof")
    assert FAKE_VULTR_KEY not in err + report
    assert list((tmp_path / "tmp").iterdir()) == []


def test_what_cannot_be_deleted_is_named_with_a_command_that_deletes_it(bed):
    emu, _, env, tmp_path = bed
    emu.inject("DELETE /instances/{id}", "refuse", status=500, error="instance_locked",
               count=100)  # more than the probe's bounded tries: 6 at once, then 6 a round
    done = run(env, PROBE_SKIP_CATALOGUE="1", PROBE_SKIP_REFUSALS="1", PROBE_USERDATA_KIB="16",
               PROBE_CLEANUP_WAIT_S="2", PROBE_POLL_S="0.1")
    assert done.returncode == 1, done.stderr[-3000:]
    (instance,) = emu.state.list_instances(None, None, None)
    command = (f"curl -X DELETE -H @<(printf 'Authorization: Bearer %s\\n' \"$VULTR_KEY\") "
               f"{emu.url}/instances/{instance.id}")
    assert f"LEFT: instance {instance.id} ({instance.label}): {command}" in done.stderr
    report = (tmp_path / "report.md").read_text()
    proof = section(report, "Cleanup proof")
    assert f"`{command}`" in proof and "**1 left**" in proof
    assert "| result | complete, but something is left (see the cleanup proof) |" in report
    assert_secret_kept(done, tmp_path)

    # The command works, as printed, once the instance can be deleted.
    for _ in range(200):
        if not emu.pending_faults():
            break
        _delete(f"{emu.url}/instances/{instance.id}")
    assert not emu.pending_faults() and left(emu)["instances"] == 1
    done = subprocess.run(["bash", "-c", command], env={"PATH": os.environ.get("PATH", ""),
                                                      "VULTR_KEY": FAKE_VULTR_KEY},
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0 and left(emu) == NOTHING


def _delete(url: str) -> None:
    request = urllib.request.Request(url, method="DELETE",
                                     headers={"Authorization": f"Bearer {FAKE_VULTR_KEY}"})
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except urllib.error.HTTPError as refused:
        if refused.code == 429:  # the emulator's 30 requests/s
            time.sleep(float(refused.headers.get("Retry-After", "1")))
