"""Launch of an N-node run (``stage.cluster.nodes`` ≥ 2): all nodes, or none.

Per candidate, in the failover order of a one-machine launch: the region's private network
(``provider.private_network``: the launcher's long-lived VPC there, found or created, never
deleted by a run), then every node's volume (``<run_id>-node<k>-cache``), every node's run
spec (the stage's, with its :class:`~launcher.runner.spec.ClusterSpec`) and document, then
every node's instance (label ``<run_id>-node<k>``, the run's tags plus ``node:<k>``, attached
to the network). All nodes share one deadline. A capacity refusal of any node's create rolls
back every instance of that attempt (and its volumes, unless the next candidate is in the
same region, where they serve again), then the next candidate is tried; every other failure,
and Ctrl-C at any point, rolls back everything this launch created (the reconcile's
handler). Once every instance exists: each is waited for, and each volume attached live to
its node.

A re-run of the same run id finds the nodes by their ``node:<k>`` tags and their volumes by
label: it creates only what is missing, with the deadline the run's instances already carry.
"""

from __future__ import annotations

from dataclasses import dataclass

from launcher.errors import ConfigError, InvalidRequestError
from launcher.naming import node_label, node_tag, parse_tags, volume_label
from launcher.providers import InstanceRef, VolumeRef, VolumeRequest
from launcher.provision.failover import FailoverPlan
from launcher.provision.ledger import Entry, Ledger, rollback
from launcher.provision.model import (
    Candidate,
    CapacityExhaustedError,
    CodeBundle,
    LaunchResult,
    NodeResult,
    RunStateError,
)
from launcher.provision.reconcile import attach_volume, prepare, render_document, volume_ready
from launcher.provision.session import (
    Session,
    create_tagged,
    exhausted_message,
    is_capacity_refusal,
    offer_key,
    say_failover,
    wait_instance,
)
from launcher.runner.spec import ClusterSpec

Held = dict[int, tuple[VolumeRef, Entry | None]]  # node -> its volume (and ledger entry)


@dataclass(frozen=True)
class Attempt:
    """One candidate's try: where, on which network, with which deadline."""

    cand: Candidate
    network_id: str
    now: float
    deadline_epoch: float | None = None  # a resumed run's: its instances' ``expires:``


def launch_cluster(session: Session) -> LaunchResult:
    """Reconcile an N-node run: wait for the nodes that exist, create the missing ones."""
    provider, plan = session.provider, session.plan
    nodes = plan.stage.cluster.nodes
    if not (provider.capabilities.private_network and provider.capabilities.volumes):
        raise ConfigError(f"cluster.nodes {nodes}: {provider.title} gives its instances no "
                          "private network and volume here; an N-node run needs both")
    present = nodes_present(session)
    if len(present) == nodes:
        return resume_all(session, present)
    code = prepare(session)
    if present:
        return complete(session, present, code)
    return place_cluster(session, code)


def nodes_present(session: Session) -> dict[int, InstanceRef]:
    """The run's instances by node index; RunStateError for one without a usable tag."""
    nodes = session.plan.stage.cluster.nodes
    present: dict[int, InstanceRef] = {}
    for instance in session.ledger.before.instances:
        index = parse_tags(instance.tags).node
        if index is None or index >= nodes or index in present:
            raise RunStateError(f"run {session.plan.run_id}'s instance {instance.id} is not "
                                f"one of its {nodes} nodes (tags: {', '.join(instance.tags)}): "
                                f"remove the run with `launcher teardown {session.plan.run_id}`")
        present[index] = instance
    return present


