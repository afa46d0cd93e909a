"""The catalogue of a full matrix run, shipped with netlab for ``netlab reasons`` without a
matrix of one's own (``src/netlab/expect/last_run.json``).

    .venv/bin/python scripts/ship_catalogue.py MATRIX_DIR

Run it on a full run's output (every kernel of the catalogue); the file records the run's date.
The run's ``running`` kernel is left out: it is the kernel of the machine that made the run,
and ``netlab reasons`` puts the reader's own beside the shipped ones.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from netlab.expect.catalogue import LAST_RUN, snapshot
from netlab.kernels.catalogue import RUNNING
from netlab.kernels.matrix import reason_catalogue


def main(directory: Path) -> None:
    created = json.loads((directory / "matrix.json").read_text()).get("created", "")
    found = reason_catalogue(directory)
    data = snapshot(found, created[:10])
    data["kernels"] = [k for k in data["kernels"] if k["name"] != RUNNING]
    named = {k["name"] for k in data["kernels"]}
    data["reproduced"] = {
        reason: kept
        for reason, scenarios in data["reproduced"].items()
        if (kept := {s: [k for k in on if k in named] for s, on in scenarios.items() if set(on) & named})
    }
    LAST_RUN.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    sys.stdout.write(f"{LAST_RUN}: {len(data['kernels'])} kernels, {len(data['reproduced'])} reasons reproduced\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
