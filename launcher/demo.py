"""The offline demo: one launch-and-teardown session against an in-process Vultr emulator.

It walks the path a real run takes through the API (GPU plans with live stock in priority
order, the baked snapshot, a 1 TB NVMe volume, an instance, a live attach) and then removes
everything it created, on success and on every failure path. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

from launcher.config import ImageConfig
from launcher.emulator import Emulator, Timing
from launcher.errors import LauncherError
from launcher.offers import DEFAULT_REGIONS, Offer, Requirement, candidates, rank_offers
from launcher.providers.vultr import VultrProvider
from launcher.provision.plan import choose_snapshot
from launcher.secrets import Secret
from launcher.vultr import BlockSpec, InstanceSpec, VultrClient, VultrHttp

SNAPSHOT_PREFIX = "launcher-gpu-"
VOLUME_GB = 1000


@dataclass(frozen=True)
class Step:
    name: str
    detail: str
    seconds: float


@dataclass
class DemoReport:
    """What the session did; ``left_over`` counts what still existed at the end (must be 0)."""

    steps: list[Step] = field(default_factory=list)
    region: str = ""
    plan: str = ""
    api_calls: int = 0
    mutating_calls: int = 0
    left_over: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


class Session:
    """The demo's state: the client, the report, and what must be deleted at the end."""

    def __init__(self, client: VultrClient, report: DemoReport, on_step: Callable[[Step], None]):
        self.client = client
        self.report = report
        self.on_step = on_step
        self.label = f"launcher-demo-{secrets.token_hex(4)}"
        self.instance_id: str | None = None
        self.block_id: str | None = None

    @contextmanager
    def step(self, name: str) -> Iterator[list[str]]:
        """Time one step; the body appends its one-line outcome to the yielded list."""
        started, detail = time.monotonic(), []
        yield detail
        done = Step(name, " ".join(detail), round(time.monotonic() - started, 3))
        self.report.steps.append(done)
        self.on_step(done)


def run_demo(
    *,
    timing: Timing | None = None,
    regions: tuple[str, ...] = DEFAULT_REGIONS,
    min_vram_gb: int = 40,
    on_step: Callable[[Step], None] = lambda step: None,
) -> DemoReport:
    """Run the session against a fresh emulator and return its report."""
    key = Secret(secrets.token_urlsafe(32))
    report = DemoReport()
    with Emulator(api_key=key.reveal(), timing=timing or Timing.realistic(), seed=None) as emu:
        with VultrClient(VultrHttp(key, base_url=emu.url)) as client:
            session = Session(client, report, on_step)
            try:
                _launch(session, regions, min_vram_gb)
            finally:
                _teardown(session)
        report.api_calls = len(emu.events)
        report.mutating_calls = len(emu.mutations())
    return report


def _launch(s: Session, regions: tuple[str, ...], min_vram_gb: int) -> None:
    with s.step("offer") as out:
        offer = _pick_offer(s.client, Requirement(min_vram_gb=min_vram_gb, regions=regions))
        region = offer.region
        s.report.region, s.report.plan = region, offer.plan_id
        out.append(f"{offer.plan_id} ({offer.gpu_type}, {offer.gpu_count} × "
                   f"{offer.vram_per_gpu_gb:g} GB, {offer.label}) in {region}")
    with s.step("snapshot") as out:
        snapshot = choose_snapshot(s.client, ImageConfig(snapshot_prefix=SNAPSHOT_PREFIX))
        out.append(f"{snapshot.description} ({snapshot.id})")
    with s.step("volume") as out:
        block = s.client.create_block(BlockSpec(region, VOLUME_GB, s.label, "high_perf"))
        s.block_id = block.id
        out.append(f"{block.id} {VOLUME_GB} GB high_perf, mount_id {block.mount_id}")
    with s.step("instance") as out:
        spec = InstanceSpec(region, offer.plan_id, s.label, snapshot_id=snapshot.id,
                            tags=("launcher", f"run:{s.label}"), user_data="#cloud-config\n{}\n")
        s.instance_id = s.client.create_instance(spec).id
        ready = s.client.wait_instance_ready(s.instance_id, deadline_s=60)
        s.client.wait_block_active(block.id, deadline_s=60)
        out.append(f"{ready.id} {ready.state}")
    with s.step("attach") as out:
        attached = VultrProvider(s.client).attach_volume(block.id, s.instance_id, deadline_s=60)
        out.append(f"live, attached_to {attached.attached_to}")


def _pick_offer(client: VultrClient, requirement: Requirement) -> Offer:
    """The offer a launch tries first: region priority, then price (see launcher.offers)."""
    found = candidates(rank_offers(client, requirement))
    if not found:
        raise LauncherError(f"no GPU plan with {requirement.min_vram_gb:g} GB per GPU is in "
                            f"stock in {', '.join(requirement.regions)}")
    return found[0]


def _teardown(s: Session) -> None:
    """Delete what this session created, then count what is left by label (must be none)."""
    with s.step("teardown") as out:
        if s.instance_id:
            s.client.delete_instance(s.instance_id)  # Vultr detaches its volumes on delete
            out.append(f"instance {s.instance_id} deleted;")
        if s.block_id:
            s.client.delete_block(s.block_id)
            out.append(f"volume {s.block_id} deleted;")
        left = len(s.client.list_instances(label=s.label)) + len(s.client.list_blocks(s.label))
        s.report.left_over = left
        out.append(f"{left} resources left labelled {s.label}")
