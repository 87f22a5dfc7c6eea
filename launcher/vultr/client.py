"""One method per Vultr endpoint the launcher uses: wire only, no policy.

Methods return the typed records of :mod:`launcher.vultr.records` (lists as tuples, fully
read, so a failed page raises here instead of half-way through a caller's loop). Creates
resolve ambiguous failures by themselves (see :mod:`launcher.vultr.mutations`): an instance is
looked up by label, region, plan and tags, a block by label, region and size, an SSH key by
name and key, a VPC by description and region. Labels should therefore be unique per run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from launcher.errors import ApiError, ConfigError, InvalidRequestError
from launcher.runner.retry import NOT_ATTACHED, says
from launcher.secrets import Secret

from .config import KEY_VARIABLE, VultrSettings
from .jsonhttp import seg as _seg
from .mutations import create_resolved, delete_idempotent, post_confirmed
from .mutations import only as _only
from .records import (
    Account,
    Availability,
    Block,
    Instance,
    MetalPlan,
    Plan,
    Region,
    Snapshot,
    SshKey,
    User,
)
from .specs import BlockSpec, InstanceSpec
from .transport import VultrHttp
from .vpcs import VpcCalls
from .waits import PollPolicy, wait_for


def _key_body(public_key: str) -> tuple[str, ...]:
    """An OpenSSH public key without its comment: ``(type, base64)``."""
    return tuple(public_key.split()[:2])


class VultrClient(VpcCalls):
    """Typed calls to the Vultr v2 API over one :class:`VultrHttp` (VPCs: :class:`VpcCalls`)."""

    def __init__(self, http: VultrHttp, *, poll: PollPolicy | None = None) -> None:
        self.http = http
        self.poll = poll or PollPolicy()

    @classmethod
    def from_settings(cls, settings: VultrSettings, **http_options: Any) -> VultrClient:
        http = VultrHttp(
            settings.api_key,
            base_url=settings.api_url,
            timeouts=settings.timeouts,
            key_variable=KEY_VARIABLE,
            **http_options,
        )
        return cls(http)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **http_options: Any) -> VultrClient:
        """A client configured from ``VULTR_*`` variables (see :mod:`launcher.vultr.config`)."""
        return cls.from_settings(VultrSettings.from_env(environ), **http_options)

    def __repr__(self) -> str:
        return f"VultrClient({self.http!r})"

    def close(self) -> None:
        self.http.close()

    def with_key(self, api_key: Secret | None, key_variable: str) -> VultrClient:
        """The same client (URL, timeouts, retries, polling) with another key; close it."""
        return VultrClient(self.http.with_key(api_key, key_variable), poll=self.poll)

    def __enter__(self) -> VultrClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _get(self, path: str, key: str, **kwargs: Any) -> dict:
        data = self.http.request("GET", path, **kwargs) or {}
        if not isinstance(data.get(key), dict):
            raise ApiError(f"response has no {key!r} object", method="GET", path=path)
        return data[key]

    # -- catalogue (public endpoints: no key sent) --------------------------------------------

    def list_plans(self, type: str = "vcg") -> tuple[Plan, ...]:
        """Cloud plans of one type; GPU plans are ``vcg`` (there is no ``type=gpu``)."""
        items = self.http.paginate("/plans", "plans", {"type": type}, auth=False)
        return tuple(Plan.from_api(d) for d in items)

    def list_metal_plans(self) -> tuple[MetalPlan, ...]:
        items = self.http.paginate("/plans-metal", "plans_metal", auth=False)
        return tuple(MetalPlan.from_api(d) for d in items)

    def list_regions(self) -> tuple[Region, ...]:
        return tuple(
            Region.from_api(d) for d in self.http.paginate("/regions", "regions", auth=False)
        )

    def region_availability(self, region_id: str, type: str = "vcg") -> Availability:
        """The plans of ``type`` in stock in ``region_id`` right now. Public, but the key is
        sent when there is one: an unauthenticated call has been reported to answer an empty
        list, which reads as "sold out" (docs/emulator.md)."""
        data = (
            self.http.request(
                "GET",
                f"/regions/{_seg(region_id)}/availability",
                params={"type": type},
                auth=self.http.has_key,
            )
            or {}
        )
        return Availability.from_api(region_id, data)

    # -- instances ------------------------------------------------------------------------------

    def create_instance(self, spec: InstanceSpec) -> Instance:
        """Create an instance (202, status ``pending``); never two, even after a timeout."""

        def lookup() -> dict | None:
            found = [
                d
                for d in self.http.paginate("/instances", "instances", {"label": spec.label})
                if d.get("label") == spec.label
                and d.get("region") == spec.region
                and d.get("plan") == spec.plan
                and set(spec.tags) <= set(d.get("tags") or ())
            ]
            return _only(found, f"instance labelled {spec.label!r}")

        data = create_resolved(
            self.http,
            "/instances",
            spec.body(),
            key="instance",
            lookup=lookup,
            what=f"instance labelled {spec.label!r}",
            expect=(202,),
        )
        return Instance.from_api(data)

    def get_instance(self, instance_id: str) -> Instance:
        return Instance.from_api(self._get(f"/instances/{_seg(instance_id)}", "instance"))

    def list_instances(
        self, label: str | None = None, tag: str | None = None, region: str | None = None
    ) -> tuple[Instance, ...]:
        """Instances with that label, tag and region. The server filters (``tag`` is marked
        deprecated in Vultr's newest document, still served) and the answer is checked again
        here: a server that ignored a filter must not hand back someone else's instance."""
        params = {k: v for k, v in (("label", label), ("tag", tag), ("region", region)) if v}
        pages = self.http.paginate("/instances", "instances", params)
        found = (Instance.from_api(d) for d in pages)
        return tuple(
            i
            for i in found
            if (not label or i.label == label)
            and (not tag or tag in i.tags)
            and (not region or i.region == region)
        )

    def delete_instance(self, instance_id: str) -> bool:
        """Delete; True if it existed, False if it was already gone (which is success)."""
        return delete_idempotent(self.http, f"/instances/{_seg(instance_id)}")

    # -- block storage -----------------------------------------------------------------------

    def create_block(self, spec: BlockSpec) -> Block:
        """Create a volume (202, status ``pending``); never two, even after a timeout."""
        what = f"block labelled {spec.label!r}"

        def lookup() -> dict | None:
            found = [
                d
                for d in self.http.paginate("/blocks", "blocks")
                if d.get("label") == spec.label
                and d.get("region") == spec.region
                and d.get("size_gb") == spec.size_gb
            ]
            return _only(found, what)

        data = create_resolved(
            self.http, "/blocks", spec.body(), key="block", lookup=lookup, what=what, expect=(202,)
        )
        return Block.from_api(data)

    def get_block(self, block_id: str) -> Block:
        return Block.from_api(self._get(f"/blocks/{_seg(block_id)}", "block"))

    def list_blocks(self, label: str | None = None) -> tuple[Block, ...]:
        """Volumes; ``label`` is matched exactly here, as Vultr has no label filter for blocks."""
        blocks = (Block.from_api(d) for d in self.http.paginate("/blocks", "blocks"))
        return tuple(b for b in blocks if label is None or b.label == label)

    def attach_block(self, block_id: str, instance_id: str, live: bool = True) -> None:
        """Attach a volume. ``live=False`` REBOOTS the instance to do it. A busy instance
        answers ``ConflictError`` ("Server is currently locked"): wait and call again."""
        post_confirmed(
            self.http,
            f"/blocks/{_seg(block_id)}/attach",
            {"instance_id": instance_id, "live": live},
            confirm=lambda: self.get_block(block_id).attached_to == instance_id,
            what=f"attaching block {block_id} to instance {instance_id}",
        )

    def detach_block(self, block_id: str, live: bool = True) -> None:
        """Detach a volume; ``live=False`` reboots the instance it was attached to. A volume
        that is not attached ("Block storage volume is not currently attached to a server")
        is already detached."""
        try:
            post_confirmed(
                self.http,
                f"/blocks/{_seg(block_id)}/detach",
                {"live": live},
                confirm=lambda: self.get_block(block_id).attached_to is None,
                what=f"detaching block {block_id}",
            )
        except InvalidRequestError as exc:
            if not says(str(exc), NOT_ATTACHED):
                raise

    def delete_block(self, block_id: str) -> bool:
        """Delete; True if it existed, False if it was already gone (which is success)."""
        return delete_idempotent(self.http, f"/blocks/{_seg(block_id)}")

    # -- snapshots -----------------------------------------------------------------------------

    def list_snapshots(self, description: str | None = None) -> tuple[Snapshot, ...]:
        """Snapshots; ``description`` is filtered by the server and then matched exactly."""
        params = {"description": description} if description else {}
        snaps = (
            Snapshot.from_api(d) for d in self.http.paginate("/snapshots", "snapshots", params)
        )
        return tuple(s for s in snaps if description is None or s.description == description)

    def get_snapshot(self, snapshot_id: str) -> Snapshot:
        return Snapshot.from_api(self._get(f"/snapshots/{_seg(snapshot_id)}", "snapshot"))

    # -- account ---------------------------------------------------------------------------------

    def list_ssh_keys(self) -> tuple[SshKey, ...]:
        return tuple(SshKey.from_api(d) for d in self.http.paginate("/ssh-keys", "ssh_keys"))

    def create_ssh_key(self, name: str, public_key: str) -> SshKey:
        """Register an SSH public key (201); never two, even after a timeout: an ambiguous
        create is resolved by looking for a key with this name and this key body."""
        if not name or not public_key.strip():
            raise ConfigError("an SSH key needs a name and a public key")
        body = _key_body(public_key)
        what = f"SSH key named {name!r}"

        def lookup() -> dict | None:
            found = [
                d
                for d in self.http.paginate("/ssh-keys", "ssh_keys")
                if d.get("name") == name and _key_body(str(d.get("ssh_key") or "")) == body
            ]
            return _only(found, what)

        data = create_resolved(
            self.http,
            "/ssh-keys",
            {"name": name, "ssh_key": public_key.strip()},
            key="ssh_key",
            lookup=lookup,
            what=what,
            expect=(201,),
        )
        return SshKey.from_api(data)

    def get_account(self) -> Account:
        return Account.from_api(self._get("/account", "account"))

    def list_users(self) -> tuple[User, ...]:
        return tuple(User.from_api(d) for d in self.http.paginate("/users", "users"))

    # -- waits -----------------------------------------------------------------------------------

    def _wait(
        self,
        fetch: Callable[[], Any],
        ready: Callable[[Any], bool],
        deadline_s: float,
        what: str,
        failed: Callable[[Any], str | None] | None = None,
    ) -> Any:
        return wait_for(
            fetch,
            ready,
            deadline_s=deadline_s,
            what=what,
            failed=failed,
            poll=self.poll,
            sleep=self.http.sleep,
            clock=self.http.clock,
        )

    def wait_instance_ready(self, instance_id: str, *, deadline_s: float = 900) -> Instance:
        """Until active + running + ok; a suspended instance fails the wait."""
        return self._wait(
            lambda: self.get_instance(instance_id),
            lambda i: i.is_ready,
            deadline_s,
            f"instance {instance_id}",
            failed=_deploy_failed,
        )

    def wait_block_active(self, block_id: str, *, deadline_s: float = 300) -> Block:
        return self._wait(
            lambda: self.get_block(block_id),
            lambda b: b.status == "active",
            deadline_s,
            f"block {block_id}",
        )


def _deploy_failed(instance: Instance) -> str | None:
    """Why waiting for ``instance`` is pointless: Vultr reports a deploy that failed as
    ``status: failed`` (dstack's Vultr backend treats it so), a held one as suspended."""
    if instance.status in ("failed", "suspended"):
        return f"the instance is {instance.status}"
    return None
