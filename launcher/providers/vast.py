"""Vast.ai behind the provider contract (``launcher.providers.base``), over ``VastClient``.

What differs from Vultr, and how the contract's promises are kept anyway:

- **No tags.** The label is the only marker Vast keeps, so the run's tags travel in it:
  ``<label> launcher run:<id> stage:<s> expires:<epoch> launch:<nonce>`` (at most 256
  characters, the create's limit). ``find_run`` and ``list_runs`` read every instance of the
  account and keep those whose label parses to the launcher's tag (promise 3).
- **No volumes.** The container's own disk is the cache (``Capabilities.volumes`` is
  False): reads answer "none" and a volume create is refused (promise 7).
- **No account images.** An instance boots a public Docker image named in the request;
  there is nothing of the account's to list.
- **Offers are machines.** One offer is one machine's GPUs at one price; every offer the
  search returns is rentable now, so stock is "in stock". The region of an offer is the
  country of its ``geolocation`` ("Texas, US" -> "US"); a stage's Vultr region ids are read
  as the country they are in (:data:`VULTR_REGION_COUNTRY`), so "sjc, sea, lax" means the US.
- **Deleting is destroying.** ``delete_instance`` destroys the instance (``DELETE``); it
  never stops one, which keeps billing its disk.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from launcher.errors import ConfigError, NotFoundError
from launcher.naming import LAUNCHER_TAG, parse_tags
from launcher.providers.base import (
    Capabilities,
    ClientBacked,
    ImageRef,
    InstanceRef,
    InstanceRequest,
    RunResources,
    SshKeyRef,
    VolumeRef,
    VolumeRequest,
)
from launcher.providers.offers import Offer, OfferTable, Reason, Requirement, Verdict, gpu_reasons
from launcher.sshkeys import body_of
from launcher.vast import Instance, InstanceSpec, OfferQuery, VastClient
from launcher.vast import Offer as VastOffer
from launcher.vultr.records import card_model

# The container's sshd (an SSH runtype) has host keys in its /etc/ssh, which the runner
# publishes to the bucket as on Vultr; ``launcher ssh`` pins them to where the instance's
# SSH answers (:func:`ssh_endpoint`).
CAPABILITIES = Capabilities(volumes=False, tags=False, images="docker", boot="onstart",
                            ssh_host_keys=True, machine_logs=True)
# Direct SSH: port 22 of the container is published on the machine's public address, so
# ssh talks to the container's own sshd, whose keys are the pinned ones (docs/vast.md).
# vast-ai/docs api-reference/creating-instances-with-api.mdx: "ssh_direct | 22 (SSH) |
# Direct SSH connection. Port 22 is provisioned on the instance"; create_instance.yaml's enum.
RUNTYPE = "ssh_direct"
SSH_PORT = "22/tcp"
MB_PER_GB = 1024  # gpu_ram is MB per GPU: an 80 GB card lists 81920
DEFAULT_MIN_RELIABILITY = 0.95  # the training repository's own Vast search floor
SEARCH_LIMIT = 200
NO_VOLUMES = ("Vast.ai has no block volumes: the container's own disk is the run's cache "
              "(volume settings do not apply with --provider vast)")
# Vultr region ids a stage names, read as the country Vast's geolocation ends with.
VULTR_REGION_COUNTRY = {
    "sjc": "US", "sea": "US", "lax": "US", "ewr": "US", "ord": "US", "dfw": "US",
    "atl": "US", "mia": "US", "hnl": "US", "yto": "CA", "mex": "MX", "sao": "BR",
    "scl": "CL", "ams": "NL", "fra": "DE", "cdg": "FR", "lhr": "GB", "man": "GB",
    "mad": "ES", "waw": "PL", "sto": "SE", "tlv": "IL", "nrt": "JP", "itm": "JP",
    "icn": "KR", "sgp": "SG", "bom": "IN", "del": "IN", "blr": "IN", "syd": "AU",
    "mel": "AU", "jnb": "ZA",
}


def countries(regions: tuple[str, ...]) -> tuple[str, ...]:
    """The stage's regions as country codes, in priority order, each once. A two-letter
    code is taken as it is; a Vultr region id by its country; anything else is refused."""
    found: list[str] = []
    for region in regions:
        code = region.upper() if len(region) == 2 and region.isalpha() else \
            VULTR_REGION_COUNTRY.get(region)
        if code is None:
            raise ConfigError(f"region {region!r}: Vast.ai places offers by country; give a "
                              "two-letter country code (US, CA, DE…) or a Vultr region id")
        if code not in found:
            found.append(code)
    return tuple(found)


def country_of(geolocation: str | None) -> str:
    """"Texas, US" -> "US"; "" when Vast gives none."""
    return (geolocation or "").rsplit(",", 1)[-1].strip()


def vast_label(label: str, tags: tuple[str, ...]) -> str:
    """The instance's label with the run's tags in it (what Vultr keeps as tags)."""
    return " ".join((label, *tags))


def tags_of(label: str | None) -> tuple[str, ...]:
    """The tags a label carries: its words after the first when they are the launcher's tag
    followed by ``name:value`` words only (a label written by someone else carries none)."""
    words = (label or "").split()
    tags = words[1:]
    if tags[:1] != [LAUNCHER_TAG] or not all(":" in w for w in tags[1:]):
        return ()
    return tuple(tags)


def ssh_endpoint(instance: Instance) -> tuple[str, int]:
    """Where the container's SSH answers, as vast-cli's ``_ssh_url`` finds it
    (vastai/cli/commands/misc.py): the public address at the host port mapped to its port
    22 when the instance lists one, else Vast's SSH proxy, ``ssh_host``:``ssh_port`` (+1
    for a Jupyter runtype). ``("", 22)`` when neither is known yet."""
    direct = instance.host_port(SSH_PORT)
    if direct is not None and instance.public_ipaddr:
        return instance.public_ipaddr, direct
    if instance.ssh_host and instance.ssh_port:
        jupyter = "jupyter" in (instance.image_runtype or "")
        return instance.ssh_host, instance.ssh_port + 1 if jupyter else instance.ssh_port
    return "", 22


def instance_ref(instance: Instance) -> InstanceRef:
    running = instance.actual_status == "running"
    ssh_host, ssh_port = ssh_endpoint(instance)
    return InstanceRef(
        id=str(instance.id), label=instance.label or "", region=country_of(instance.geolocation),
        plan=f"{instance.num_gpus}x {instance.gpu_name or '?'}", tags=tags_of(instance.label),
        state=instance.actual_status or instance.cur_state or "unknown", ready=running,
        running=running, address=instance.public_ipaddr or "",
        created_epoch=instance.start_date, usd_per_hour=instance.dph_total,
        ssh_host=ssh_host, ssh_port=ssh_port)


def offer_of(offer: VastOffer) -> Offer:
    per_gpu = round(offer.gpu_ram / MB_PER_GB, 1) if offer.gpu_ram else None
    model = card_model(offer.gpu_name) or offer.gpu_name.upper()
    return Offer(
        kind="container", plan_id=str(offer.id), region=country_of(offer.geolocation),
        gpu_type=offer.gpu_name, gpu_model=model, gpu_count=offer.num_gpus,
        vram_per_gpu_gb=per_gpu, total_vram_gb=per_gpu * offer.num_gpus if per_gpu else None,
        fractional=False, whole_node=offer.num_gpus > 1,
        vcpu=int(offer.cpu_cores_effective or 0), ram_mb=offer.cpu_ram or 0,
        price_per_hour=round(offer.dph_total or 0.0, 4), price_source="dph_total",
        in_stock=not offer.rented, offered=True)


def judge(offer: Offer, vast: VastOffer, req: Requirement) -> tuple[Reason, ...]:
    """Every reason ``offer`` does not meet ``req`` (empty: eligible)."""
    reasons = gpu_reasons(offer, req)
    if req.max_price_per_hour is not None and offer.price_per_hour > req.max_price_per_hour:
        reasons.append(Reason("over_price", f"${offer.price_per_hour:.2f}/h is over the "
                                            f"${req.max_price_per_hour:.2f}/h maximum"))
    floor = req.min_reliability if req.min_reliability is not None \
        else DEFAULT_MIN_RELIABILITY
    if (vast.reliability or 0.0) < floor:
        reasons.append(Reason("unreliable", f"reliability {vast.reliability or 0:.3f}, under "
                                            f"the {floor:g} floor"))
    if req.min_disk_gb and (vast.disk_space or 0.0) < req.min_disk_gb:
        reasons.append(Reason("disk_too_small", f"{vast.disk_space or 0:g} GB of disk, under "
                                                f"the {req.min_disk_gb:g} GB the run needs"))
    if req.min_inet_down_mbps and (vast.inet_down or 0.0) < req.min_inet_down_mbps:
        reasons.append(Reason("slow_download", f"{vast.inet_down or 0:g} Mb/s down, under "
                                               f"{req.min_inet_down_mbps:g}"))
    if offer.region not in req.regions:
        reasons.append(Reason("not_offered", f"in {offer.region or 'an unknown country'}, "
                                             "not in a requested one"))
    return tuple(reasons)


def query_for(req: Requirement, wanted: tuple[str, ...]) -> OfferQuery:
    """What the server filters (GPU count and VRAM floor, countries); the rest is judged
    here, so ``offers --all`` can say why an offer was left out."""
    filters = {"num_gpus": {"gte": req.gpu_count},
               "gpu_ram": {"gte": int(req.min_vram_gb * MB_PER_GB)},
               "geolocation": {"in": list(wanted)}}
    return OfferQuery(filters=filters, order=(("dph_total", "asc"),), limit=SEARCH_LIMIT,
                      allocated_storage=float(req.min_disk_gb or 16))


class VastProvider(ClientBacked):
    """The Vast.ai provider. ``client`` does the HTTP; this class keeps the contract."""

    name = "vast"
    title = "Vast.ai"
    capabilities = CAPABILITIES

    def __init__(self, client: VastClient) -> None:
        super().__init__(client)
        self.client: VastClient = client

    # -- catalogue ------------------------------------------------------------------------

    def rank_offers(self, requirement: Requirement, *, list_excluded: bool = True
                    ) -> OfferTable:
        """One search (GPU count, VRAM and countries filtered by Vast), each offer judged
        here; ordered by price then id, as the table's other rows are."""
        wanted = requirement.countries or countries(requirement.regions)
        requirement = replace(requirement, regions=wanted)
        found = self.client.search_offers(query_for(requirement, wanted))
        verdicts = []
        for vast in sorted(found, key=lambda o: (o.dph_total or 0.0, o.id)):
            offer = offer_of(vast)
            verdicts.append(Verdict(offer, judge(offer, vast, requirement)))
        return OfferTable(requirement, tuple(verdicts))

    def plan_prices(self, plan_ids: set[str]) -> dict[str, float | None]:
        return {}  # an instance's own record carries its price (dph_total)

    def list_images(self) -> tuple[ImageRef, ...]:
        return ()

    def get_image(self, image_id: str) -> ImageRef:
        raise ConfigError(f"image {image_id!r}: Vast.ai boots public Docker images, not "
                          "snapshots of an account; set the stage's Docker image instead")

    def list_ssh_keys(self) -> tuple[SshKeyRef, ...]:
        return tuple(SshKeyRef(str(k.id), "", k.public_key) for k in self.client.list_ssh_keys())

    def delete_commands(self, kind: str, resource_id: str,
                        attached_to: str | None = None) -> tuple[str, ...]:
        """An instance's destroy (never a stop: a stopped instance still bills its disk)."""
        if kind != "instance":
            return ()
        return (f'curl -X DELETE -H "Authorization: Bearer $VAST_API_KEY" '
                f"{self.client.http.base_url}/instances/{resource_id}/",)

    def register_ssh_key(self, name: str, public_key: str) -> str:
        wanted = body_of(public_key)
        for key in self.list_ssh_keys():
            if body_of(key.public_key) == wanted:
                return key.id
        return str(self.client.create_ssh_key(public_key).id)

    # -- runs -----------------------------------------------------------------------------

    def _launcher_instances(self) -> list[InstanceRef]:
        return [ref for ref in map(instance_ref, self.client.list_instances()) if ref.tags]

    def find_run(self, run_id: str) -> RunResources:
        mine = [i for i in self._launcher_instances() if parse_tags(i.tags).run_id == run_id]
        return RunResources(run_id, tuple(mine))

    def list_runs(self) -> list[RunResources]:
        runs: dict[str, list[InstanceRef]] = defaultdict(list)
        for ref in self._launcher_instances():
            run_id = parse_tags(ref.tags).run_id
            if run_id:
                runs[run_id].append(ref)
        return [RunResources(r, tuple(runs[r])) for r in sorted(runs)]

    # -- instances ------------------------------------------------------------------------

    def create_instance(self, request: InstanceRequest) -> InstanceRef:
        """Rent offer ``request.plan`` with the Docker image ``request.image_id``; the
        onstart script and the environment are the machine's bootstrap."""
        spec = InstanceSpec(image=request.image_id, label=vast_label(request.label,
                                                                     request.tags),
                            disk_gb=request.disk_gb, env=dict(request.env),
                            onstart=request.onstart, runtype=RUNTYPE)
        created = self.client.create_instance(int(request.plan), spec)
        return instance_ref(self.client.get_instance(created.id))

    def wait_instance_ready(self, instance_id: str, deadline_s: float) -> InstanceRef:
        return instance_ref(self.client.wait_instance_running(int(instance_id),
                                                              deadline_s=deadline_s))

    def delete_instance(self, instance_id: str) -> bool:
        return self.client.destroy_instance(int(instance_id))

    # -- volumes: none --------------------------------------------------------------------

    def find_volumes(self, label: str | None = None) -> tuple[VolumeRef, ...]:
        return ()

    def get_volume(self, volume_id: str) -> VolumeRef:
        raise NotFoundError(f"no volume {volume_id}: {NO_VOLUMES}")

    def create_volume(self, request: VolumeRequest) -> VolumeRef:
        raise ConfigError(NO_VOLUMES)

    def wait_volume_ready(self, volume_id: str, deadline_s: float) -> VolumeRef:
        raise ConfigError(NO_VOLUMES)

    def attach_volume(self, volume_id: str, instance_id: str, deadline_s: float) -> VolumeRef:
        raise ConfigError(NO_VOLUMES)

    def delete_volume(self, volume_id: str) -> bool:
        return False  # nothing of the kind can exist

    def machine_log(self, instance_id: str, tail: int | None = None) -> str:
        """The container's log (its onstart's output first) through ``request_logs``."""
        return self.client.request_logs(int(instance_id), tail)
