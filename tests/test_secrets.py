"""The Vultr key never shows: not in output, logs, exception texts, tracebacks or reprs.

One session drives every kind of API traffic the suite knows (reads, creates, waits, attach,
deletes, 401, 404, 4xx refusals, 5xx and 429 retries, timeouts, ambiguous creates, a lookup
that fails) and every CLI command that talks to the API, with the fake key set, and gathers
everything a person or a log file could ever see. Then it looks for the key.
"""

from __future__ import annotations

import logging
import pickle
import traceback

import pytest
from conftest import client_for
from support.keys import FAKE_VULTR_KEY

from launcher.cli import main
from launcher.errors import LauncherError
from launcher.runner.secretsfile import scrub_values
from launcher.runner.upload import copy_tail
from launcher.secrets import REDACTED, Secret, redact
from launcher.vultr import BlockSpec, InstanceSpec, Timeouts, VultrSettings

SNAPSHOT_ID = "5f0d2c1e-8a3b-4c6d-9e7f-0a1b2c3d4e5f"
PLAN = "vcg-a100-6c-60g-40vram"


def _attempt(seen: list[str], call) -> object:
    """Run ``call``; keep the text, repr and full traceback of any launcher error."""
    try:
        return call()
    except LauncherError as exc:
        seen += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
        return None


def _drive_every_kind_of_traffic(emulator, key: Secret, seen: list[str]) -> None:
    # The key travels as a Secret: a traceback shows frame arguments, and a plain string
    # there would read as a leak when something unexpected fails. Read timeouts are far
    # below the 2 s hang and far above a loaded machine's slowest answer.
    with client_for(emulator.url, timeouts=Timeouts(connect=1, read=1.0)) as client:
        seen += [repr(client), repr(client.http)]
        seen += [repr(x) for x in (client.list_plans(), client.list_metal_plans(),
                                   client.list_regions(), client.get_account(),
                                   client.list_users(), client.list_ssh_keys())]
        spec = InstanceSpec("sea", PLAN, "run-s", snapshot_id=SNAPSHOT_ID, user_data="#x")
        seen.append(repr(spec))
        emulator.inject("POST /instances", "ambiguous_create")
        instance = client.create_instance(spec)
        emulator.inject("POST /blocks", "hang", hang_s=2)
        block = client.create_block(BlockSpec("sea", 100, "run-s"))
        emulator.inject("GET /account", "429", retry_after=1)
        emulator.inject("GET /account", "503", count=2)
        seen += [repr(instance), repr(block), repr(client.get_account())]
        client.attach_block(block.id, instance.id)
        _attempt(seen, lambda: client.delete_block(block.id))  # attached: refused
        _attempt(seen, lambda: client.create_instance(
            InstanceSpec("sjc", PLAN, "x", snapshot_id=SNAPSHOT_ID)))  # out of stock
        _attempt(seen, lambda: client.get_instance("no-such-id"))
        emulator.inject("POST /instances", "ambiguous_create")
        emulator.inject("GET /instances", "500", count=50)
        _attempt(seen, lambda: client.create_instance(InstanceSpec(
            "sea", PLAN, "run-t", snapshot_id=SNAPSHOT_ID)))
        client.delete_instance(instance.id)
        client.delete_block(block.id)
    # A wrong key that contains the right one: if either leaks, the scan finds it.
    with client_for(emulator.url, key="wrong-" + key.reveal()) as stranger:
        _attempt(seen, stranger.get_account)


def test_the_key_appears_nowhere(emulator, monkeypatch, capsys, caplog):
    fake_vultr_key = FAKE_VULTR_KEY  # not a fixture argument: a traceback would show it
    seen: list[str] = []
    caplog.set_level(logging.DEBUG)
    _drive_every_kind_of_traffic(emulator, Secret(fake_vultr_key), seen)
    monkeypatch.setenv("VULTR_KEY", fake_vultr_key)
    monkeypatch.setenv("VULTR_API_URL", emulator.url)
    seen.append(repr(VultrSettings.from_env()))
    # (the demo makes its own account: tests/demo runs it with the fake keys)
    for argv in (["offers"], ["offers", "--json"], ["-v", "offers"], ["offers", "--regions", "x"]):
        main(argv)
    out = capsys.readouterr()
    seen += [out.out, out.err, caplog.text]
    seen += [repr(e) for e in emulator.events]
    assert len("".join(seen)) > 10_000, "the sweep saw too little to mean anything"
    assert "GET /account" in caplog.text  # the DEBUG log really was captured
    leaks = [text[:200] for text in seen if fake_vultr_key in text]
    assert leaks == []


def test_a_secret_cannot_be_printed_formatted_or_pickled(fake_vultr_key):
    secret = Secret(fake_vultr_key)
    shown = [str(secret), repr(secret), f"{secret}", f"{secret!r}", f"{secret:>40}",
             "%s" % (secret,), "{}".format(secret),  # noqa: UP031, UP032 - each path on purpose
             repr([secret]), repr({"k": secret})]
    assert all(fake_vultr_key not in s for s in shown)
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    assert secret.reveal() == fake_vultr_key


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("key abcd1234 in it", ["abcd1234"], "key *** in it"),
        ("abcd1234abcd1234", ["abcd1234"], "******"),
        ("short abc stays", ["abc"], "short abc stays"),  # under 4 characters: kept
        ("nothing", [], "nothing"),
        ("sk-abcd-efgh and abcd", ["abcd", "sk-abcd-efgh"], "*** and ***"),  # longest first
    ],
)
def test_one_scrubber_for_the_launcher_the_runner_and_its_files(tmp_path, text, values,
                                                                 expected):
    """``redact`` (launcher), ``scrub_values`` (runner, bootstrap) and ``copy_tail`` (the
    runner's log uploads, bytes) are one implementation and answer alike."""
    assert REDACTED == "***"
    assert scrub_values(text, values) == expected
    assert redact(text, *values) == expected
    assert redact(text, *(Secret(v) for v in values), None, "") == expected
    assert scrub_values(text.encode(), values) == expected.encode()

    class Secrets:
        def all_values(self) -> list[str]:
            return values

    source, dest = tmp_path / "log", tmp_path / "copy"
    source.write_text(f"{text}\n" * 3)
    copy_tail(source, dest, None, Secrets())  # type: ignore[arg-type]
    assert dest.read_text() == f"{expected}\n" * 3


def test_a_log_tail_never_starts_inside_a_secret(tmp_path):
    key = "FAKE-tail-secret-0123456789"

    class Secrets:
        def all_values(self) -> list[str]:
            return [key]

    source, dest = tmp_path / "log", tmp_path / "copy"
    source.write_bytes(f"first line {key} end\nsecond\nthird\n".encode())
    for limit in range(1, source.stat().st_size + 2):
        copy_tail(source, dest, limit, Secrets())  # type: ignore[arg-type]
        copied = dest.read_text()
        assert key[-4:] not in copied, (limit, copied)  # no piece of the key's end
        assert copied.endswith("second\nthird\n") or "second\nthird\n".endswith(copied)
