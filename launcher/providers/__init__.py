"""Where runs are placed. ``base`` states the contract; ``vultr`` keeps it for Vultr.

The commands pick one with ``--provider`` (``launcher.commands.runcommon.open_provider``).
"""

from launcher.providers.base import (
    PROVIDER_NAMES,
    Capabilities,
    ImageRef,
    InstanceRef,
    InstanceRequest,
    Provider,
    RunResources,
    SshKeyRef,
    VolumeRef,
    VolumeRequest,
)

__all__ = ["PROVIDER_NAMES", "Capabilities", "ImageRef", "InstanceRef", "InstanceRequest",
           "Provider", "RunResources", "SshKeyRef", "VolumeRef", "VolumeRequest"]

