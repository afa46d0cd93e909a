"""What a scenario expects of the kernel and what it saw, apart from pytest: expectations
(:mod:`~netlab.expect.drops`: ``Drop``, ``by_kernel``), scenario reports and their diff
(:mod:`~netlab.expect.report`), and the kernel's own facts and state (:mod:`~netlab.expect.kernel`:
modules, config, taint). The pytest plugin, the workshop checks, ``netlab matrix`` and ``netlab
report diff`` all use them; ``netlab.testing`` is the public import for tests.
"""
