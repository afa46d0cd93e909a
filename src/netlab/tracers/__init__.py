"""Tracers: where in the kernel each packet of a lab was dropped, and why.

Every tracer implements :class:`netlab.tracers.base.Tracer`: ``probe()`` says whether it can
run on this machine and, if not, exactly why; ``start(lab)`` returns a session; the session's
``stop()`` returns a :class:`~netlab.tracers.events.TraceResult` of drop events attributed to
the lab's nodes and devices. Built-ins and third-party tracers are found through
:mod:`netlab.tracers.registry`.
"""
