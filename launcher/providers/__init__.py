"""Where runs are placed. ``base`` states the contract; ``vultr`` keeps it for Vultr.

A Vast.ai provider can follow behind the same contract and one ``--provider`` flag.
"""

from launcher.providers.base import (
    InstanceRef,
    InstanceRequest,
    Provider,
    RunResources,
    VolumeRef,
    VolumeRequest,
)

__all__ = ["InstanceRef", "InstanceRequest", "Provider", "RunResources", "VolumeRef",
           "VolumeRequest"]