def place_cluster(session: Session, code: CodeBundle | None) -> LaunchResult:
    """Try the candidates in order until every node is created, booted and attached."""
    plan = session.plan
    failover = FailoverPlan(c.offer for c in plan.candidates)
    by_offer = {offer_key(c.offer): c for c in plan.candidates}
    held: Held = {}
    while (offer := failover.current) is not None:
        cand = by_offer[offer_key(offer)]
        if any(v.region != offer.region for v, _ in held.values()):
            held = {}
        attempt = Attempt(cand, session.provider.private_network(offer.region),
                          session.deps.now())
        try:
            instances, deadline = create_nodes(session, attempt, code, held, {})
        except InvalidRequestError as exc:
            if not is_capacity_refusal(exc):
                raise
            following = failover.next_after_capacity_error(offer, exc)
            say_failover(session, offer, following, exc)
            same_region = following is not None and following.region == offer.region
            roll_back_attempt(session, keep_volumes=same_region)
            held = held if same_region else {}
            continue
        return finish(session, cand, instances, held, code, failover, deadline)
    raise CapacityExhaustedError(exhausted_message(failover, by_offer), failover.tried)


def complete(session: Session, present: dict[int, InstanceRef],
             code: CodeBundle | None) -> LaunchResult:
    """Some nodes exist: create the others where they are, with their deadline."""
    plan = session.plan
    first = next(iter(present.values()))
    deadline = parse_tags(first.tags).expires_epoch
    if deadline is None:
        raise RunStateError(f"run {plan.run_id}'s instance {first.id} has no expires: tag, so "
                            "its missing nodes cannot share its deadline: remove the run with "
                            f"`launcher teardown {plan.run_id}`")
    cand = plan.first  # the plan holds the existing instances' offer only
    attempt = Attempt(cand, session.provider.private_network(cand.offer.region),
                      session.deps.now(), float(deadline))
    held: Held = {}
    for index, instance in sorted(present.items()):
        session.reused.append(f"instance {instance.id} (node {index}, {instance.region})")
        held[index] = existing_volume(session, index, instance.region, instance=instance)
    created, _ = create_nodes(session, attempt, code, held, present)
    return finish(session, cand, {**present, **created}, held, code, FailoverPlan(()),
                  float(deadline))


def resume_all(session: Session, present: dict[int, InstanceRef]) -> LaunchResult:
    """Every node exists: never create another; wait for each and attach its volume."""
    plan = session.plan
    held: Held = {}
    for index, instance in sorted(present.items()):
        session.reused.append(f"instance {instance.id} (node {index}, {instance.region})")
        held[index] = existing_volume(session, index, instance.region, instance=instance)
    session.say.note(f"run {plan.run_id} already has its {len(present)} nodes: nothing to "
                     "create")
    deadline = parse_tags(present[0].tags).expires_epoch
    return finish(session, plan.first, present, held, None, FailoverPlan(()),
                  None if deadline is None else float(deadline))


def existing_volume(session: Session, index: int, region: str, *,
                    instance: InstanceRef) -> tuple[VolumeRef, None]:
    """The volume of node ``index`` that exists already; RunStateError when it is gone."""
    label = volume_label(node_label(session.plan.run_id, index))
    for volume in session.ledger.before.volumes:
        if volume.label == label and volume.region == region:
            session.reused.append(f"volume {volume.id} ({label}, {region})")
            return volume, None
    run_id = session.plan.run_id
    raise RunStateError(f"run {run_id} has instance {instance.id} (node {index}) but its "
                        f"volume {label} is gone; remove the run with `launcher teardown "
                        f"{run_id}` and launch again")


def create_nodes(session: Session, attempt: Attempt, code: CodeBundle | None, held: Held,
                 present: dict[int, InstanceRef]) -> tuple[dict[int, InstanceRef], float]:
    """Every missing node's volume, then its document, then its instance (``held`` gains
    the volumes as they are found or created, so a rollback and a retry see them); the
    instances by node, and the deadline they share."""
    plan, cand = session.plan, attempt.cand
    missing = [k for k in range(plan.stage.cluster.nodes) if k not in present]
    for index in missing:
        if index not in held:
            held[index] = node_volume(session, cand, index)
    documents = {}
    for index in missing:
        volume, entry = held[index]
        documents[index] = render_document(
            session, cand, volume, code, fresh=entry is not None, now=attempt.now,
            cluster=cluster_spec(cand, index, attempt.network_id),
            nodes=plan.stage.cluster.nodes, deadline_epoch=attempt.deadline_epoch)
    instances = {}
    for index in missing:
        spec, document = documents[index]
        instances[index] = create_tagged(
            session, cand, spec.deadline_epoch, label=node_label(plan.run_id, index),
            extra_tags=(node_tag(index),), user_data=document.text.encode("ascii"),
            network_ids=(attempt.network_id,))
        session.say.note(f"created instance {instances[index].id} for node {index} "
                         f"({cand.offer.plan_id} in {cand.offer.region})")
    deadlines = {spec.deadline_epoch for spec, _ in documents.values()}
    assert len(deadlines) == 1, "every node renders from one launch time"
    return instances, deadlines.pop()


