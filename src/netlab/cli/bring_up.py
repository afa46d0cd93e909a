"""What ``netlab up`` does: one body, whether click parsed the arguments (:mod:`netlab.cli.lifecycle`)
or the plain ``netlab up NAME`` of :mod:`netlab.cli.entry` did; the two cannot drift apart."""

from __future__ import annotations

import json
import sys

from netlab import bringup
from netlab.cli import render
from netlab.cli.commands import err


def bring_up(
    topology: str, *, instance: str | None = None, timeout: float = bringup.DEFAULT_TIMEOUT, as_json: bool = False
) -> None:
    """Build a lab (held by no process: it outlives the command) and print what it is."""
    with render.progress(f"bringing up {topology}", enabled=not as_json) as report:
        built = bringup.build(topology, instance=instance, timeout=timeout, hold=False, progress=report)
    for line in built.modules_loaded:
        err(line)
    try:
        summary = built.summary()
        if as_json:
            print(json.dumps(summary, indent=2))
        else:
            render.lab_up(summary, built.entry.description)
    except KeyboardInterrupt:
        err(f"interrupted; lab {built.name} is up (netlab down {built.name} removes it)")
        sys.exit(130)
