"""Runtime primitives every layer that touches a live lab uses: network namespaces (made,
entered, removed), processes (identity by pid and start time, ending them by PID), the lab's
journal, and the netlink layer. ``apply`` builds labs with them; ``lab``, ``traffic``,
``tracers`` and ``teardown`` use them at run time. Nothing here knows topologies or plans.
"""
