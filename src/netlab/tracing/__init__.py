"""A trace from start to result: the collectors that run while traffic flows (the tracer's
session, the nodes' rule counters, the kernel's nftables rule trace, a capture of every frame),
each with the same lifecycle, and the one :class:`~netlab.tracing.trace.Trace` that runs them
for ``netlab trace``, the pytest plugin, the workshop checks and ``netlab.trace``."""
