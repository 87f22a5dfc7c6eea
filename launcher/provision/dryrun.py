"""``launcher run --dry-run``: the whole launch, read-only, with every mutation written down.

The real reconcile (:func:`launcher.provision.reconcile.execute`) runs against stand-ins:
:class:`RecordingProvider` passes reads to the real provider and records each create, attach
and delete as the HTTP call it would be (bodies built by the API layer's own specs, the user
data replaced by its size), answering with placeholder ids; :class:`RecordingBucket` records
the upload to the real bucket's address (whose endpoint is checked for reachability). The
code bundle is packed locally (to show its size and sha256) but not sent. The two reads that
prove the instance's key before a launch are listed first, and not made either. No rollback
runs: nothing was created.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from launcher.bucket import BucketAddress
from launcher.providers import (
    InstanceRef,
    InstanceRequest,
    Provider,
    RunResources,
    VolumeRef,
    VolumeRequest,
)
from launcher.providers.vast import RUNTYPE, vast_label
from launcher.provision.deps import LaunchDeps, Progress
from launcher.provision.model import DryRunResult, LaunchPlan, PlannedCall
from launcher.provision.preflight import read_proof_calls
from launcher.provision.reconcile import execute
from launcher.vast import InstanceSpec as VastInstanceSpec
from launcher.vultr import BlockSpec, InstanceSpec

NEW_VOLUME = "<new-volume-id>"
NEW_MOUNT = "<new-mount-id>"
NEW_INSTANCE = "<new-instance-id>"
NEW_SSH_KEY = "<new-ssh-key-id>"
NEW_NETWORK = "<vpc-id>"


class RecordingProvider:
    """Reads from ``real``; mutations recorded in ``calls`` and answered with placeholders."""

    def __init__(self, real: Provider) -> None:
        self.real = real
        self.name, self.title, self.capabilities = real.name, real.title, real.capabilities
        self.calls: list[PlannedCall] = []

    def find_run(self, run_id: str) -> RunResources:
        return self.real.find_run(run_id)

    def list_runs(self) -> list[RunResources]:
        return self.real.list_runs()

    def create_volume(self, request: VolumeRequest) -> VolumeRef:
        body = BlockSpec(request.region, request.size_gb, request.label, request.kind).body()
        self.calls.append(PlannedCall("POST", "/blocks", body, "then wait until active"))
        return VolumeRef(NEW_VOLUME, request.label, request.region, request.size_gb,
                         NEW_MOUNT, None, ready=False)

    def wait_volume_ready(self, volume_id: str, deadline_s: float) -> VolumeRef:
        if volume_id != NEW_VOLUME:
            raise AssertionError("a dry run waits for nothing it did not create")
        last = next(c for c in reversed(self.calls) if c.target == "/blocks")
        body = last.body or {}
        return VolumeRef(NEW_VOLUME, body["label"], body["region"], body["size_gb"],
                         NEW_MOUNT, None, ready=True)

    def create_instance(self, request: InstanceRequest) -> InstanceRef:
        if self.capabilities.boot == "onstart":
            return self._rent(request)
        spec = InstanceSpec(request.region, request.plan, request.label,
                            snapshot_id=request.image_id, tags=request.tags,
                            user_data=request.user_data, sshkey_ids=request.ssh_key_ids,
                            attach_vpc=request.network_ids)
        body = spec.body()
        body["user_data"] = (f"<rendered document, {len(request.user_data):,} bytes, "
                             "see below>")
        self.calls.append(PlannedCall("POST", "/instances", body,
                                      "then wait until active, running and ok"))
        return InstanceRef(NEW_INSTANCE, request.label, request.region, request.plan,
                           request.tags, "pending", ready=True)

    def _rent(self, request: InstanceRequest) -> InstanceRef:
        """Vast's create (``PUT /asks/{offer}/``): the environment's values and the onstart
        are replaced by what they are."""
        spec = VastInstanceSpec(image=request.image_id, label=vast_label(request.label,
                                                                         request.tags),
                                disk_gb=request.disk_gb, runtype=RUNTYPE)
        body = spec.body()
        body["env"] = {name: "<secret>" for name, _ in request.env}
        body["onstart"] = f"<onstart, {len(request.onstart):,} characters, see below>"
        self.calls.append(PlannedCall("PUT", f"/asks/{request.plan}/", body,
                                      "then wait until it runs"))
        return InstanceRef(NEW_INSTANCE, request.label, request.region, request.plan,
                           request.tags, "loading", ready=True)

    def wait_instance_ready(self, instance_id: str, deadline_s: float) -> InstanceRef:
        raise AssertionError("a dry run's instance is answered ready")

    def private_network(self, region: str) -> str:
        """Recorded as the create it may be (Vultr OpenAPI, ``POST /vpcs``): the real launch
        first looks for the launcher's network in ``region`` and creates it only when none
        exists."""
        self.calls.append(PlannedCall("POST", "/vpcs",
                                      {"region": region, "description": f"launcher-{region}"},
                                      "only when the region has no launcher VPC yet; it is "
                                      "kept for later runs"))
        return NEW_NETWORK

    def attach_volume(self, volume_id: str, instance_id: str, deadline_s: float) -> VolumeRef:
        self.calls.append(PlannedCall("POST", f"/blocks/{volume_id}/attach",
                                      {"instance_id": instance_id, "live": True},
                                      "retried while the instance is locked"))
        return VolumeRef(volume_id, "", "", 0, NEW_MOUNT, instance_id, ready=True)

    def delete_instance(self, instance_id: str) -> bool:
        self.calls.append(PlannedCall("DELETE", f"/instances/{instance_id}"))
        return True

    def delete_volume(self, volume_id: str) -> bool:
        self.calls.append(PlannedCall("DELETE", f"/blocks/{volume_id}"))
        return True

    def register_ssh_key(self, name: str, public_key: str) -> str:
        self.calls.append(PlannedCall("POST", "/ssh-keys", {"name": name, "ssh_key": public_key},
                                      "an account key: kept by rollback and teardown"))
        return NEW_SSH_KEY


class RecordingBucket:
    """Records uploads instead of making them."""

    def __init__(self, address: BucketAddress, calls: list[PlannedCall]) -> None:
        self.address = address
        self.calls = calls

    def presign(self, url: str, expire_s: int) -> str:
        """Presigning is local (no request); a dry run shows where the URL goes."""
        return f"https://presigned-at-launch.invalid/{url.removeprefix('s3://')}"

    def put_file(self, local: Path, url: str) -> None:
        data = local.read_bytes()
        body = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        self.calls.append(PlannedCall("PUT", url, body, _what(local.name)))


def _what(name: str) -> str:
    if name.endswith(".pyz"):
        return "the runner, which the document's bootstrap fetches"
    if name.endswith(".json"):
        return "the run spec, which the document's bootstrap fetches"
    return "the code bundle"


class WarningsOnly:
    """A dry run's progress: its warnings (a dirty checkout) pass through; its notes and
    waits ("created volume <new-volume-id>") would read as if something happened."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def note(self, text: str) -> None:
        pass

    def warn(self, text: str) -> None:
        self.progress.warn(text)

    @contextmanager
    def waiting(self, text: str) -> Iterator[None]:
        yield


def dry_run(plan: LaunchPlan, deps: LaunchDeps) -> DryRunResult:
    """Run the launch against recording stand-ins; no mutating call reaches anything."""
    deps = dataclasses.replace(deps, progress=WarningsOnly(deps.progress))
    provider = RecordingProvider(deps.provider)
    provider.calls.extend(read_proof_calls(deps.account, deps.provider))  # listed, not made
    bucket = RecordingBucket(deps.bucket_for(plan.stage.storage).address, provider.calls)
    result, session = execute(plan, deps, provider, bucket, roll_back=False)
    if session.boots:  # an onstart cloud: the onstart is the document
        boot = session.boots[-1]
        return DryRunResult(plan=plan, calls=tuple(provider.calls), document=boot.onstart.text,
                            document_size=str(boot.onstart), code=result.code,
                            spec=boot.spec.to_json() + "\n")
    document = session.documents[-1] if session.documents else None
    spec = next((u for u in document.uploads if u.key.endswith(".json")), None) \
        if document else None
    return DryRunResult(plan=plan, calls=tuple(provider.calls),
                        document=document.redacted_text() if document else "",
                        document_size=str(document.size_report()) if document else "",
                        code=result.code, spec=spec.data.decode() if spec else "")
