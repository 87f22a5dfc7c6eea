"""Typed, frozen records of what Vast.ai's API returns.

Each ``from_api(d)`` takes the API's dict, ignores keys it does not know and tolerates missing
ones (neutral defaults or None; never invented values). Secrets the API returns are kept only
as :class:`~launcher.secrets.Secret` (a create's ``instance_api_key``) or not at all (an
instance's ``jupyter_token``, the ``api_key`` that ``GET /users/current/`` may carry).
Field names are the API's (vast-ai/docs ``api-reference/openapi/yaml/search_offers.yaml``,
``show_instance.yaml``, ``show_instances.yaml``, ``show_user.yaml``, ``show_ssh_keys.yaml``;
vast-ai/vast-cli ``vastai/data/offer.py`` ``Offer``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from launcher.errors import ApiError
from launcher.secrets import Secret

from ._record import VastRecord

# vast-cli shows gpu_ram / 1000 as GB (vastai/cli/display.py) and multiplies a query's GB by
# 1000 (vastai/api/query.py ``offers_mult``): Vast's MB are thousandths of its GB.
MB_PER_GB = 1000
# hello-world.mdx: states from which an instance "will never reach running".
DEAD_STATUSES = ("exited", "unknown", "offline")


@dataclass(frozen=True)
class Offer(VastRecord):
    """One machine offer (``POST /bundles/``). ``id`` is what ``PUT /asks/{id}/`` rents.

    Prices are $/hour as the search priced them: ``dph_total`` includes the storage asked for
    in the search's ``allocated_storage``; ``storage_cost`` is $/GB/month.
    """

    id: int
    ask_contract_id: int | None
    machine_id: int | None
    host_id: int | None
    gpu_name: str
    num_gpus: int
    gpu_ram: int  # MB per GPU
    gpu_total_ram: int | None  # MB, all GPUs
    dph_total: float | None
    dph_base: float | None
    storage_cost: float | None
    storage_total_cost: float | None
    inet_up_cost: float | None
    inet_down_cost: float | None
    min_bid: float | None
    # reliability2 where the answer has it (the one vast-cli's instance tables show), else
    # reliability (search_offers.yaml's example carries both)
    reliability: float | None = field(metadata={"api": ("reliability2", "reliability")})
    geolocation: str | None = None
    inet_down: float | None = None  # Mb/s
    inet_up: float | None = None
    disk_space: float | None = None  # GB free for rent
    cuda_max_good: float | None = None
    compute_cap: int | None = None
    verification: str | None = None
    rentable: bool | None = None
    rented: bool | None = None
    is_bid: bool | None = None
    direct_port_count: int | None = None
    cpu_cores_effective: float | None = None
    cpu_ram: int | None = None  # MB
    static_ip: bool | None = None
    public_ipaddr: str | None = None

    @property
    def gpu_ram_gb(self) -> float:
        """VRAM of one GPU in GB (Vast's MB / 1000)."""
        return self.gpu_ram / MB_PER_GB

    @property
    def gpu_total_ram_gb(self) -> float:
        total = self.gpu_total_ram if self.gpu_total_ram is not None \
            else self.gpu_ram * self.num_gpus
        return total / MB_PER_GB

    @property
    def verified(self) -> bool:
        return self.verification == "verified"


@dataclass(frozen=True)
class Instance(VastRecord):
    """One rented instance (``GET /instances/{id}/``, ``GET /api/v1/instances/``).

    ``actual_status`` is the container's state: None while provisioning, ``loading`` while
    the image downloads, ``running`` when ready (hello-world.mdx).

    ``ports`` is the container's published ports as ``((container port, host port), ...)``
    read from the answer's ``{"22/tcp": [{"HostIp": "0.0.0.0", "HostPort": "20000"}]}``
    (show_instances.yaml's ``ports``, "only present on running instances"; vast-cli's
    ``_ssh_url`` reads ``ports["22/tcp"][0]["HostPort"]``); entries of another shape are
    left out (show_instance.yaml types it as a list of numbers, which names no host port).
    """

    id: int
    label: str | None
    actual_status: str | None
    intended_status: str | None
    cur_state: str | None
    next_state: str | None
    status_msg: str | None
    gpu_name: str | None
    num_gpus: int
    dph_total: float | None
    geolocation: str | None
    image_uuid: str | None
    disk_space: float | None
    start_date: float | None  # epoch seconds
    ssh_host: str | None
    ssh_port: int | None
    public_ipaddr: str | None
    machine_id: int | None = None
    template_hash_id: str | None = None
    image_runtype: str | None = None  # "ssh ssh_direc ssh_proxy" (show_instances.yaml)
    ports: tuple[tuple[str, int], ...] = field(default=(), init=False)

    @classmethod
    def from_api(cls, d: Any) -> Instance:
        record = super().from_api(d)
        object.__setattr__(record, "ports", published_ports(d.get("ports")))
        return record

    def host_port(self, container_port: str) -> int | None:
        """The host port published for ``container_port`` (``"22/tcp"``), None when none."""
        return next((host for name, host in self.ports if name == container_port), None)

    @property
    def state(self) -> str:
        """What waits and errors print: ``actual_status`` (``provisioning`` while null)."""
        return self.actual_status or "provisioning"

    @property
    def is_running(self) -> bool:
        return self.actual_status == "running"

    @property
    def is_dead(self) -> bool:
        """In a state it will not leave for ``running`` (hello-world.mdx's warning)."""
        return self.actual_status in DEAD_STATUSES


@dataclass(frozen=True)
class CreatedInstance:
    """What a create gave: the instance id (``new_contract``) and the instance's own
    restricted key (``instance_api_key``, set in the container as ``CONTAINER_API_KEY``,
    hello-world.mdx), None when the create was settled by finding the instance by label."""

    id: int
    instance_api_key: Secret | None = field(default=None, repr=False)
    found_by_label: bool = False

    @classmethod
    def from_answer(cls, d: dict[str, Any]) -> CreatedInstance:
        """From the create's answer, or from the instance row a look-up found."""
        if "new_contract" in d:
            key = d.get("instance_api_key")
            return cls(_id(d.get("new_contract"), "new_contract"),
                       Secret(key) if isinstance(key, str) and key else None)
        return cls(_id(d.get("id"), "id"), None, found_by_label=True)


def published_ports(value: object) -> tuple[tuple[str, int], ...]:
    """``{"22/tcp": [{"HostPort": "20000"}, ...]}`` -> ``(("22/tcp", 20000),)``: the first
    binding of each port whose ``HostPort`` is a TCP port number; nothing else."""
    if not isinstance(value, dict):
        return ()
    found = []
    for name, bindings in value.items():
        first = bindings[0] if isinstance(bindings, list) and bindings else None
        host = str(first.get("HostPort", "")).strip() if isinstance(first, dict) else ""
        if isinstance(name, str) and host.isdigit() and 0 < int(host) < 65536:
            found.append((name, int(host)))
    return tuple(found)


def _id(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise ApiError(f"Vast.ai answered a create without a numeric {name!r}")
    return int(value)


@dataclass(frozen=True)
class LogRequest(VastRecord):
    """The answer to ``PUT /instances/request_logs/{id}/``: where the logs will appear."""

    result_url: str | None
    msg: str | None


@dataclass(frozen=True)
class User(VastRecord):
    """``GET /users/current/`` (the answer's ``api_key``, if any, is not kept)."""

    id: int | None
    email: str | None
    balance: float | None
    credit: float | None
    username: str | None = None


@dataclass(frozen=True)
class SshKey(VastRecord):
    """One account SSH key. The public key is ``key`` in ``GET /ssh/`` (show_ssh_keys.yaml),
    ``public_key`` in the ``POST /ssh/`` answer (create_ssh_key.yaml) and ``ssh_key`` in
    vast-cli's tests (tests/cli/test_keys_commands.py): the first present is read."""

    id: int | None
    public_key: str = field(metadata={"api": ("public_key", "key", "ssh_key")})
    created_at: str | None = None
