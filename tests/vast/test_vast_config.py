"""VAST_* settings: defaults, the key as a Secret, the URL checks and the timeouts."""

from __future__ import annotations

import pytest

from launcher.errors import ConfigError
from launcher.secrets import Secret
from launcher.vast import DEFAULT_API_URL, VastClient, VastSettings
from launcher.vast.config import api_root

from .conftest import FAKE_VAST_KEY


def test_defaults_without_any_variable():
    settings = VastSettings.from_env({})
    assert settings.api_url == "https://console.vast.ai/api/v0" == DEFAULT_API_URL
    assert settings.api_key is None
    assert settings.timeouts.attempt == 60.0


def test_the_key_is_a_secret_and_the_url_loses_its_trailing_slash():
    settings = VastSettings.from_env({"VAST_API_KEY": f" {FAKE_VAST_KEY} ",
                                      "VAST_API_URL": "http://127.0.0.1:8080/api/v0/"})
    assert settings.api_key == Secret(FAKE_VAST_KEY)
    assert settings.api_url == "http://127.0.0.1:8080/api/v0"
    assert FAKE_VAST_KEY not in repr(settings)


def test_timeouts_come_from_the_environment_and_an_attempt_fits_both():
    settings = VastSettings.from_env({"VAST_CONNECT_TIMEOUT": "20", "VAST_READ_TIMEOUT": "50"})
    assert (settings.timeouts.connect, settings.timeouts.read) == (20.0, 50.0)
    assert settings.timeouts.attempt == 70.0


@pytest.mark.parametrize("env, words", [
    ({"VAST_READ_TIMEOUT": "0"}, "VAST_READ_TIMEOUT"),
    ({"VAST_API_URL": "http://console.vast.ai/api/v0"}, "plain http"),
    ({"VAST_API_URL": "https://console.vast.ai"}, "must end in /api/v0"),
    ({"VAST_API_URL": "https://console.vast.ai/api/v0?x=1"}, "query"),
])
def test_bad_settings_are_config_errors_naming_the_variable(env, words):
    with pytest.raises(ConfigError, match=words):
        VastSettings.from_env(env)


def test_the_api_root_is_what_lies_above_the_versioned_path():
    assert api_root("https://console.vast.ai/api/v0") == "https://console.vast.ai"
    assert api_root("http://127.0.0.1:9/prefix/api/v0") == "http://127.0.0.1:9/prefix"


def test_a_client_from_the_environment_says_where_it_points_and_hides_the_key():
    client = VastClient.from_env({"VAST_API_KEY": FAKE_VAST_KEY})
    with client:
        assert repr(client) == ("VastClient(VastHttp(base_url='https://console.vast.ai/api/v0',"
                                " key=set))")
