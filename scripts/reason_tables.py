"""Which drop reasons each matrix kernel has, for ``netlab explain`` on any machine.

    python scripts/reason_tables.py tests/data/recorded/raw > src/netlab/workshop/kernel_reasons.json

reads each recorded kernel's ``skb.kfree_skb.format`` (scripts/record_raw_trace.py saves it
from inside the kernel) and writes {"kernels": {release: [reason names]}}. A kernel without a
reason field (5.10) has an empty list.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from netlab.tracers.kernel.reasons import parse_format


def main(root: Path) -> None:
    kernels = {
        d.name: sorted(parse_format((d / "skb.kfree_skb.format").read_text()).values())
        for d in sorted(root.iterdir())
        if (d / "skb.kfree_skb.format").is_file()
    }
    print(json.dumps({"kernels": kernels}, indent=1, sort_keys=True))  # noqa: T201


if __name__ == "__main__":
    main(Path(sys.argv[1]))
