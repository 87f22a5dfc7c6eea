"""Walk the candidate offers, one after another, as capacity runs out under a launch.

Availability is a snapshot: a plan listed in stock can still be refused at create time ("sold
out", "not available"). :class:`FailoverPlan` holds the candidates in launch order (see
:func:`launcher.providers.offers.candidates`), hands out the current one, and when the
provisioner gets a capacity error records why that offer was skipped and hands out the next.
When it runs dry, :meth:`FailoverPlan.tried` is the table the final message shows. Pure: no
I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from launcher.providers.offers import Offer


@dataclass(frozen=True)
class Skipped:
    """An offer that was tried and refused, and the provider's one-line reason."""

    offer: Offer
    reason: str

    def as_row(self) -> dict[str, str]:
        o = self.offer
        return {"plan": o.plan_id, "region": o.region, "price": f"${o.price_per_hour:.2f}/h",
                "why skipped": self.reason}


class FailoverPlan:
    """The candidates in order; ``current`` is the next to try (None once exhausted)."""

    def __init__(self, offers: Iterable[Offer]) -> None:
        self._offers = tuple(offers)
        self._index = 0
        self._skipped: list[Skipped] = []

    @property
    def current(self) -> Offer | None:
        return self._offers[self._index] if self._index < len(self._offers) else None

    @property
    def remaining(self) -> tuple[Offer, ...]:
        """The current offer and every one after it."""
        return self._offers[self._index:]

    @property
    def tried(self) -> tuple[Skipped, ...]:
        return tuple(self._skipped)

    @property
    def exhausted(self) -> bool:
        return self.current is None

    def next_after_capacity_error(self, offer: Offer, error: BaseException | str) -> Offer | None:
        """Record that ``offer`` (the current one) was refused for ``error``; the next offer,
        or None when none is left."""
        if offer != self.current:
            raise ValueError(f"{offer.plan_id} in {offer.region} is not the current offer")
        text = str(error).strip().splitlines()
        self._skipped.append(Skipped(offer, text[0] if text else type(error).__name__))
        self._index += 1
        return self.current

    def summary(self) -> str:
        """One line for the final message: how many were tried, and that none was left."""
        if not self._offers:
            return "no candidate offer to try"
        if not self.exhausted:
            return f"{len(self._skipped)} of {len(self._offers)} offers refused so far"
        return (f"all {len(self._offers)} candidate offers were refused for capacity; "
                "see the table of what was tried")
