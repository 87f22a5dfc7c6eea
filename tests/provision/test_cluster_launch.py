"""An N-node launch on the emulator: every node or none, one VPC per region, one deadline.

After every case the emulator's instances and volumes are counted: a failed or interrupted
launch leaves none (the region's VPC is the launcher's long-lived network and stays)."""

from __future__ import annotations

import json

import pytest

import launcher.provision.reconcile as reconcile_module
from launcher.config import Overrides
from launcher.errors import TransientError
from launcher.naming import node_label, node_tag, parse_tags, volume_label
from launcher.provision import CapacityExhaustedError, DryRunResult, LaunchResult, run_stage
from launcher.runner.spec import RunSpec

NODES = Overrides(nodes=2)


def nothing_left(bed, deps) -> None:
    assert bed.left() == ([], [])
    assert deps.provider.list_runs() == []


def vpc_calls(bed) -> list[str]:
    return [f"{e.method} {e.route}" for e in bed.emulator.events
            if e.route and e.route.startswith("/vpcs")]


def uploaded_specs(deps, stage) -> dict[int, RunSpec]:
    bucket = deps.bucket_for(stage.storage)
    found = {}
    for url, data in bucket.objects.items():
        if "/boot/" in url and url.endswith(".json"):
            spec = RunSpec.from_json(data.decode())
            found[spec.cluster.node_index] = spec
    return found


# -- the happy path ---------------------------------------------------------------------------

def test_two_nodes_share_a_vpc_a_deadline_and_get_their_own_volumes(quick_bed):
    deps = quick_bed.deps()
    result = run_stage(quick_bed.request(overrides=NODES), deps)
    assert isinstance(result, LaunchResult) and len(result.nodes) == 2
    run = deps.provider.find_run(result.run_id)
    assert len(run.instances) == 2 and len(run.volumes) == 2
    by_node = {parse_tags(i.tags).node: i for i in run.instances}
    state = quick_bed.emulator.state
    vpcs = state.vpcs.list()
    assert len(vpcs) == 1 and vpcs[0].region == result.instance.region
    for k in (0, 1):
        instance = by_node[k]
        assert instance.label == node_label(result.run_id, k)
        assert node_tag(k) in instance.tags and f"run:{result.run_id}" in instance.tags
        assert [p.vpc_id for p in state.instances[instance.id].private] == [vpcs[0].id]
        assert state.instances[instance.id].internal_ip
        node = result.nodes[k]
        assert node.instance.id == instance.id and node.volume.attached_to == instance.id
        assert node.volume.label == volume_label(node_label(result.run_id, k))
        assert node.instance.internal_ip == state.instances[instance.id].internal_ip
    expiries = {parse_tags(i.tags).expires_epoch for i in run.instances}
    assert len(expiries) == 1 and expiries == {int(result.deadline_epoch)}
    posted = [e for e in quick_bed.emulator.mutations() if e.route == "/instances"]
    assert len(posted) == 2


def test_each_node_gets_its_cluster_spec(quick_bed):
    deps = quick_bed.deps()
    result = run_stage(quick_bed.request(overrides=NODES), deps)
    specs = uploaded_specs(deps, result.candidate.stage)
    assert sorted(specs) == [0, 1]
    network = quick_bed.emulator.state.vpcs.list()[0].id
    for k, spec in specs.items():
        c = spec.cluster
        assert (c.nodes, c.node_index, c.network_id) == (2, k, network)
        assert c.nproc_per_node == result.candidate.offer.gpu_count
        assert spec.version == 4 and spec.run_prefix.endswith(f"/nodes/{k}")
        assert spec.volume.block_id == result.nodes[k].volume.id
    assert specs[0].deadline_epoch == specs[1].deadline_epoch == result.deadline_epoch
    nodes = json.loads(json.dumps(result.as_dict()))["nodes"]
    assert [(n["node"], n["instance"]) for n in nodes] == [(k, result.nodes[k].instance.id)
                                                            for k in (0, 1)]
    assert all(n["internal_ip"] for n in nodes)


def test_one_node_is_todays_launch_without_a_vpc(quick_bed):
    deps = quick_bed.deps()
    result = run_stage(quick_bed.request(), deps)
    assert result.nodes == () and result.instance.label == result.run_id
    assert parse_tags(result.instance.tags).node is None
    assert vpc_calls(quick_bed) == []
    assert result.volume.label == volume_label(result.run_id)


