"""How long a Vast instance takes to become ``running``, and when its logs are ready."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class VastTiming:
    """Seconds on the emulator's clock, counted from a create (or a start after a stop).

    ``actual_status`` is ``null`` until ``provisioning_s``, ``loading`` until ``running_s``,
    then ``running``. A ``result_url`` from ``request_logs`` answers 404 until
    ``logs_ready_s`` after the request (vast-cli polls it 30 times, 0.3 s apart).
    """

    provisioning_s: float = 1.0
    running_s: float = 3.0
    logs_ready_s: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) < 0:
                raise ValueError(f"VastTiming.{f.name} must not be negative")
        if self.provisioning_s > self.running_s:
            raise ValueError("VastTiming.provisioning_s must not exceed running_s")

    @classmethod
    def instant(cls) -> VastTiming:
        """Running on first read; logs ready at once."""
        return cls(0.0, 0.0, 0.0)

    @classmethod
    def realistic(cls) -> VastTiming:
        """A few seconds (≤ 3 s): enough to exercise a client's waits offline."""
        return cls()
