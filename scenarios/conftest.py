"""The kernel-behaviour regression suite. Fixtures come from the netlab pytest plugin.

Each scenario is one kernel behaviour, explained in its docstring in plain words (the
workshop labs reuse them), reproduced by a real cause in a lab, and asserted as "dropped at
FUNCTION with REASON in NODE". Expectations are keyed by kernel version range: they were
measured on 6.18; on a kernel outside every range a scenario reports what it observed as
*new* instead of guessing (``--netlab-report`` records it).
"""
