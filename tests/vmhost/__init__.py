"""Virtual machines for the Vultr emulator: the test guest image and a QEMU backend.

:func:`ensure_image` builds (once per recipe, then cached) a Debian bookworm guest with the
image bake's own provisioning scripts; :class:`VmHypervisor` plugs into the emulator's
hypervisor hook and makes every instance a QEMU (TCG) virtual machine booted from that image:
cloud-init's real Vultr datasource reads the instance's ``/v1.json`` (and so its user data)
from a per-instance metadata endpoint at 169.254.169.254; attaching a volume hot-plugs a
virtio disk whose serial is the block's ``mount_id``; deleting the instance stops the VM. The
guest reaches nothing but the loopback services forwarded to it explicitly.
"""

from vmhost.image import GuestImage, ImageError, cached_image, ensure_image
from vmhost.recipe import Recipe, default_recipe

__all__ = ["GuestImage", "ImageError", "Recipe", "cached_image", "default_recipe",
           "ensure_image"]