def cluster_spec(cand: Candidate, index: int, network_id: str) -> ClusterSpec:
    """Node ``index``'s part: the stage's cluster settings, a process per GPU."""
    c = cand.stage.cluster
    return ClusterSpec(nodes=c.nodes, node_index=index, launch=c.launch,
                       nproc_per_node=max(cand.offer.gpu_count or 1, 1), rdzv_port=c.rdzv_port,
                       barrier_timeout_s=c.barrier_timeout_s, peer_timeout_s=c.peer_timeout_s,
                       reap_grace_s=c.reap_grace_s, network_id=network_id)


def node_volume(session: Session, cand: Candidate,
                index: int) -> tuple[VolumeRef, Entry | None]:
    """Node ``index``'s volume in the candidate's region: the run's own (reused, no ledger
    entry), or created."""
    region, run_id = cand.offer.region, session.plan.run_id
    label = volume_label(node_label(run_id, index))
    for volume in session.ledger.before.volumes:
        if volume.label == label and volume.region == region:
            session.reused.append(f"volume {volume.id} ({label}, {region})")
            return volume, None
    v = cand.stage.volume
    entry = session.ledger.sending("volume", label, region)
    volume = session.provider.create_volume(VolumeRequest(region, v.size_gb, label,
                                                          v.block_type))
    entry.id = volume.id
    session.created.append(f"volume {volume.id} ({label}, {region})")
    session.say.note(f"created volume {volume.id} ({label}, {v.size_gb} GB {v.block_type}, "
                     f"{region})")
    return volume, entry


def roll_back_attempt(session: Session, *, keep_volumes: bool) -> None:
    """Delete the instances of a refused attempt (and its volumes unless ``keep_volumes``)
    before the next candidate; RunStateError when something stays (the reconcile's
    rollback then tries once more and reports it)."""
    ledger = session.ledger
    going = [e for e in ledger.entries if e.kind == "instance" or not keep_volumes]
    if not going:
        return
    cleanup = rollback(Ledger(ledger.run_id, ledger.before, list(going), nonce=ledger.nonce),
                       session.deps)
    if cleanup.remaining:
        raise RunStateError("could not delete the refused attempt's resources before moving "
                            "on:\n" + "\n".join(f"  - {line}" for line in cleanup.remaining))
    for entry in going:
        ledger.forget(entry)
        session.created[:] = [line for line in session.created
                              if not line.startswith(f"{entry.kind} {entry.id} ")]


def finish(session: Session, cand: Candidate, instances: dict[int, InstanceRef], held: Held,
           code: CodeBundle | None, failover: FailoverPlan,
           deadline: float | None) -> LaunchResult:
    """Wait for every node's instance, then attach each node's volume to it."""
    booted = {k: wait_instance(session, i) for k, i in sorted(instances.items())}
    nodes = tuple(NodeResult(k, booted[k], attach_volume(session, volume_ready(session,
                                                                               held[k][0]),
                                                         booted[k]))
                  for k in sorted(booted))
    return LaunchResult(session.plan.run_id, cand.stage.name, cand, nodes[0].instance,
                        nodes[0].volume, tuple(session.created), tuple(session.reused), code,
                        deadline, failover.tried, session.plan.notes, nodes=nodes)
