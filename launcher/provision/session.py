"""One launch in progress (:class:`Session`) and the steps every cloud's launch shares: the
code bundle, the bootstrap's files in the bucket, failover on a capacity refusal, waiting for
the instance, and the message when every candidate was refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.errors import ConflictError, InvalidRequestError, OutOfCapacityError
from launcher.naming import instance_tags, launch_tag
from launcher.providers import InstanceRef, InstanceRequest, Provider
from launcher.providers.offers import Offer
from launcher.provision.code import bundle_code
from launcher.provision.deps import BucketLike, LaunchDeps, Progress
from launcher.provision.failover import FailoverPlan
from launcher.provision.ledger import Ledger
from launcher.provision.model import INSTANCE_READY_S, Candidate, CodeBundle, LaunchPlan
from launcher.render import RenderedDocument
from launcher.render.pipeline import Upload


@dataclass
class Session:
    """One launch in progress: the plan, where it creates things, and its ledger."""

    plan: LaunchPlan
    deps: LaunchDeps
    provider: Provider
    bucket: BucketLike
    ledger: Ledger
    workdir: Path
    created: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    documents: list[RenderedDocument] = field(default_factory=list)
    # An onstart cloud's bootstraps (launcher.provision.onstart.Bootstrap), last one last.
    boots: list[Any] = field(default_factory=list)
    ssh_key_ids: tuple[str, ...] = ()
    boot_keys: set[str] = field(default_factory=set)  # bootstrap files already uploaded

    @property
    def say(self) -> Progress:
        return self.deps.progress


def create_tagged(session: Session, cand: Candidate, deadline_epoch: float, *,
                  label: str = "", extra_tags: tuple[str, ...] = (), **boot: Any) -> InstanceRef:
    """Create the candidate's instance with the run's tags and this launch's (so an
    ambiguous create finds only ours), plus ``extra_tags`` (a node's); ``label`` defaults to
    the run id. ``boot`` are the request's other fields (user data, or onstart, environment
    and disk; private networks). A definite refusal leaves no ledger entry."""
    plan, offer = session.plan, cand.offer
    label = label or plan.run_id
    tags = (*instance_tags(plan.run_id, cand.stage.name, deadline_epoch), *extra_tags,
            launch_tag(session.ledger.nonce))
    request = InstanceRequest(offer.region, offer.plan_id, plan.snapshot.id, label, tags,
                              ssh_key_ids=session.ssh_key_ids, **boot)
    entry = session.ledger.sending("instance", label, offer.region)
    try:
        instance = session.provider.create_instance(request)
    except InvalidRequestError:  # a 4xx answer: nothing was created
        session.ledger.forget(entry)
        raise
    entry.id = instance.id
    session.created.append(f"instance {instance.id} ({offer.plan_id}, {offer.region})")
    return instance


def upload_code(session: Session) -> CodeBundle:
    """Pack the checkout and put it at ``runs/<run_id>/code.tar.gz``."""
    plan, bucket = session.plan, session.bucket
    bundle = bundle_code(plan.code_dir, session.workdir, bucket.address, plan.run_id)
    if bundle.dirty:
        session.say.warn(f"{plan.code_dir.resolve()} has uncommitted changes; the bundle packs "
                         f"the last commit {bundle.git_sha[:12]} only (recorded as dirty)")
    with session.say.waiting(f"uploading the code bundle ({bundle.size:,} bytes, sha256 "
                             f"{bundle.sha256[:12]}…) to {bundle.url}"):
        bucket.put_file(bundle.path, bundle.url)
    session.ledger.kept.append(f"the code bundle {bundle.url} stays in the bucket (it bills "
                               "next to nothing); delete it with s5cmd rm if you like")
    return bundle


def offer_key(offer: Offer) -> tuple[str, str]:
    return offer.plan_id, offer.region


def is_capacity_refusal(exc: Exception) -> bool:
    """Out of capacity, or a refusal saying the plan cannot be had there right now."""
    if isinstance(exc, OutOfCapacityError):
        return True
    text = str(exc).lower()
    return not isinstance(exc, ConflictError) and "plan" in text and any(
        p in text for p in ("not available", "unavailable", "sold out", "out of stock"))


def say_failover(session: Session, offer: Offer, following: Offer | None,
                  exc: Exception) -> None:
    reason = (str(exc).splitlines() or ["refused"])[0]
    after = (f"trying next: {following.plan_id} in {following.region}" if following
             else "no candidate left")
    session.say.warn(f"{offer.plan_id} in {offer.region} refused ({reason}); {after}")


def put_uploads(session: Session, uploads: tuple[Upload, ...]) -> None:
    """Put the runner and the run spec a bootstrap pins into the bucket (each key once: a
    key names its content, so every candidate shares the runner)."""
    bucket = session.bucket
    for upload in uploads:
        if upload.key in session.boot_keys:
            continue
        local = session.workdir / upload.key.rsplit("/", 1)[-1]
        local.write_bytes(upload.data)
        url = f"s3://{bucket.address.bucket}/{upload.key}"
        with session.say.waiting(f"uploading {local.name} ({len(upload.data):,} bytes) to {url}"):
            bucket.put_file(local, url)
        session.boot_keys.add(upload.key)


def wait_instance(session: Session, instance: InstanceRef) -> InstanceRef:
    if instance.ready:
        return instance
    with session.say.waiting(f"waiting for instance {instance.id} ({instance.plan} in "
                             f"{instance.region}) to boot"):
        return session.provider.wait_instance_ready(instance.id, INSTANCE_READY_S)


def exhausted_message(failover: FailoverPlan, by_offer: dict[tuple[str, str], Candidate]) -> str:
    """The final message: the summary and a table of every offer tried and why it failed."""
    head = ("#", "profile", "plan", "region", "price", "why skipped")
    rows = [head]
    for number, skipped in enumerate(failover.tried, 1):
        row = skipped.as_row()
        profile = by_offer[offer_key(skipped.offer)].profile.name
        rows.append((str(number), profile, row["plan"], row["region"], row["price"],
                     row["why skipped"]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True))
             + "  " + r[-1] for r in rows]
    return "\n".join([f"nothing launched: {failover.summary()}", *lines,
                      "nothing this launch created is left (see above)"])
