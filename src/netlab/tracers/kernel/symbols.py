"""Kernel addresses to ``function+offset``, from /proc/kallsyms (the seeds did it by hand)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from netlab.errors import NetlabError, PrivilegeError

KALLSYMS = Path("/proc/kallsyms")
MODULES = Path("/proc/modules")


@dataclass(frozen=True)
class Symbols:
    """Sorted text symbols of the running kernel."""

    addresses: tuple[int, ...]
    names: tuple[str, ...]

    def lookup(self, address: int) -> tuple[str, int, int | None] | None:
        """(function, offset, size) of the text symbol containing ``address``."""
        i = bisect.bisect_right(self.addresses, address) - 1
        if i < 0:
            return None
        size = self.addresses[i + 1] - self.addresses[i] if i + 1 < len(self.addresses) else None
        return self.names[i], address - self.addresses[i], size


def parse(text: str) -> Symbols:
    """Parse kallsyms text (text symbols only: t/T/w/W)."""
    pairs = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] in "tTwW":
            pairs.append((int(parts[0], 16), parts[2]))
    pairs.sort()
    return Symbols(tuple(a for a, _ in pairs), tuple(n for _, n in pairs))


def kernel_symbols() -> Symbols:
    """The running kernel's symbols; addresses read as zero without root, which we refuse.

    Read again whenever the loaded modules changed: a lab's ``up`` may load vxlan, bridge or
    8021q, whose functions are in kallsyms only from then on, and an address in them looked up
    in an older table names whatever module lay below (``nft_pipapo_insert`` for vxlan_rcv).
    """
    return _symbols(_modules())


def _modules() -> tuple[tuple[str, str], ...]:
    """(name, load address) of each loaded module: what changes kallsyms (not the use counts)."""
    try:
        lines = MODULES.read_text().splitlines()
    except OSError:
        return ()
    return tuple((parts[0], parts[-1]) for parts in (line.split() for line in lines) if parts)


@lru_cache(maxsize=1)
def _symbols(_modules: tuple[tuple[str, str], ...]) -> Symbols:
    symbols = parse(KALLSYMS.read_text())
    if not symbols.addresses or symbols.addresses[-1] == 0:
        raise PrivilegeError("/proc/kallsyms shows no addresses: run as root (kptr_restrict)")
    return symbols


def symbolize(address: int | str, symbols: Symbols | None = None) -> str:
    """``0xffffffff81586d82`` -> ``__netif_receive_skb_core.constprop.0+0x7e6/0x1040``."""
    value = int(address, 16) if isinstance(address, str) else address
    found = (symbols or kernel_symbols()).lookup(value)
    if found is None:
        raise NetlabError(f"{value:#x} is below every kernel symbol")
    name, offset, size = found
    return f"{name}+{offset:#x}" + (f"/{size:#x}" if size else "")
