"""What a test of kernel behaviour imports: the one documented place.

    from netlab.testing import Drop, Lab, TraceFactory, Traffic, assert_dropped, by_kernel

    @pytest.mark.netlab_topology("bridge3")
    def test_udp_to_a_closed_port(netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory) -> None:
        with netlab_trace(netlab_lab) as t:
            netlab_traffic.inject("ns-calm1", "calmveth1", "udp", dst="198.51.100.2", count=3)
        assert_dropped(t.result, Drop("__udp4_lib_rcv", "NO_SOCKET", "ns-calm2"), count=3)

The fixtures come from the pytest plugin netlab installs (``-p netlab.pytest_plugin.plugin``
is automatic through its entry point):

* ``netlab_up(topology, **up_options) -> Lab``: bring a topology up for this test only;
* ``netlab_lab: Lab``: the lab of the test's ``@pytest.mark.netlab_topology("name")``;
* ``netlab_traffic: Traffic``: ``inject(node, ifname, recipe, **options)``,
  ``flow(src, dst, size, **options)``, captures, for ``netlab_lab``;
* ``netlab_tracer: Tracer``: the tracer of ``@pytest.mark.netlab_tracer("name")`` or
  ``--netlab-tracer`` (skipped, with the reason, where it cannot run);
* ``netlab_trace(lab, *, stack=False) -> Trace``: a context manager; ``.result`` is the
  :class:`TraceResult` once the block ends, and its drops go to ``--netlab-report``.

Outside the fixtures, :func:`trace` is ``netlab.trace``: ``with trace(lab, "bpftrace") as t:``.

:func:`lose_every_nth_tcp_packet` makes a node a lossy hop for TCP flows; :func:`until` polls a
condition the kernel will make true (a neighbour entry failing, a counter moving) instead of
sleeping for a time one hopes is enough.

Markers: ``netlab_topology(name)``, ``netlab_tracer(name)``, and ``netlab_needs(*modules,
config=[options])``, which skips with the kernel's reason where one is missing. With
``--netlab-check-kernel`` every test also fails if the kernel became tainted or logged a WARN
or BUG meanwhile; :func:`mark` / :func:`assert_kernel_clean` do the same around any block.
"""

from __future__ import annotations

from netlab.expect.drops import Drop, NewBehaviour, Untraced, by_kernel
from netlab.expect.kernel import Mark, assert_kernel_clean, mark
from netlab.lab import Lab, Node
from netlab.pytest_plugin.assertions import (
    DropAssertionError,
    assert_counter,
    assert_dropped,
    assert_not_dropped,
    assert_path,
)
from netlab.pytest_plugin.plugin import LabFactory, TraceFactory
from netlab.runtime.wait import until
from netlab.tracers.base import TraceOptions, Tracer
from netlab.tracers.events import DropEvent, TraceResult
from netlab.tracers.registry import get as get_tracer
from netlab.tracing.trace import Trace, trace
from netlab.traffic.api import Traffic

__all__ = [
    "Drop",
    "DropAssertionError",
    "DropEvent",
    "Lab",
    "LabFactory",
    "Mark",
    "NewBehaviour",
    "Trace",
    "TraceFactory",
    "TraceOptions",
    "TraceResult",
    "Tracer",
    "Traffic",
    "Untraced",
    "assert_counter",
    "assert_dropped",
    "assert_kernel_clean",
    "assert_not_dropped",
    "assert_path",
    "by_kernel",
    "get_tracer",
    "lose_every_nth_tcp_packet",
    "mark",
    "trace",
    "until",
]


def lose_every_nth_tcp_packet(node: Node, nth: int = 20) -> str:
    """Make ``node`` drop every ``nth`` TCP packet it forwards (an iptables ``statistic`` rule,
    first in FORWARD) and return the rule as ``iptables-save`` prints it. Every nth, not a random
    share: with GSO a flow of a few MiB is only a few dozen large packets, and a random 5 % would
    sometimes drop none."""
    rule = ["-p", "tcp", "-m", "statistic", "--mode", "nth", "--every", str(nth), "--packet", "0", "-j", "DROP"]
    node.run(["iptables", "-w", "-I", "FORWARD", *rule], check=True)
    return " ".join(["-A", "FORWARD", *rule])
