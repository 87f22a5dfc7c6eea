"""A wrapper that keeps a secret out of reprs, logs and exception texts.

The value is only reachable through :meth:`Secret.reveal`, which the API layer calls once per
request to build the ``Authorization`` header. :func:`redact` scrubs known secret values from
text that came from elsewhere (a server's error message can echo what it received), with the
one scrubber the runner uses too (:mod:`launcher.runner.secretsfile`).
"""

from __future__ import annotations

from launcher.runner.secretsfile import REDACTED, scrub_values

__all__ = ["REDACTED", "Secret", "redact"]


class Secret:
    """An opaque string. ``str()``, ``repr()`` and ``format()`` all show ``***``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret takes a string")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self):
        raise TypeError("a Secret is not serialisable")


def redact(text: str, *secrets: Secret | str | None) -> str:
    """Return ``text`` with every non-trivial secret value replaced by ``***`` (the runner's
    scrubber, :func:`launcher.runner.secretsfile.scrub_values`, does the work)."""
    values = (s.reveal() if isinstance(s, Secret) else s for s in secrets)
    return scrub_values(text, (v for v in values if v))
