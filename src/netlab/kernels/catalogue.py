"""Which kernels the matrix knows, and how a user names them.

A kernel of the matrix is a Debian suite's stock ``linux-image-amd64``: the kernel a user of that
release actually runs. It is named by its series (``5.10``, ``6.1``, ``6.12``, ``7.2``), which is
what people say, not by its ABI (``6.1.0-50-amd64``), which changes with every point release.
``running`` is the kernel this machine booted; it needs no VM. Pure data: nothing here touches
the network, the cache or the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

from netlab.errors import NetlabError

RUNNING = "running"


@dataclass(frozen=True)
class KernelSpec:
    """One kernel of the matrix: its series, the Debian suite that ships it, and why we test it."""

    series: str
    suite: str
    why: str

    @property
    def label(self) -> str:
        return f"{self.series} ({self.suite})"


#: the matrix, oldest first; the suites' ``linux-image-amd64`` must be of this series
CATALOGUE: tuple[KernelSpec, ...] = (
    KernelSpec("5.10", "bullseye", "no drop reasons; the seeds' dropwatch-era kernels"),
    KernelSpec("6.1", "bookworm", "the workshop VM's kernel; pointers hashed in tracefs text"),
    KernelSpec("6.12", "trixie", "Debian stable; rx_sk in skb:kfree_skb"),
    KernelSpec("7.2", "sid", "newest Debian kernel; image split into binary and modules"),
)


def lookup(name: str) -> KernelSpec:
    """The catalogue entry for a series (``6.1``) or suite (``bookworm``); one clear error otherwise."""
    for spec in CATALOGUE:
        if name in (spec.series, spec.suite):
            return spec
    known = ", ".join(f"{s.series} ({s.suite})" for s in CATALOGUE)
    raise NetlabError(f"unknown kernel {name!r}: known kernels are {known}, and {RUNNING!r}")


def resolve_names(names: list[str] | tuple[str, ...]) -> list[str]:
    """Validate ``-k`` names in the order given; duplicates removed. ``running`` stays as is."""
    out: list[str] = []
    for name in names:
        key = RUNNING if name == RUNNING else lookup(name).series
        if key not in out:
            out.append(key)
    if not out:
        raise NetlabError("no kernels given", hint=f"use -k {CATALOGUE[0].series} or -k {RUNNING}")
    return out
