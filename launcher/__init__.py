"""Fire-and-forget GPU training runs on Vultr."""

__version__ = "0.1.0"
