"""Kernel modules a lab needs: the one change netlab makes outside a lab's namespaces.

Stock kernels build ``bridge``, ``veth`` and ``br_netfilter`` as modules. Loading them is
announced (``netlab up`` prints it) and never undone: another lab, or the host, may use them by
then. Loading ``br_netfilter`` would change how the *host's own* bridges behave (it makes their
IPv4/IPv6/ARP traffic traverse iptables, because ``net.bridge.bridge-nf-call-*`` default to 1
in every namespace, the root one included), so right after loading it we set the root
namespace's values back to what the host had: 0, since without the module bridged traffic
never reached iptables. A lab that wants them on sets them in its own nodes.

A kernel with no module support (every driver built in, or none) has no ``/lib/modules``; then
nothing is loaded and the feature's absence shows up where it is used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from netlab.errors import KernelFeatureError
from netlab.plan.steps import ModuleNeed

BRIDGE_NF_SYSCTLS = ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables", "bridge-nf-call-arptables")
ROOT_BRIDGE_SYSCTL_DIR = Path("/proc/sys/net/bridge")


@dataclass
class Loaded:
    """A module this call loaded, and the host settings put back after loading it."""

    module: str
    why: str
    restored: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        text = f"loaded kernel module {self.module} ({self.why})"
        if self.restored:
            keys = ", ".join(f"{k}={v}" for k, v in self.restored.items())
            text += f"; the host's net.bridge.{{{keys}}} set back as before"
        return text


def _present(module: str) -> bool:
    if module == "br_netfilter":
        return ROOT_BRIDGE_SYSCTL_DIR.is_dir()
    return Path("/sys/module", module).is_dir()


def _can_load() -> bool:

    return Path("/lib/modules", os.uname().release).is_dir() and shutil.which("modprobe") is not None


def ensure(needs: tuple[ModuleNeed, ...]) -> list[Loaded]:
    """Load what is absent; must run in the root network namespace (it restores the host's sysctls)."""
    loaded: list[Loaded] = []
    for need in needs:
        if _present(need.module) or not _can_load():
            continue

        proc = subprocess.run(["modprobe", need.module], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            detail = proc.stderr.strip().splitlines()
            raise KernelFeatureError(
                f"this kernel cannot load module {need.module}, needed for {need.why}: "
                f"{detail[-1] if detail else f'modprobe exit {proc.returncode}'}"
            )
        if not _present(need.module):  # built in after all, or a name modprobe resolved elsewhere
            continue
        item = Loaded(need.module, need.why)
        if need.module == "br_netfilter":
            for key in BRIDGE_NF_SYSCTLS:
                path = ROOT_BRIDGE_SYSCTL_DIR / key
                if path.exists():
                    path.write_text("0")
                    item.restored[key] = "0"
        loaded.append(item)
    return loaded
