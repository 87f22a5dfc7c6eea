"""Every error text the emulator sends, in one table.

The Vultr client maps these texts to exception types, so they are part of the emulator's
contract: change one here and the client's table must follow. Texts that Vultr is known to send
are copied verbatim, each with its source in docs/emulator.md ("Wording"); the rest are the
emulator's own wording for a refusal Vultr also makes. Every refusal is sent as
``{"error": TEXT, "status": N}``.
"""

from __future__ import annotations

ERRORS: dict[str, str] = {
    # auth, routing, transport
    "unauthorized": "Invalid API token.",
    # A valid key used from an address its API access control does not list (Vultr's words).
    "unauthorized_ip": "Unauthorized IP address: {address}",
    "no_route": "Invalid route.",
    "bad_method": "Method not allowed.",
    "bad_json": "Invalid JSON body.",
    "body_too_large": "Request body too large.",
    "bad_length": "Invalid Content-Length.",
    "rate_limited": "Rate limit reached. Please try again later.",
    "internal": "Internal server error.",
    "bad_field": "Invalid {field}.",
    "missing_field": "Missing required field: {field}.",
    # pagination
    "bad_per_page": "Invalid per_page: must be an integer of at least 1.",
    "bad_cursor": "Invalid cursor.",
    # catalogue and instance create
    "bad_plan": "Invalid plan chosen.",
    "bad_region": "Invalid region chosen.",
    "out_of_stock": "Plan is not available in the selected region.",
    "no_source": "One of os_id, snapshot_id, image_id, app_id or iso_id is required.",
    "many_sources": "Only one of os_id, snapshot_id, image_id, app_id or iso_id may be given.",
    "bad_snapshot": "Invalid snapshot.",
    "bad_os": "Invalid OS.",
    "bad_app": "Invalid application.",
    "bad_iso": "Invalid ISO.",
    "bad_ssh_key": "Invalid SSH key.",
    "bad_user_data": "Invalid user_data: must be base64 encoded.",
    # not found
    "instance_not_found": "Instance not found.",
    # A gone or going instance in Vultr's other wordings (sent by the "refuse" fault).
    "instance_invalid_id": "invalid instance ID",
    "instance_pending_destruction": "Server is pending destruction",
    "block_not_found": "Block storage not found.",
    "snapshot_not_found": "Snapshot not found.",
    "ssh_key_not_found": "SSH key not found.",
    "user_not_found": "User not found.",
    # block storage
    "instance_locked": "Server is currently locked",
    "region_mismatch": "Block storage volume and instance must be in the same region.",
    "already_attached": "Block storage is already attached.",
    "not_attached": "Block storage volume is not currently attached to a server",
    "delete_attached": "Block storage is attached to an instance. Detach it first.",
    "bad_block_type": "Invalid block_type: must be high_perf or storage_opt.",
    "bad_block_size":
        "Invalid size_gb: {block_type} block storage must be between {low} and {high} GB.",
    "shrink_block": "Invalid size_gb: block storage can only grow.",
    "block_type_unavailable":
        "Block storage type {block_type} is not available in the selected region.",
    # VPCs (sources, or "emulator's own", in docs/emulator.md "VPCs")
    "vpc_not_found": "Invalid VPC ID.",
    "bad_vpc": "Invalid VPC ID.",
    "vpc_region_mismatch": "VPC {vpc} is not in the instance's region ({region}).",
    "vpc_attached": "The following servers are attached to this VPC network: {addresses}",
    "vpc_subnet_pair": "v4_subnet and v4_subnet_mask must be given together.",
    "bad_vpc_subnet":
        "Invalid v4_subnet: must be an RFC1918 network, host bits clear, with room for hosts.",
    "vpc_full": "No free address left in the VPC.",
}


class Refusal(Exception):
    """A request the emulator refuses: becomes ``{"error": text, "status": status}``."""

    def __init__(self, status: int, key: str, headers: dict[str, str] | None = None, **fmt: object):
        self.status = status
        self.key = key
        self.text = ERRORS[key].format(**fmt)
        self.headers = dict(headers or {})
        super().__init__(f"{status} {self.text}")


class HypervisorError(Exception):
    """A hypervisor hook raised; the state change was rolled back and the client gets a 500."""
