"""Suite-wide rules and fixtures.

- Every test runs sealed (see :mod:`support.seal`): no credential or proxy variable leaks in,
  and nothing but loopback can be reached.
- Every test's captured stdout, stderr, logs (at DEBUG) and failure text is scanned for the
  suite's fake keys; a hit fails that test, whatever it asserted.
- Every emulator a test starts in-process has every exchange checked against Vultr's OpenAPI
  document (see :mod:`support.contract`); a violation fails the test that caused it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.contract import (
    ContractChecker,
    Tally,
    contract_checker,
    loaded_checker,
    spec_path,
)
from support.keys import ALL_FAKE_KEYS, FAKE_VULTR_KEY
from support.need import need
from support.seal import seal

from launcher.emulator import Emulator, RateLimit, Timing
from launcher.secrets import Secret
from launcher.vultr import PollPolicy, RetryPolicy, Timeouts, VultrClient, VultrHttp
from launcher.waiting import ProgressLines

SCAN = {"phases": 0, "leaks": 0}


@pytest.fixture(scope="session")
def user_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def sealed(monkeypatch: pytest.MonkeyPatch, user_cache: Path) -> None:
    seal(monkeypatch)
    # run locks, pinned host keys and the built runner go here, not under ~/.cache
    monkeypatch.setenv("XDG_CACHE_HOME", str(user_cache))


@pytest.fixture
def fake_vultr_key() -> str:
    return FAKE_VULTR_KEY


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Fail any test phase whose output, logs or failure text contains a fake key."""
    outcome = yield
    report = outcome.get_result()
    texts = [content for _, content in report.sections]
    if report.longrepr is not None:
        texts.append(str(report.longrepr))
    SCAN["phases"] += 1
    if any(key in text for key in ALL_FAKE_KEYS for text in texts):
        SCAN["leaks"] += 1
        report.outcome = "failed"
        report.longrepr = "a fake API key appeared in this test's output, logs or error text"


@pytest.fixture(autouse=True)
def contract_watch(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Check every exchange of every emulator this test starts in-process against the
    OpenAPI document; a violation fails the test."""
    violations: list[str] = []
    real_start = Emulator.start

    def start(self: Emulator) -> str:
        # Loaded on first use, so only tests with emulator traffic need the document; when it
        # is missing, starting an emulator raises (support.contract.MissingDocument).
        checker = contract_checker()
        self.add_listener(lambda exchange: _check_into(checker, exchange, violations))
        return real_start(self)

    monkeypatch.setattr(Emulator, "start", start)
    yield
    if violations:
        pytest.fail("emulator traffic broke the contract:\n" + "\n".join(violations[:20]))


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Emulator]]:
    """Start emulators (defaults: the fake key, instant timing, no rate limit); each is
    stopped after the test, and an internal error in one fails the test."""
    started: list[Emulator] = []

    def make(**options) -> Emulator:
        options.setdefault("api_key", FAKE_VULTR_KEY)
        options.setdefault("timing", Timing.instant())
        options.setdefault("rate_limit", RateLimit(per_second=None))
        emu = Emulator(**options)
        emu.start()
        started.append(emu)
        return emu

    yield make
    problems = []
    for emu in started:
        emu.stop()
        problems += emu.internal_errors
    if problems:
        pytest.fail("the emulator failed internally:\n" + "\n".join(problems[:20]))


def _check_into(checker: ContractChecker, exchange, violations: list[str]) -> None:
    try:
        violations.extend(checker.check(exchange))
    except Exception as exc:  # a checker bug must fail the test, not vanish in the server
        violations.append(f"contract checker crashed on {exchange.method} {exchange.path}: {exc!r}")


@pytest.fixture
def emulator(make_emulator) -> Emulator:
    return make_emulator()


def client_for(url: str, key: str | None = FAKE_VULTR_KEY, **options) -> VultrClient:
    """A client that never really sleeps between retries and polls fast."""
    options.setdefault("policy", RetryPolicy(base_delay=0.001, max_delay=0.01, deadline_s=30))
    options.setdefault("timeouts", Timeouts(connect=2, read=5))
    options.setdefault("sleep", lambda seconds: None)
    # A slow machine must not put "still waiting" lines into outputs tests compare; the
    # lines themselves are tested with their own interval (tests/vultr/test_vultr_deadlines).
    options.setdefault("progress", ProgressLines(every_s=3600))
    http = VultrHttp(Secret(key) if key else None, base_url=url, **options)
    return VultrClient(http, poll=PollPolicy(initial=0.001, max_interval=0.01))


@pytest.fixture
def client(emulator: Emulator) -> Iterator[VultrClient]:
    with client_for(emulator.url) as c:
        yield c


def pytest_terminal_summary(terminalreporter) -> None:
    checker = loaded_checker()
    if not spec_path().is_file():
        line = (f"contract: NOT checked: {spec_path()} is missing (Vultr's OpenAPI document); "
                "any test with emulator or stub traffic errors")
    else:
        t = checker.tally if checker else Tally()
        line = (f"contract: {t.requests} client requests and {t.responses} emulator responses "
                f"checked against {spec_path().name}, {len(t.violations)} violations")
    terminalreporter.write_line(line)
    terminalreporter.write_line(
        f"secrets: {SCAN['phases']} test phases scanned for {len(ALL_FAKE_KEYS)} fake keys, "
        f"{SCAN['leaks']} leaks"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.need(ok, reason)``: :func:`support.need.need` as a marker (skip with the
    reason; under CI=true, fail)."""
    for marker in item.iter_markers("need"):
        need(*marker.args)
