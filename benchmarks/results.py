"""Where a benchmark's figures go: ``benchmarks/results/NAME.json``, with the machine they were
measured on. ``scripts/figures.py`` makes docs/figures.md from these files, so the figures the
documentation shows are the ones a run printed, never typed in by hand."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def save(name: str, figures: dict[str, Any]) -> Path:
    """Write this run's figures of benchmark ``name`` (the last run's are replaced)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    record = {
        "benchmark": name,
        "date": time.strftime("%Y-%m-%d"),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "figures": figures,
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"figures written to {path.relative_to(RESULTS.parents[1])} (scripts/figures.py renders docs/figures.md)")
    return path
