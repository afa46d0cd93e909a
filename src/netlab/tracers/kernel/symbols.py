"""Kernel addresses to ``function+offset``, from /proc/kallsyms (the seeds did it by hand)."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import cache, lru_cache
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


#: a text symbol (t, T, w, W) of the core kernel: nothing after its name
_CORE_TEXT = re.compile(r"^([0-9a-f]+) [tTwW] (\S+)$", re.MULTILINE)
#: a text symbol of a module: its name is followed by the module's (``\t[vxlan]``)
_MODULE_TEXT = re.compile(r"^([0-9a-f]+) [tTwW] (\S+)\t\[", re.MULTILINE)

Pairs = list[tuple[int, str]]


def parse(text: str) -> Symbols:
    """Parse kallsyms text (text symbols only: t/T/w/W)."""
    return _with_modules(_symbols_of(_pairs(_CORE_TEXT, text)), _pairs(_MODULE_TEXT, text))


def _pairs(pattern: re.Pattern[str], text: str) -> Pairs:
    return sorted((int(address, 16), name) for address, name in pattern.findall(text))


def _symbols_of(pairs: Pairs) -> Symbols:
    return Symbols(tuple(a for a, _ in pairs), tuple(n for _, n in pairs))


def _with_modules(core: Symbols, modules: Pairs) -> Symbols:
    """The core's table and the modules' symbols in one: modules lie above the core kernel's
    text, so this is a concatenation (else one sort)."""
    if not modules:
        return core
    if core.addresses and modules[0][0] < core.addresses[-1]:
        return _symbols_of(sorted([*zip(core.addresses, core.names, strict=True), *modules]))
    extra = _symbols_of(modules)
    return Symbols(core.addresses + extra.addresses, core.names + extra.names)


def kernel_symbols() -> Symbols:
    """The running kernel's symbols; addresses read as zero without root, which we refuse.

    The modules' symbols are read again whenever the loaded modules changed: a lab's ``up``
    may load vxlan, bridge or 8021q, whose functions are in kallsyms only from then on, and an
    address in them looked up in an older table names whatever module lay below
    (``nft_pipapo_insert`` for vxlan_rcv). The core kernel's, nearly all of the table, never
    change and are parsed once per process (a parse of the whole table costs seconds in a TCG
    guest).
    """
    return _symbols(_modules())


def _modules() -> tuple[tuple[str, str], ...]:
    """(name, load address) of each loaded module: what changes kallsyms (not the use counts)."""
    try:
        lines = MODULES.read_text().splitlines()
    except OSError:
        return ()
    return tuple((parts[0], parts[-1]) for parts in (line.split() for line in lines) if parts)


@cache
def _core() -> Symbols:
    return _symbols_of(_pairs(_CORE_TEXT, KALLSYMS.read_text()))


@lru_cache(maxsize=1)
def _symbols(_modules: tuple[tuple[str, str], ...]) -> Symbols:
    symbols = _with_modules(_core(), _pairs(_MODULE_TEXT, KALLSYMS.read_text()))
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
