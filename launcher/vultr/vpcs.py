"""The VPC calls of :class:`~launcher.vultr.client.VultrClient` (a mixin over its request path).

Only Vultr's VPC (``/vpcs``, ``attach_vpc`` on instance create) is used. VPC 2.0 (``/vpc2``,
``attach_vpc2``) is not: it is deprecated and being removed (vultr/govultr #364 and #366, which
marks its instance and bare-metal fields deprecated; vultr/terraform-provider-vultr #570, a
deprecation notice, and #760, which removes VPC2 as "no longer supported by Vultr"), and the
Vultr OpenAPI marks ``attach_vpc2`` deprecated: "Use `attach_vpc` instead".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from launcher.errors import ConfigError

from .jsonhttp import seg
from .mutations import create_resolved, delete_idempotent, only
from .records import InstanceVpc, Vpc

if TYPE_CHECKING:
    from .transport import VultrHttp


class VpcCalls:
    """``/vpcs`` and ``/instances/{id}/vpcs``; mixed into the client, which provides ``http``
    and ``_get``."""

    http: VultrHttp
    _get: Callable[..., dict]

    def list_vpcs(self) -> tuple[Vpc, ...]:
        return tuple(Vpc.from_api(d) for d in self.http.paginate("/vpcs", "vpcs"))

    def get_vpc(self, vpc_id: str) -> Vpc:
        return Vpc.from_api(self._get(f"/vpcs/{seg(vpc_id)}", "vpc"))

    def create_vpc(self, region: str, description: str, v4_subnet: str = "",
                   v4_subnet_mask: int = 0) -> Vpc:
        """Create a VPC (201); never two, even after a timeout: an ambiguous create is resolved
        by listing VPCs with this description in this region, so descriptions should be unique
        per region. Without a subnet Vultr chooses one; the Vultr OpenAPI requires both
        ``v4_subnet`` and ``v4_subnet_mask`` or neither."""
        if not region:
            raise ConfigError("a VPC needs a region")
        if bool(v4_subnet) != bool(v4_subnet_mask):
            raise ConfigError("give both v4_subnet and v4_subnet_mask, or neither")
        body: dict[str, Any] = {"region": region, "description": description}
        if v4_subnet:
            body |= {"v4_subnet": v4_subnet, "v4_subnet_mask": v4_subnet_mask}
        what = f"VPC described {description!r} in {region}"

        def lookup() -> dict | None:
            found = [d for d in self.http.paginate("/vpcs", "vpcs")
                     if d.get("description") == description and d.get("region") == region]
            return only(found, what)

        data = create_resolved(self.http, "/vpcs", body, key="vpc", lookup=lookup, what=what,
                               expect=(201,))
        return Vpc.from_api(data)

    def delete_vpc(self, vpc_id: str) -> bool:
        """Delete; True if it existed, False if it was already gone (which is success). Vultr
        refuses while instances are attached ("... attached to this VPC network", which
        vultr/terraform-provider-vultr vultr/resource_vultr_vpc.go retries): that raises."""
        return delete_idempotent(self.http, f"/vpcs/{seg(vpc_id)}")

    def instance_vpcs(self, instance_id: str) -> tuple[InstanceVpc, ...]:
        """The VPCs attached to an instance, each with the instance's MAC and address there."""
        items = self.http.paginate(f"/instances/{seg(instance_id)}/vpcs", "vpcs")
        return tuple(InstanceVpc.from_api(d) for d in items)
