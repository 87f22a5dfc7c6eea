"""The Vast emulator's state: offers, instances, ssh keys, bills, logs; one lock.

Handlers check a request's shape; the store applies Vast's rules (an offer rents once, a
destroyed instance is gone, a stopped one keeps paying for storage) and raises
:class:`VastRefusal`. Hooks run under the lock; one that raises rolls the change back.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from launcher.emulator.errors import HypervisorError
from launcher.emulator.keys import Keyring
from launcher.emulator.vast import offers as cat
from launcher.emulator.vast.errors import VastRefusal
from launcher.emulator.vast.hypervisor import VastHypervisor
from launcher.emulator.vast.records import (
    HOURS_PER_MONTH,
    Bill,
    HookInstance,
    Instance,
    SshKey,
    Status,
    instance_status,
)
from launcher.emulator.vast.timing import VastTiming

INSTANCE_KEY_PREFIX = "instance:"
# vast-cli ``logs --tail``: "Number of lines to show from the end of the logs (default '1000')"
LOG_TAIL_DEFAULT = 1000
LOG_KEEP_LINES = 100_000  # the emulator's own bound: older lines of an instance are dropped


@dataclass(frozen=True)
class CreateSpec:
    """A create request after its shape was checked."""

    image: str
    disk_gb: float
    label: str
    env: tuple[tuple[str, str], ...]
    ports: tuple[str, ...]
    onstart: str
    args: tuple[str, ...]
    runtype: str


@dataclass(frozen=True)
class LogRequest:
    """A ``request_logs`` answer: its text is served from ``ready_t`` on."""

    instance_id: int
    ready_t: float
    text: str


def key_name(instance_id: int) -> str:
    """The keyring name of an instance's restricted key."""
    return f"{INSTANCE_KEY_PREFIX}{instance_id}"


