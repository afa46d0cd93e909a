"""Which kernels the matrix knows, and how a user names them.

A kernel of the matrix is a Debian suite's stock ``linux-image-amd64``: the kernel a user of that
release actually runs. It is named by its series (``5.10``, ``6.1``, ``6.12``, ``7.2``), which is
what people say, not by its ABI (``6.1.0-50-amd64``), which changes with every point release.
Debian's other flavours of the same suites are named ``SERIES-FLAVOUR``: ``6.12-cloud`` (the
kernel most cloud VMs run, ``linux-image-cloud-amd64``) and ``6.12-rt`` (PREEMPT_RT).
``running`` is the kernel this machine booted; it needs no VM. Pure data: nothing here touches
the network, the cache or the kernel. (Kernels that are not Debian's, a build tree, an image or
a ``.deb``, are named by their path: :mod:`netlab.kernels.local`.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from netlab.errors import NetlabError

RUNNING = "running"


@dataclass(frozen=True)
class KernelSpec:
    """One kernel of the matrix: its series, the Debian suite that ships it, and why we test it."""

    series: str
    suite: str
    why: str
    flavour: str = ""  # "" (Debian's default, linux-image-amd64), "cloud" or "rt"

    @property
    def name(self) -> str:
        """What the user typed after ``-k``, and the cache's key: ``6.12`` or ``6.12-cloud``."""
        return f"{self.series}-{self.flavour}" if self.flavour else self.series

    @property
    def meta_package(self) -> str:
        """The metapackage whose dependency is the suite's current kernel of this flavour."""
        return f"linux-image-{self.flavour}-amd64" if self.flavour else "linux-image-amd64"

    @property
    def label(self) -> str:
        return f"{self.name} ({self.suite})"


#: the matrix, oldest first; the suites' ``linux-image-amd64`` must be of this series
CATALOGUE: tuple[KernelSpec, ...] = (
    KernelSpec("5.10", "bullseye", "no drop reasons; the seeds' dropwatch-era kernels"),
    KernelSpec("6.1", "bookworm", "the workshop VM's kernel; pointers hashed in tracefs text"),
    KernelSpec("6.12", "trixie", "Debian stable; rx_sk in skb:kfree_skb"),
    KernelSpec("7.2", "sid", "newest Debian kernel; image split into binary and modules"),
)


#: Debian's flavours besides the default, in every suite of the catalogue
FLAVOURS = {"cloud": "the kernel cloud images run (fewer drivers)", "rt": "PREEMPT_RT"}


def lookup(name: str) -> KernelSpec:
    """The catalogue entry for a series (``6.1``), suite (``bookworm``) or either with a flavour
    (``6.12-cloud``, ``trixie-rt``); one clear error otherwise."""
    base, _, flavour = name.partition("-")
    if flavour and flavour not in FLAVOURS:
        raise NetlabError(f"unknown flavour {flavour!r} in {name!r}: Debian's are {', '.join(sorted(FLAVOURS))}")
    for spec in CATALOGUE:
        if base in (spec.series, spec.suite):
            return replace(spec, flavour=flavour) if flavour else spec
    known = ", ".join(f"{s.series} ({s.suite})" for s in CATALOGUE)
    raise NetlabError(
        f"unknown kernel {name!r}: known kernels are {known}, each also as SERIES-cloud or SERIES-rt,"
        f" {RUNNING!r}, or the path of a kernel build tree, image or .deb"
    )
