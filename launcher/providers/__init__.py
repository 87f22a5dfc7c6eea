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
           "VolumeRequest", "provider_for"]


def provider_for(name: str, **options) -> Provider:
    """The provider called ``name`` (``vultr``), configured from the environment."""
    if name == "vultr":
        from launcher.providers.vultr import VultrProvider

        return VultrProvider.from_env(**options)
    from launcher.errors import ConfigError

    raise ConfigError(f"provider: expected 'vultr', not {name!r}")
