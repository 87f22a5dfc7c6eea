"""Local-process hypervisors for the emulators: the offline demo's machines.

Vast.ai's machines are containers: :class:`ContainerSandbox` runs an instance's onstart text
as local processes in a folder that stands for the container's "/" (see
:mod:`launcher.sandbox.container`). Vultr's are below.

``Emulator(hypervisor=ProcessHypervisor(root_dir))`` makes every instance the emulator creates
boot for real, as far as one unprivileged machine allows: the instance's cloud-init document
is read, its files are written under ``<root_dir>/<instance-id>/host/``, and the runner it
carries is started exactly as its systemd unit says, against that host root. The runner then
talks to the emulator, the bucket (SeaweedFS on 127.0.0.1 in the demo) and the sandbox's
metadata server — nothing beyond loopback — and deletes its volume and instance itself.

Only cpu_only documents run (there is no GPU, and the CPU matmul probe is simulated); block
devices, mkfs, mount, iptables are sandbox fakes (``tools/``). Each machine's
``host/etc/launcher/sandbox.json`` lists how it differs from a real instance.
"""

from launcher.sandbox.boot import BootRefused
from launcher.sandbox.container import ContainerRequest, ContainerSandbox
from launcher.sandbox.hypervisor import MachineState, ProcessHypervisor
from launcher.sandbox.local import (
    default_python,
    default_trainer_user,
    find_s5cmd,
)

__all__ = [
    "BootRefused",
    "ContainerRequest",
    "ContainerSandbox",
    "MachineState",
    "ProcessHypervisor",
    "default_python",
    "default_trainer_user",
    "find_s5cmd",
]
