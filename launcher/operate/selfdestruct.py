"""``launcher doctor --prove-self-destruct``: prove the instance's key can delete a volume.

A read (:func:`launcher.provision.preflight.prove_instance_key`) shows the key is accepted;
it cannot show that the key may create and delete. This probe does, with the key the
instance will hold (``VULTR_SELF_DESTRUCT_KEY``, else ``VULTR_KEY``): it creates the smallest
block volume (40 GB, the smallest size both block types take) of the cheapest type the region
offers, labelled as a pseudo-run's volume (:func:`launcher.naming.probe_volume_label`), reads
it until active, deletes it and reads until it is gone. On any failure the launcher's own key
(``VULTR_KEY``) deletes what the probe made, and the result names anything still left with
the ``curl`` command that removes it. What no probe from here proves: that the key's API
allowlist admits the instance's own, future address.
"""

from __future__ import annotations

from dataclasses import dataclass

from launcher.config import Account
from launcher.errors import ConfigError, LauncherError, NotFoundError
from launcher.naming import probe_volume_label
from launcher.providers.offers import HOURS_PER_MONTH
from launcher.provision.model import VOLUME_USD_PER_GB_MONTH
from launcher.provision.preflight import instance_key_variable
from launcher.vultr import BlockSpec, VultrClient, wait_for

PROBE_SIZE_GB = 40
ACTIVE_S = 120.0
GONE_S = 60.0
NOT_PROVED = ("not proved from here: that the key's API allowlist admits the instance's own "
              "address (only 'allow all' does, for every run)")
FIX_HINT = ("a run's instance would fail the same way and leave its volume and itself "
            "billing: give the self-destruct user the provisioning ACL and access control "
            "'allow all' (docs/security.md)")


@dataclass(frozen=True)
class ProbeTarget:
    """Where the probe volume goes, of which type, under which label."""

    region: str
    block_type: str
    label: str

    @property
    def usd_per_hour(self) -> float:
        return PROBE_SIZE_GB * VOLUME_USD_PER_GB_MONTH[self.block_type] / HOURS_PER_MONTH

    def describe(self) -> str:
        return f"{PROBE_SIZE_GB} GB {self.block_type} in {self.region}, label {self.label}"

    def cost(self) -> str:
        usd = self.usd_per_hour
        under = ", under one cent" if usd < 0.01 else ""
        return (f"cost: {PROBE_SIZE_GB} GB × ${VOLUME_USD_PER_GB_MONTH[self.block_type]}/"
                f"GB-month ({self.block_type}) for at most 1 billed hour ≈ ${usd:.4f}{under}")


@dataclass(frozen=True)
class ProbeResult:
    """The probe's verdict; ``left`` holds the ids of volumes still there."""

    ok: bool
    detail: str
    hint: str = ""
    left: tuple[str, ...] = ()


def cheapest_block_type(options: tuple[str, ...]) -> str | None:
    """The cheapest block type a region's options offer, or None."""
    for kind in sorted(VOLUME_USD_PER_GB_MONTH, key=VOLUME_USD_PER_GB_MONTH.__getitem__):
        if f"block_storage_{kind}" in options:
            return kind
    return None


def choose_target(client: VultrClient, regions: tuple[str, ...], wanted: str | None,
                  now: float) -> ProbeTarget:
    """``wanted`` (``--region``), else the first of ``regions`` with block storage."""
    offered = {r.id: r for r in client.list_regions()}
    if wanted and wanted not in offered:
        raise ConfigError(f"--region {wanted}: Vultr has no such region")
    for region_id in (wanted,) if wanted else regions:
        region = offered.get(region_id)
        kind = cheapest_block_type(region.options) if region else None
        if kind:
            return ProbeTarget(region_id, kind, probe_volume_label(now))
    where = wanted or ", ".join(regions)
    raise ConfigError(f"no block storage in {where}: pass --region with a region that has "
                      "it (e.g. ewr)")


def prove_self_destruct(account: Account, client: VultrClient, target: ProbeTarget
                        ) -> ProbeResult:
    """Create, read, delete and miss the probe volume with the instance's key; clean up
    with ``client`` (the launcher's key) when any step fails."""
    variable = instance_key_variable(account)
    with client.with_key(account.instance_vultr_key, variable) as keyed:
        try:
            block_id = keyed.create_block(BlockSpec(target.region, PROBE_SIZE_GB,
                                                    target.label, target.block_type)).id
        except LauncherError as exc:
            return _failed(client, account, target, None,
                           f"{variable} could not create the probe volume ({_one_line(exc)})")
        step = "read it until active"
        try:
            keyed.wait_block_active(block_id, deadline_s=ACTIVE_S)
            step = "delete it"
            keyed.delete_block(block_id)
            step = "see it gone"
            wait_gone(keyed, block_id, GONE_S)
        except LauncherError as exc:
            return _failed(client, account, target, block_id,
                           f"{variable} created volume {block_id} but could not {step} "
                           f"({_one_line(exc)})")
    return ProbeResult(True, f"{variable} created volume {block_id} ({target.describe()}), "
                       f"read it, deleted it and saw it gone; {target.cost()}; {NOT_PROVED}")


def wait_gone(client: VultrClient, block_id: str, deadline_s: float) -> None:
    """Read ``block_id`` until Vultr answers it is not found."""
    wait_for(lambda: _exists(client, block_id), lambda exists: not exists,
             deadline_s=deadline_s, what=f"volume {block_id} to be gone", poll=client.poll,
             sleep=client.http.sleep, clock=client.http.clock)


def _exists(client: VultrClient, block_id: str) -> bool:
    try:
        client.get_block(block_id)
    except NotFoundError:
        return False
    return True


def _failed(client: VultrClient, account: Account, target: ProbeTarget,
            block_id: str | None, what: str) -> ProbeResult:
    left, report = clean_up(client, account.vultr_api_url, target, block_id)
    return ProbeResult(False, f"{what}; {report}", FIX_HINT, left)


def clean_up(client: VultrClient, api_url: str, target: ProbeTarget,
             block_id: str | None) -> tuple[tuple[str, ...], str]:
    """Delete the probe's volume(s) with the launcher's key: (ids left, one-line report)."""
    ids = {block_id} if block_id else set()
    try:
        ids |= {b.id for b in client.list_blocks(label=target.label)}
    except LauncherError as exc:
        return tuple(sorted(ids)), (f"VULTR_KEY could not look for volumes labelled "
                                    f"{target.label} ({_one_line(exc)}): look for them in "
                                    f"the portal and delete them")
    if not ids:
        return (), "nothing was created, nothing is left"
    left = tuple(i for i in sorted(ids) if not _delete(client, i))
    deleted = sorted(ids - set(left))
    report = [f"deleted volume {', '.join(deleted)} with VULTR_KEY instead"] if deleted else []
    report += [f"LEFT: volume {i} ({target.describe()}) bills until deleted: "
               f"{curl_delete(api_url, i)}" for i in left]
    return left, "; ".join(report) or "nothing is left"


def _delete(client: VultrClient, block_id: str) -> bool:
    try:
        client.delete_block(block_id)
        wait_gone(client, block_id, GONE_S)
    except LauncherError:
        return False
    return True


def curl_delete(api_url: str, block_id: str) -> str:
    return (f'curl -X DELETE -H "Authorization: Bearer $VULTR_KEY" '
            f"{api_url.rstrip('/')}/blocks/{block_id}")


def _one_line(exc: LauncherError) -> str:
    return exc.message.replace("\n", " ")
