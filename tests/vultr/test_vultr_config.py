"""VultrSettings.from_env: URL validation, key as Secret, timeouts."""

from __future__ import annotations

import pytest

from launcher.errors import ConfigError
from launcher.secrets import Secret
from launcher.vultr import DEFAULT_API_URL, Timeouts, VultrSettings


def test_defaults():
    settings = VultrSettings.from_env({})
    assert settings.api_url == DEFAULT_API_URL
    assert settings.api_key is None
    assert settings.timeouts == Timeouts(5.0, 30.0)


def test_values_from_environment(fake_key):
    settings = VultrSettings.from_env(
        {
            "VULTR_API_URL": "http://127.0.0.1:8080/v2/",
            "VULTR_KEY": f" {fake_key} ",
            "VULTR_CONNECT_TIMEOUT": "2",
            "VULTR_READ_TIMEOUT": "60.5",
        }
    )
    assert settings.api_url == "http://127.0.0.1:8080/v2"
    assert settings.api_key == Secret(fake_key)
    assert settings.timeouts == Timeouts(2.0, 60.5, attempt=62.5)  # a connect and a read
    assert fake_key not in repr(settings)


def test_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("VULTR_API_URL", "https://api.example.test/v2")
    assert VultrSettings.from_env().api_url == "https://api.example.test/v2"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://api.vultr.com/v2",
        "api.vultr.com/v2",
        "https:///v2",
        "https://user:pw@api.vultr.com/v2",
        "https://api.vultr.com/v2?x=1",
        "https://api.vultr.com/v2#frag",
        "http://api.vultr.com/v2",
        "http://10.0.0.5:8080/v2",
        "https://api.vultr.com:notaport/v2",
    ],
)
def test_bad_urls_are_refused(url):
    with pytest.raises(ConfigError, match="VULTR_API_URL"):
        VultrSettings.from_env({"VULTR_API_URL": url})


@pytest.mark.parametrize("url", ["http://localhost:9/v2", "http://[::1]:9/v2", "https://h/v2"])
def test_good_urls(url):
    assert VultrSettings.from_env({"VULTR_API_URL": url}).api_url == url


@pytest.mark.parametrize("value", ["0", "-1", "abc", "601"])
def test_bad_timeouts_are_refused(value):
    with pytest.raises(ConfigError, match="VULTR_READ_TIMEOUT"):
        VultrSettings.from_env({"VULTR_READ_TIMEOUT": value})


def test_timeouts_must_be_positive():
    with pytest.raises(ValueError):
        Timeouts(0, 1)
