"""Every error the Vast emulator sends: ``{"success": false, "error": CODE, "msg": TEXT}``.

The envelope is Vast's "most common error response shape" (docs/emulator.md, Vast section).
Codes and texts quoted from Vast's OpenAPI files are marked ``# source``; the rest are the
emulator's own neutral wordings for refusals whose text no source gives.
"""

from __future__ import annotations

from launcher.emulator.errors import Refusal

VAST_ERRORS: dict[str, tuple[str, str]] = {
    # source: show_instance.yaml 401 example
    "auth": ("auth_error", "Invalid user key"),
    "scope": ("not_authorized", "This key may not be used for this request."),
    "no_route": ("not_found", "No such endpoint."),
    "bad_method": ("not_found", "Method not allowed on this endpoint."),
    # source: search_offers.yaml 400 example
    "bad_json": ("invalid_request", "Invalid json body"),
    "bad_query": ("invalid_request", "Error in query parameters: {detail}"),
    # source: show_instances.yaml 400 example ("dph_total is not a valid search key")
    "bad_key": ("invalid_request", "Error in query parameters: {field} is not a valid search key"),
    "bad_token": ("invalid_token", "Invalid after_token."),
    # source: create_instance.yaml 400 example
    "bad_offer_id": ("invalid_args",
                     "error 400/3467: Invalid args: 'id' is required and must be a valid offer ID"),
    "bad_args": ("invalid_args", "Invalid args: {detail}"),
    # source: create_instance.yaml 404 and 410 examples
    "no_such_ask": ("invalid_args",
                    "error 404/3603: no_such_ask Instance type by id {id} is not available."),
    "ask_gone": ("no_such_ask",
                 "error 410/3907: no_such_ask Instance type {id} is no longer available."),
    # source: destroy_instance.yaml 400 and 404 examples
    "bad_instance_id": ("invalid_args", "invalid instance_id"),
    "instance_not_found": ("not_found", "Instance not found"),
    # source: manage_instance.yaml error enum (texts not given)
    "no_such_instance": ("no_such_instance", "No such instance."),
    "label_too_long": ("label_too_long", "Label is too long."),
    "bad_state": ("invalid_args", "state must be running or stopped."),
    # source: logs.yaml 404 example
    "logs_bad_id": ("invalid_id", "Invalid instance id."),
    # source: create_ssh_key.yaml 400; delete_ssh_key.yaml 400 (its "not_found" example)
    "no_ssh_key": ("no_ssh_key", "No ssh key provided"),
    "internal": ("server_error", "Internal Server Error"),
}

# source: rate-limits-and-errors.mdx (text); create_instance.yaml 429 ({"detail": ...} shape)
RATE_LIMITED_TEXT = "API requests too frequent"


class VastRefusal(Refusal):
    """A refusal in Vast's envelope; ``extra`` adds fields (``ask_id`` on create refusals)."""

    def __init__(self, status: int, key: str, headers: dict[str, str] | None = None,
                 extra: dict | None = None, **fmt: object) -> None:
        code, text = VAST_ERRORS[key]
        self.status = status
        self.key = key
        self.code = code
        self.text = text.format(**fmt)
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
        Exception.__init__(self, f"{status} {self.text}")

    def body(self) -> dict:
        """The JSON error body."""
        return {"success": False, "error": self.code, "msg": self.text, **self.extra}
