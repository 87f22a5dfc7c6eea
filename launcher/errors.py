"""One exception tree for everything the launcher reports to a person.

Every error the CLI can show derives from :class:`LauncherError`. Its text is safe to print:
it never carries a secret (the API layer scrubs server messages before they get here). The
subclasses are grouped by what the caller should do next, not by HTTP status, so a provider
other than Vultr can raise the same ones.
"""

from __future__ import annotations


class LauncherError(Exception):
    """Base of every error the launcher raises on purpose; ``exit_code`` is the CLI's status."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nhint: {self.hint}"


class ConfigError(LauncherError):
    """The user's input (a file, a flag, an environment variable) is wrong; fix it and retry."""

    exit_code = 2


class ApiError(LauncherError):
    """A provider API call failed. Carries the method, the path (no query, no host) and status."""

    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        path: str = "",
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        where = f"{method} {path}".strip()
        code = f" (HTTP {status})" if status is not None else ""
        text = f"{where}{code}: {message}" if where else f"{message}{code}"
        super().__init__(text, hint=hint)
        self.api_message = message
        self.method = method
        self.path = path
        self.status = status


class AuthError(ApiError):
    """The credentials were refused (401/403): a wrong, expired or IP-restricted API key."""


class NotFoundError(ApiError):
    """The resource does not exist (404). Deleting something already gone is not this error."""


class InvalidRequestError(ApiError):
    """The provider refused the request as malformed or not allowed (4xx): never retried."""


class OutOfCapacityError(InvalidRequestError):
    """The plan is unavailable or sold out in that region: try another plan or region."""


class ConflictError(InvalidRequestError):
    """The resource is busy (for example an instance is locked): retry later, not blindly now."""


class RateLimitedError(ApiError):
    """Still rate limited (429) after the retry budget; ``retry_after`` is the server's advice."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class TransientError(ApiError):
    """A server error, timeout or broken connection that outlived the retry budget."""


class AmbiguousCreateError(TransientError):
    """A create may or may not have happened and the look-up could not tell: check first."""


class WaitError(LauncherError):
    """A wait did not end in the wanted state. ``last_state`` is the last record seen."""

    exit_code = 4

    def __init__(self, message: str, *, last_state: object = None) -> None:
        super().__init__(message)
        self.last_state = last_state


class WaitTimeoutError(WaitError):
    """A wait passed its deadline."""


class WaitFailedError(WaitError):
    """A waited-on resource reached a state it cannot leave on its own."""
