"""Where a fake key ended up, said without the key itself.

A failing assertion that quoted the text would print the key, and the suite's scanner
(tests/conftest.py) would then hide the whole failure behind "a fake API key appeared"; these
helpers name the key and the place instead, so a broken scrubber fails with a useful line.
"""

from __future__ import annotations

from collections.abc import Mapping

from support.keys import ALL_FAKE_KEYS

MASK = "***"


def key_name(key: str) -> str:
    """``FAKE_B2_APP_KEY`` for its value: the name the suite gives it in support.keys."""
    from support import keys

    for name in dir(keys):
        if name.isupper() and getattr(keys, name) == key:
            return name
    return "an unnamed fake key"


def leaks(texts: Mapping[str, str]) -> list[str]:
    """``"<KEY NAME> in <where>"`` for every fake key found in any of ``texts``."""
    return [f"{key_name(key)} in {where}" for where, text in texts.items()
            for key in ALL_FAKE_KEYS if key in text]


def masked(text: str) -> str:
    """``text`` with every fake key replaced by its name: safe to print in an assertion."""
    for key in ALL_FAKE_KEYS:
        text = text.replace(key, f"<{key_name(key)}>")
    return text