class VastStore:
    """All Vast resources. Public methods are thread-safe; records are immutable."""

    def __init__(self, clock: Callable[[], float], timing: VastTiming,
                 hypervisor: VastHypervisor, seed: int | None, keys: Keyring,
                 api_url: Callable[[], str]) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.timing = timing
        self.hypervisor = hypervisor
        self.keys = keys
        self.api_url = api_url
        self._rng = random.Random(seed)
        self.offers = cat.seed_offers()
        self.instances: dict[int, Instance] = {}
        self.bills: dict[int, Bill] = {}
        self.logs: dict[int, list[str]] = {}
        self.log_requests: dict[str, LogRequest] = {}
        self.ssh_keys: dict[int, SshKey] = {}
        self.user = {"id": 424242, "key_id": 1, "email": "emulator@example.invalid",
                     "balance": 25.0, "credit": 25.0, "ssh_key": "", "sid": "emulator"}
        self._next_id = 20_000_001
        self._next_key_id = 3001

    def now(self) -> float:
        return self.clock()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        saved = dict(self.instances), dict(self.offers), dict(self.bills)
        try:
            yield
        except BaseException:
            self.instances, self.offers, self.bills = saved
            raise

    def _hook(self, hook: Callable[[HookInstance], None], inst: Instance) -> None:
        view = HookInstance(id=inst.id, label=inst.label, image=inst.image, env=dict(inst.env),
                            onstart=inst.onstart, args=inst.args, disk_gb=inst.disk_gb,
                            api_url=self.api_url(), api_key=inst.api_key)
        try:
            hook(view)
        except Exception as exc:
            raise HypervisorError(getattr(hook, "__name__", "hook")) from exc

    # -- offers ---------------------------------------------------------------------------

    def search(self, query: dict, order: object, limit: int | None, allocated_gb: float,
               offer_type: str) -> list[dict]:
        """Offers matching every filter, priced for ``allocated_gb``, sorted, cut to limit."""
        with self.lock:
            rows = [cat.priced(r, allocated_gb, offer_type) for r in self.offers.values()]
        fields = set(rows[0]) if rows else set()
        checks = cat.predicates(query, fields)
        found = [r for r in rows if all(check(r) for check in checks)]
        found = cat.ordered(found, order, fields)
        return found if limit is None else found[:limit]

    def set_offer(self, offer_id: int, *, rented: bool | None = None,
                  rentable: bool | None = None, gone: bool = False) -> None:
        """Tests and control: mark an offer rented/unrentable, or remove it (``gone``)."""
        with self.lock:
            row = self.offers.get(offer_id)
            if row is None:
                raise ValueError(f"no offer {offer_id}")
            if gone:
                del self.offers[offer_id]
                return
            changes = {k: v for k, v in (("rented", rented), ("rentable", rentable))
                       if v is not None}
            self.offers[offer_id] = {**row, **changes}

    # -- instances ------------------------------------------------------------------------

    def create(self, offer_id: int, spec: CreateSpec) -> Instance:
        """Rent ``offer_id``: 404 when no such offer, 410 when it is rented or unrentable."""
        with self.lock, self._transaction():
            row = self.offers.get(offer_id)
            if row is None:
                raise VastRefusal(404, "no_such_ask", extra={"ask_id": offer_id}, id=offer_id)
            if row["rented"] or not row["rentable"]:
                raise VastRefusal(410, "ask_gone", extra={"ask_id": offer_id}, id=offer_id)
            now = self.now()
            inst = Instance(
                id=self._next_id, offer_id=offer_id, machine_id=row["machine_id"],
                label=spec.label, image=spec.image, env=spec.env, ports=spec.ports,
                onstart=spec.onstart, args=spec.args, runtype=spec.runtype,
                disk_gb=spec.disk_gb, dph_base=row["dph_base"],
                storage_cost=row["storage_cost"], created_t=now, start_date=time.time(),
                api_key=secrets.token_hex(32), started_t=now)
            self.instances[inst.id] = inst
            self.offers[offer_id] = {**row, "rented": True, "rentable": False}
            # The key first: a machine may call with it before this create has answered.
            self.keys.add(inst.api_key, key_name(inst.id))
            try:
                self._hook(self.hypervisor.instance_created, inst)
            except HypervisorError:
                self.keys.remove(key_name(inst.id))
                raise
            self._next_id += 1
            self.logs.setdefault(inst.id, [])
            return inst

    def get(self, instance_id: int) -> Instance | None:
        with self.lock:
            return self.instances.get(instance_id)

    def listed(self) -> list[Instance]:
        with self.lock:
            return list(self.instances.values())

    def status(self, inst: Instance) -> Status:
        """The instance's status fields now."""
        return instance_status(inst, self.now(), self.timing)

    def set_state(self, instance_id: int, state: str) -> Instance:
        """Stop (``stopped``) or start (``running``); the same state again is a no-op."""
        with self.lock, self._transaction():
            inst = self._existing(instance_id, "no_such_instance")
            if (state == "stopped") == inst.stopped:
                return inst
            now = self.now()
            if state == "stopped":
                inst = replace(inst, stopped=True, gpu_s=inst.gpu_s + self._run_s(inst, now))
                hook = self.hypervisor.instance_stopped
            else:
                inst = replace(inst, stopped=False, started_t=now)
                hook = self.hypervisor.instance_started
            self.instances[instance_id] = inst
            self._hook(hook, inst)
            return inst

    def relabel(self, instance_id: int, label: str) -> Instance:
        with self.lock:
            inst = replace(self._existing(instance_id, "no_such_instance"), label=label)
            self.instances[instance_id] = inst
            return inst

    def destroy(self, instance_id: int) -> None:
        """Destroy: the offer is rentable again, the key dies, the bill is closed."""
        with self.lock, self._transaction():
            inst = self._existing(instance_id, "instance_not_found", status=404)
            self.bills[instance_id] = self.bill_of(inst, destroyed=True)
            del self.instances[instance_id]
            row = self.offers.get(inst.offer_id)
            if row is not None:
                self.offers[inst.offer_id] = {**row, "rented": False, "rentable": True}
            self._hook(self.hypervisor.instance_deleted, inst)
            self.keys.remove(key_name(instance_id))

    def _existing(self, instance_id: int, error: str, status: int = 404) -> Instance:
        inst = self.instances.get(instance_id)
        if inst is None:
            raise VastRefusal(status, error)
        return inst

    # -- billing --------------------------------------------------------------------------

    def _run_s(self, inst: Instance, now: float) -> float:
        """Seconds of the current run that were billable (``running``, not loading)."""
        if inst.stopped:
            return 0.0
        return max(0.0, now - (inst.started_t + self.timing.running_s))

    def bill_of(self, inst: Instance, destroyed: bool = False) -> Bill:
        now = self.now()
        running_s = inst.gpu_s + self._run_s(inst, now)
        billed_s = max(0.0, now - (inst.created_t + self.timing.running_s))
        storage_hour = inst.storage_cost * inst.disk_gb / HOURS_PER_MONTH
        return Bill(inst.id, inst.dph_base * running_s / 3600, storage_hour * billed_s / 3600,
                    running_s, billed_s, destroyed)

    def bill(self, instance_id: int) -> Bill:
        """What the instance cost so far (or in all, once destroyed)."""
        with self.lock:
            if instance_id in self.bills:
                return self.bills[instance_id]
            return self.bill_of(self._existing(instance_id, "instance_not_found"))

    # -- logs -----------------------------------------------------------------------------

    def append_log(self, instance_id: int, text: str) -> None:
        with self.lock:
            self._existing(instance_id, "logs_bad_id")
            lines = self.logs.setdefault(instance_id, [])
            lines.extend(text.splitlines())
            del lines[:-LOG_KEEP_LINES]

    def request_logs(self, instance_id: int, tail: int | None, grep: str | None) -> str:
        """A token for the log text as it is now (its last ``tail`` lines, without one the
        last :data:`LOG_TAIL_DEFAULT`); served ``logs_ready_s`` later."""
        tail = LOG_TAIL_DEFAULT if tail is None else tail
        with self.lock:
            self._existing(instance_id, "logs_bad_id")
            lines = [ln for ln in self.logs.get(instance_id, []) if not grep or grep in ln]
            lines = lines[-tail:] if tail else []
            token = f"{self._rng.getrandbits(128):032x}"
            self.log_requests[token] = LogRequest(
                instance_id, self.now() + self.timing.logs_ready_s,
                "".join(f"{ln}\n" for ln in lines))
            return token

    def log_text(self, token: str) -> str | None:
        """The text behind ``token`` once ready; None before, or for an unknown token."""
        with self.lock:
            found = self.log_requests.get(token)
        if found is None or self.now() < found.ready_t:
            return None
        return found.text

    # -- ssh keys -------------------------------------------------------------------------

    def add_ssh_key(self, key: str) -> SshKey:
        with self.lock:
            record = SshKey(self._next_key_id, key,
                            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            self.ssh_keys[record.id] = record
            self._next_key_id += 1
            return record

    def delete_ssh_key(self, key_id: int) -> None:
        with self.lock:
            if self.ssh_keys.pop(key_id, None) is None:
                raise VastRefusal(400, "no_ssh_key")  # delete_ssh_key.yaml's "not_found" example
