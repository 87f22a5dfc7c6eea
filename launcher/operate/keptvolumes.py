"""Volumes kept on purpose: the reusable ones (``launcher-cache-<name>``), which belong to no
run, so neither ``status``'s runs table nor ``gc``'s garbage shows them, yet each bills every
month until deleted by hand. ``status`` and ``gc`` list them with this module's table."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from launcher.naming import REUSABLE_VOLUME_PREFIX
from launcher.providers import Provider
from launcher.providers.vultr import curl_commands
from launcher.provision.model import volume_usd_per_month
from launcher.tables import Col, FitTable
from launcher.terminal import escape


@dataclass(frozen=True)
class KeptVolume:
    """A reusable volume as Vultr shows it; ``usd_per_month`` is the list price estimate."""

    id: str
    label: str
    region: str
    size_gb: int
    kind: str
    attached_to: str | None
    usd_per_month: float

    def delete_commands(self, api_url: str) -> tuple[str, ...]:
        """The commands that delete it by hand (detaching first when it is attached)."""
        return curl_commands(api_url, "volume", self.id, self.attached_to)

    def as_dict(self, api_url: str) -> dict:
        return {**asdict(self), "usd_per_month": round(self.usd_per_month, 2),
                "delete_commands": list(self.delete_commands(api_url))}


def kept_volumes(provider: Provider) -> list[KeptVolume]:
    """Every reusable volume of the account, by label then region (a failed read raises;
    none where the cloud has no volumes)."""
    if not provider.capabilities.volumes:
        return []
    found = [KeptVolume(v.id, v.label, v.region, v.size_gb, v.kind, v.attached_to,
                        volume_usd_per_month(v.size_gb, v.kind))
             for v in provider.find_volumes() if v.label.startswith(REUSABLE_VOLUME_PREFIX)]
    return sorted(found, key=lambda v: (v.label, v.region, v.id))


def kept_table(volumes: list[KeptVolume]) -> FitTable:
    """One row per volume (print it with :func:`launcher.tables.print_table`)."""
    total = sum(v.usd_per_month for v in volumes)
    table = FitTable(f"Kept volumes (reusable, never deleted by gc): ~${total:,.2f}/month",
                     [Col("label"), Col("id"), Col("region"), Col("size", "right"),
                      Col("attached to"), Col("$/month", "right")])
    for v in volumes:
        table.add_row(escape(v.label), escape(v.id), escape(v.region), f"{v.size_gb} GB",
                      escape(v.attached_to or "-"), f"{v.usd_per_month:,.2f}")
    return table


def how_to_delete(api_url: str) -> str:
    """The line under the table: how to delete one (there is no launcher command for it)."""
    base = api_url.rstrip("/")
    return ("They are kept on purpose (the next run with --reuse-volume NAME finds its data "
            "there); to delete one, detach it if attached, then: curl -X DELETE -H "
            f'"Authorization: Bearer $VULTR_KEY" {base}/blocks/ID')
