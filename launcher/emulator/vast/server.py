"""The :class:`VastEmulator`: a stateful Vast.ai API on 127.0.0.1, in a background thread."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from launcher.emulator.app import App
from launcher.emulator.control import Control, ControlError, json_body, shown
from launcher.emulator.faults import FaultPlan
from launcher.emulator.keys import Keyring
from launcher.emulator.ratelimit import Limiter, RateLimit
from launcher.emulator.server import LoopbackEmulator
from launcher.emulator.vast.errors import VAST_ERRORS, VastRefusal
from launcher.emulator.vast.hypervisor import NoopVastHypervisor, VastHypervisor
from launcher.emulator.vast.records import Bill
from launcher.emulator.vast.routes import ROUTE_KEYS, V0, VastDialect
from launcher.emulator.vast.state import VastStore
from launcher.emulator.vast.timing import VastTiming
from launcher.emulator.wire import Request, Response

ROUTE_HINT = ('route: expected "METHOD /path" of a Vast endpoint, e.g. "PUT /asks/{id}/" or '
              '"GET /api/v1/instances/"')


class VastEmulator(LoopbackEmulator):
    """A loopback Vast.ai API; ``start()`` returns ``http://127.0.0.1:PORT/api/v0``.

    ``api_key`` is the account key (can do everything); each create adds the instance's
    restricted key. ``timing``/``clock`` drive statuses lazily; ``hypervisor`` is told about
    creates, stops, starts and destroys; ``rate_limit`` is off by default (Vast's limits are
    per endpoint; see docs/emulator.md); ``seed`` makes ids reproducible.
    """

    api_prefix = V0
    thread_name = "vast-emulator"
    server_version = "vast-emulator"

    def __init__(self, api_key: str = "test-key", timing: VastTiming | None = None,
                 clock: Callable[[], float] | None = None,
                 hypervisor: VastHypervisor | None = None, rate_limit: RateLimit | None = None,
                 seed: int | None = 0, port: int = 0, latency_s: float = 0.0) -> None:
        if not api_key:
            raise ValueError("the emulator needs a non-empty api_key")
        super().__init__(port)
        self._faults = FaultPlan(set(ROUTE_KEYS), VAST_ERRORS, retry_after_default=None,
                                 prefix=V0)
        keys = Keyring(api_key)
        store = VastStore(clock or time.monotonic, timing or VastTiming.realistic(),
                          hypervisor or NoopVastHypervisor(), seed, keys, lambda: self.url)
        control = Control(self._faults, keys, key_env="VAST_API_KEY", route_hint=ROUTE_HINT,
                          endpoints={"/offers": (("GET", "POST"), self._control_offers)})
        self._app = App(store, keys, Limiter(rate_limit or RateLimit(per_second=None)),
                        self._faults, self._stopping, latency_s, dialect=VastDialect(),
                        control=control)

    def __enter__(self) -> VastEmulator:
        super().__enter__()
        return self

    @property
    def state(self) -> VastStore:
        """The store, for tests that inspect or force state."""
        return self._app.store

    def set_offer(self, offer_id: int, *, rented: bool | None = None,
                  rentable: bool | None = None, gone: bool = False) -> None:
        """Mark an offer rented / unrentable (a create then answers 410), or remove it
        (``gone``: a create answers 404): Vast's ``set_stock``."""
        self.state.set_offer(offer_id, rented=rented, rentable=rentable, gone=gone)

    def bill(self, instance_id: int) -> Bill:
        """What an instance has cost so far (or in all, once destroyed)."""
        return self.state.bill(instance_id)

    def append_log(self, instance_id: int, text: str) -> None:
        """Add lines to an instance's container log (served by ``request_logs``)."""
        self.state.append_log(instance_id, text)

    def container_output(self, instance_id: str, text: str) -> None:
        """A container's output line into its instance's container log (the container
        sandbox's ``output`` callback). A line of an instance already destroyed is dropped:
        its log went with it."""
        with contextlib.suppress(VastRefusal):
            self.append_log(int(instance_id), text)

    def _control_offers(self, req: Request) -> Response:
        """GET: offer id → rented/rentable; POST ``{"offer": id, "rented": true}`` (or
        ``"rentable"``, or ``"gone": true``)."""
        store = self.state
        if req.method == "GET":
            with store.lock:
                rows = {str(k): {"rented": r["rented"], "rentable": r["rentable"]}
                        for k, r in store.offers.items()}
            return Response(200, {"offers": rows})
        body = json_body(req)
        offer = body.get("offer")
        extra = set(body) - {"offer", "rented", "rentable", "gone"}
        flags = {k: body.get(k) for k in ("rented", "rentable", "gone") if k in body}
        if extra or not flags or not all(isinstance(v, bool) for v in flags.values()):
            raise ControlError(400, "give offer and one or more of rented, rentable, gone "
                                    f"(true/false); unknown fields: {sorted(extra)}")
        if isinstance(offer, bool) or not isinstance(offer, int) or offer not in store.offers:
            raise ControlError(400, f"offer: no such offer id {shown(offer)}")
        self.set_offer(offer, rented=flags.get("rented"), rentable=flags.get("rentable"),
                       gone=bool(flags.get("gone")))
        return Response(200, {"offer": offer, **flags})