def test_a_dry_run_shows_the_vpc_and_every_node(quick_bed):
    deps = quick_bed.deps()
    result = run_stage(quick_bed.request(overrides=NODES, dry_run=True), deps)
    assert isinstance(result, DryRunResult)
    calls = [(c.method, c.target) for c in result.calls]
    vpc = calls.index(("POST", "/vpcs"))
    creates = [i for i, c in enumerate(calls) if c == ("POST", "/instances")]
    assert len(creates) == 2 and vpc < creates[0]
    assert calls.count(("POST", "/blocks")) == 2
    bodies = [c.body for c in result.calls if c.target == "/instances"]
    assert [b["label"] for b in bodies] == [node_label(result.plan.run_id, 0),
                                            node_label(result.plan.run_id, 1)]
    assert all(b["attach_vpc"] == ["<vpc-id>"] for b in bodies)
    assert quick_bed.left() == ([], []) and quick_bed.emulator.state.vpcs.list() == []


# -- all or nothing ---------------------------------------------------------------------------

class SoldOutAfter:
    """The real provider, except that after one instance create in a region of ``regions``
    (all when None), that region's stock is emptied: node 1 is refused as stock moves under
    the launch."""

    def __init__(self, real, emulator, regions: tuple[str, ...] | None = None):
        self.real, self.emulator, self.regions = real, emulator, regions
        self.made: list[str] = []

    def __getattr__(self, name):
        return getattr(self.real, name)

    def create_instance(self, request):
        if request.region in self.made and request.region in (self.regions or self.made):
            self.emulator.set_stock(request.region, [])
        instance = self.real.create_instance(request)
        self.made.append(request.region)
        return instance


def test_a_refusal_of_node_1_rolls_back_node_0_and_moves_to_the_next_region(quick_bed):
    deps = quick_bed.deps()
    deps.provider = SoldOutAfter(deps.provider, quick_bed.emulator, ("sjc",))
    result = run_stage(quick_bed.request(overrides=NODES), deps)
    first = result.tried[0].offer.region
    assert first != result.instance.region
    assert {n.instance.region for n in result.nodes} == {result.instance.region}
    run = deps.provider.find_run(result.run_id)
    assert {i.region for i in run.instances} == {v.region for v in run.volumes} == \
        {result.instance.region}
    assert len(run.instances) == 2 and len(run.volumes) == 2
    assert quick_bed.left() == (sorted(i.id for i in run.instances),
                                sorted(v.id for v in run.volumes))
    deleted = [e.route for e in quick_bed.emulator.mutations() if e.method == "DELETE"]
    assert deleted.count("/instances/{id}") == 1  # node 0 of the refused attempt
    assert deleted.count("/blocks/{id}") == 2  # both volumes left behind in that region
    text = deps.progress.text
    assert "trying next" in text and f"leaving {first}" not in text  # said by the rollback
    assert "rolling back" in text


class Faulty:
    """The real provider, except that call number ``nth`` of ``method`` raises ``error``
    (after doing the call when ``after`` is set: it happened, the caller never heard)."""

    def __init__(self, real, method: str, error: BaseException, nth: int = 1,
                 after: bool = False):
        self.real, self.method, self.error, self.nth, self.after = real, method, error, nth, after
        self.calls = 0

    def __getattr__(self, name):
        attribute = getattr(self.real, name)
        if name != self.method:
            return attribute

        def call(*args, **kwargs):
            self.calls += 1
            if self.calls != self.nth:
                return attribute(*args, **kwargs)
            if self.after:
                attribute(*args, **kwargs)
            raise self.error

        return call


STEPS = [("private_network", 1, False), ("create_volume", 1, False),
         ("create_volume", 2, True), ("render", 2, False), ("create_instance", 1, True),
         ("create_instance", 2, False), ("create_instance", 2, True),
         ("wait_instance_ready", 2, False), ("wait_volume_ready", 1, False),
         ("attach_volume", 2, False)]


def arm(bed, monkeypatch, step: str, nth: int, after: bool, error: BaseException):
    deps = bed.deps()
    if step == "render":
        real_render, seen = reconcile_module.render, []

        def broken(*args, **kwargs):
            seen.append(1)
            if len(seen) == nth:
                raise error
            return real_render(*args, **kwargs)

        monkeypatch.setattr(reconcile_module, "render", broken)
        return deps
    import launcher.provision.cluster as cluster_module

    if step == "wait_instance_ready":  # instant timing answers ready at create
        monkeypatch.setattr(cluster_module, "wait_instance",
                            lambda session, i: session.provider.wait_instance_ready(i.id, 1))
    if step == "wait_volume_ready":  # likewise
        monkeypatch.setattr(cluster_module, "volume_ready",
                            lambda session, v: session.provider.wait_volume_ready(v.id, 1))
    deps.provider = Faulty(deps.provider, step, error, nth, after)
    return deps


