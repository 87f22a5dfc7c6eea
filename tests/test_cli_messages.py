"""Issue 14, points 6 and 12 at the command line: ``--env-file`` before or after the command,
never a FIFO, a warning for a ``.env`` others can read, the exit statuses in ``--help`` and the
README, and a hint for a VULTR_API_URL without ``/v2`` or with https to a plain-http server."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from launcher import cli
from launcher.cli import build_parser, main

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.env"
    path.write_text("WANDB_PROJECT=from-the-file\n")
    path.chmod(0o600)
    return path


def shown_env_file(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)["env_file"]


def test_env_file_may_follow_the_command(env_file, capsys):
    for argv in (["--env-file", str(env_file), "config", "show", "--json"],
                 ["config", "show", "--env-file", str(env_file), "--json"],
                 ["config", "show", "--json", "--env-file", str(env_file)]):
        assert shown_env_file(capsys, argv) == {"path": str(env_file), "named_by": "--env-file",
                                                 "found": True}


@pytest.mark.parametrize("argv", [
    ["run", "--env-file", "X", "--stage", "S"],
    ["--env-file", "X", "run", "--stage", "S"],
    ["status", "--env-file", "X"],
    ["doctor", "--env-file", "X", "--json"],
])
def test_every_command_takes_env_file_on_either_side(argv):
    assert build_parser().parse_args(argv).env_file == "X"


@pytest.mark.timeout(20)
def test_a_fifo_as_env_file_is_refused_at_once(tmp_path, capsys):
    fifo = tmp_path / "keys.fifo"
    os.mkfifo(fifo)
    assert main(["--env-file", str(fifo), "config", "show"]) == 2
    err = capsys.readouterr().err
    assert f"error: {fifo}: expected a regular file of NAME=value lines, not a FIFO" in err


def test_a_directory_as_env_file_is_refused(tmp_path, capsys):
    assert main(["--env-file", str(tmp_path), "config", "show"]) == 2
    assert "not a directory" in capsys.readouterr().err


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_an_env_file_others_can_read_is_warned_about_once_with_the_chmod(env_file, capsys,
                                                                        mode):
    env_file.chmod(mode)
    for _ in range(2):
        assert main(["--env-file", str(env_file), "config", "show", "--json"]) == 0
    err = capsys.readouterr().err
    assert err.count(f"warning: {env_file} can be read or changed by other users (mode "
                     f"{mode:04o}) and holds keys: chmod 600 {env_file}\n") == 1


def test_an_empty_env_file_is_not_warned_about(tmp_path, capsys):
    empty = tmp_path / "empty.env"
    empty.write_text("# nothing yet\n")
    empty.chmod(0o644)
    assert main(["--env-file", str(empty), "config", "show", "--json"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_an_env_file_only_its_owner_reads_is_not_warned_about(env_file, capsys):
    assert main(["--env-file", str(env_file), "config", "show", "--json"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_the_exit_statuses_are_in_help_and_in_the_readme(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    readme = README.read_text(encoding="utf-8")
    assert "exit status:" in help_text
    for code, meaning in cli.EXIT_CODES:
        assert f"{code} {meaning}" in help_text
        assert f"| {code} | {meaning} |" in readme


class _NotFound(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b'{"error": "Invalid route.", "status": 404}'
        self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def plain_http_404() -> Iterator[int]:
    """A plain-http server on 127.0.0.1 that answers every GET 404, as Vultr does off /v2."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_an_api_url_without_v2_is_hinted_at(monkeypatch, capsys):
    with plain_http_404() as port:
        monkeypatch.setenv("VULTR_API_URL", f"http://127.0.0.1:{port}")
        assert main(["offers", "--regions", "sjc"]) == 3
    err = capsys.readouterr().err
    assert (f"hint: VULTR_API_URL is http://127.0.0.1:{port}, without /v2: Vultr's API (and the "
            f"emulator) answer under /v2, e.g. http://127.0.0.1:{port}/v2") in err


def test_https_to_a_plain_http_server_is_hinted_at(monkeypatch, capsys):
    with plain_http_404() as port:
        monkeypatch.setenv("VULTR_API_URL", f"https://127.0.0.1:{port}/v2")
        assert main(["offers", "--regions", "sjc"]) == 3
    err = " ".join(capsys.readouterr().err.split())
    assert f"https to 127.0.0.1:{port} failed: the server does not speak TLS" in err
    assert f"VULTR_API_URL=http://127.0.0.1:{port}/v2" in err
