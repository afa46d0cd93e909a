"""sysctls inside a node: written through /proc/sys while the thread is in the namespace.

/proc/sys/net resolves against the network namespace of the *calling thread*, so entering the
node's namespace around the write is enough; no process is spawned. A key that exists on the
host but not here is one of the few net.* settings that are global (not per namespace), and
writing it would have changed the host: we refuse it by name.
"""

from __future__ import annotations

from netlab.plan.steps import WriteSysctl
from netlab.runtime.netns import entered
from netlab.runtime.procsys import key_path


class SysctlError(Exception):
    """A sysctl could not be written; the message says why in the user's terms."""


def write(netns: str, step: WriteSysctl) -> None:
    """Write one sysctl in ``netns``."""
    target = key_path(step.key)
    with entered(netns):
        try:
            target.write_text(step.value)
        except FileNotFoundError:
            raise SysctlError(
                f"sysctl {step.key} does not exist inside a network namespace (it is global to the"
                " host, or its interface is missing)"
            ) from None
        except OSError as exc:
            raise SysctlError(f"sysctl {step.key}={step.value}: {exc.strerror}") from None


def read(netns: str, key: str) -> str:
    """Read one sysctl in ``netns``."""
    with entered(netns):
        return key_path(key).read_text().strip()