@pytest.mark.parametrize(("step", "nth", "after"), STEPS)
def test_a_failure_at_any_step_of_any_node_leaves_nothing(quick_bed, monkeypatch, step, nth,
                                                          after):
    boom = TransientError("boom", method="POST", path="/x")
    deps = arm(quick_bed, monkeypatch, step, nth, after, boom)
    with pytest.raises(TransientError, match="boom"):
        run_stage(quick_bed.request(overrides=NODES), deps)
    nothing_left(quick_bed, deps)


@pytest.mark.parametrize(("step", "nth", "after"), STEPS)
def test_ctrl_c_at_any_step_of_any_node_leaves_nothing(quick_bed, monkeypatch, step, nth,
                                                       after):
    deps = arm(quick_bed, monkeypatch, step, nth, after, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        run_stage(quick_bed.request(overrides=NODES), deps)
    nothing_left(quick_bed, deps)


def test_an_ambiguous_create_of_either_node_buys_no_duplicate(quick_bed):
    quick_bed.emulator.inject("POST /instances", "ambiguous_create", count=2)
    quick_bed.emulator.inject("POST /blocks", "ambiguous_create", count=2)
    deps = quick_bed.deps()
    result = run_stage(quick_bed.request(overrides=NODES), deps)
    instances, blocks = quick_bed.left()
    assert instances == sorted(n.instance.id for n in result.nodes)
    assert blocks == sorted(n.volume.id for n in result.nodes)
    assert all(n.volume.attached_to == n.instance.id for n in result.nodes)


def test_node_1_refused_in_every_region_leaves_nothing(quick_bed):
    deps = quick_bed.deps()
    deps.provider = SoldOutAfter(deps.provider, quick_bed.emulator)
    with pytest.raises(CapacityExhaustedError, match="refused for capacity") as failed:
        run_stage(quick_bed.request(overrides=NODES), deps)
    assert len(failed.value.tried) == 5  # every candidate: node 0 made, node 1 refused
    assert deps.provider.made == ["sjc", "sea", "lax"]  # one node 0 per region, rolled back
    nothing_left(quick_bed, deps)


# -- a re-run of the same run id --------------------------------------------------------------

def test_a_rerun_creates_only_the_missing_node_with_the_same_deadline(quick_bed):
    deps = quick_bed.deps()
    first = run_stage(quick_bed.request(overrides=NODES), deps)
    gone = first.nodes[1].instance.id
    assert deps.provider.delete_instance(gone)
    again = run_stage(quick_bed.request(overrides=NODES, run_id=first.run_id),
                      quick_bed.deps())
    assert again.nodes[0].instance.id == first.nodes[0].instance.id
    assert again.nodes[1].instance.id != gone
    assert [n.volume.id for n in again.nodes] == [n.volume.id for n in first.nodes]
    assert all(n.volume.attached_to == n.instance.id for n in again.nodes)
    run = deps.provider.find_run(first.run_id)
    assert len(run.instances) == 2 and len(run.volumes) == 2
    assert {parse_tags(i.tags).expires_epoch for i in run.instances} == \
        {int(first.deadline_epoch)}
    assert again.deadline_epoch == first.deadline_epoch
    assert [c for c in again.created if c.startswith("volume")] == []


def test_a_rerun_of_a_whole_cluster_creates_nothing(quick_bed):
    deps = quick_bed.deps()
    first = run_stage(quick_bed.request(overrides=NODES), deps)
    before = len(quick_bed.emulator.mutations())
    again = run_stage(quick_bed.request(overrides=NODES, run_id=first.run_id),
                      quick_bed.deps())
    assert again.created == () and len(quick_bed.emulator.mutations()) == before
    assert [n.instance.id for n in again.nodes] == [n.instance.id for n in first.nodes]


def test_a_rerun_whose_node_lost_its_volume_is_refused(quick_bed):
    from launcher.provision import RunStateError

    deps = quick_bed.deps()
    first = run_stage(quick_bed.request(overrides=NODES), deps)
    assert deps.provider.delete_volume(first.nodes[1].volume.id)
    with pytest.raises(RunStateError, match="node 1.*is gone"):
        run_stage(quick_bed.request(overrides=NODES, run_id=first.run_id), quick_bed.deps())
    run = deps.provider.find_run(first.run_id)
    assert len(run.instances) == 2 and len(run.volumes) == 1  # nothing created or deleted
