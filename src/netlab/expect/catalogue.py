"""The catalogue of drop reasons: every reason of every kernel of a matrix run, whether
``netlab explain`` explains it, and which scenarios reproduce it on which kernels.

Built from the run itself, never by hand: a kernel's reasons are the table its own
``skb:kfree_skb`` format printed when its suite ran (recorded in its report; reports from before
that fall back on ``workshop/kernel_reasons.json``), and "reproduced" means a scenario that
*passed* on that kernel asserted a drop with that reason there. Reasons a namespace lab cannot
reach (hardware, memory pressure, CAN) say why in ``unreachable.yaml``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: names in the kernels' tables that are not reasons a packet is dropped for
NOT_REASONS = frozenset({"MAX", "NOT_SPECIFIED"})
UNREACHABLE = Path(__file__).with_name("unreachable.yaml")
#: the catalogue of netlab's last full matrix run, for ``netlab reasons`` without a matrix of one's own
LAST_RUN = Path(__file__).with_name("last_run.json")


@dataclass(frozen=True)
class Kernel:
    """One column: a kernel of the run, and the reasons its table has."""

    name: str
    release: str
    reasons: frozenset[str]


@dataclass(frozen=True)
class Row:
    """One reason across the run's kernels."""

    reason: str
    defined: tuple[str, ...]
    explained: bool
    #: scenario -> the kernels (by name) on which it passed asserting this reason
    reproduced: dict[str, tuple[str, ...]] = field(default_factory=dict)
    unreachable: str | None = None

    def cell(self, kernel: Kernel) -> str:
        """``reproduced``, ``defined`` or ``not defined`` on ``kernel``."""
        if self.reason not in kernel.reasons:
            return "not defined"
        return "reproduced" if any(kernel.name in on for on in self.reproduced.values()) else "defined"


@dataclass(frozen=True)
class Catalogue:
    """Every reason of the run, with the coverage of each kernel."""

    kernels: tuple[Kernel, ...]
    rows: tuple[Row, ...]

    def coverage(self, kernel: Kernel) -> tuple[int, int]:
        """(reasons reproduced, reasons defined) on ``kernel``, besides NOT_SPECIFIED."""
        defined = [r for r in self.rows if r.reason in kernel.reasons and r.reason not in NOT_REASONS]
        return sum(r.cell(kernel) == "reproduced" for r in defined), len(defined)

    def reproduced(self) -> list[str]:
        """The reasons some scenario reproduces on some kernel, besides NOT_SPECIFIED."""
        return [r.reason for r in self.rows if r.reproduced and r.reason not in NOT_REASONS]

    def summary(self) -> str:
        """The coverage in one line: reproduced / defined, per kernel."""
        parts = []
        for k in self.kernels:
            done, defined = self.coverage(k)
            parts.append(f"{k.name} {done}/{defined}" if defined else f"{k.name} no reasons")
        return f"{len(self.reproduced())} distinct reasons reproduced; per kernel (reproduced/defined): " + ", ".join(
            parts
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "summary": self.summary(),
            "kernels": [
                {
                    "name": k.name,
                    "release": k.release,
                    "reproduced": self.coverage(k)[0],
                    "defined": self.coverage(k)[1],
                }
                for k in self.kernels
            ],
            "reasons": [
                {
                    "reason": r.reason,
                    "defined_on": list(r.defined),
                    "explained": r.explained,
                    "scenarios": {s: list(on) for s, on in r.reproduced.items()},
                    "cells": {k.name: r.cell(k) for k in self.kernels},
                    "unreachable": r.unreachable,
                }
                for r in self.rows
            ],
        }


def unreachable() -> dict[str, str]:
    """Reason -> why a namespace lab cannot produce it."""
    data = yaml.safe_load(UNREACHABLE.read_text()) or {}
    return {str(k): str(v) for k, v in data.items()}


def _reproduced(matrix: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, dict[str, list[str]]]:
    """reason -> scenario -> kernels (by name) where it passed asserting that reason."""
    out: dict[str, dict[str, list[str]]] = {}
    for scenario in matrix.get("scenarios", []):
        for release, cell in scenario.get("cells", {}).items():
            if cell.get("outcome") not in ("passed", "flaky"):
                continue
            for asserted in cell.get("asserted", []):
                reason = asserted.get("reason")
                if reason:
                    kernels = out.setdefault(reason, {}).setdefault(scenario["scenario"], [])
                    if names.get(release, release) not in kernels:
                        kernels.append(names.get(release, release))
    return out


def build(
    kernels: list[Kernel],
    matrix: Mapping[str, Any],
    explained: set[str] | frozenset[str],
    why_not: Mapping[str, str],
) -> Catalogue:
    """The catalogue of ``kernels`` from ``matrix`` (``matrix.json``'s data)."""
    return _catalogue(kernels, _reproduced(matrix, {k.release: k.name for k in kernels}), explained, why_not)


def _catalogue(
    kernels: list[Kernel],
    seen: Mapping[str, Mapping[str, list[str]]],
    explained: set[str] | frozenset[str],
    why_not: Mapping[str, str],
) -> Catalogue:
    every = sorted(set().union(*(k.reasons for k in kernels), seen) - {"MAX"})
    rows = tuple(
        Row(
            reason,
            tuple(k.name for k in kernels if reason in k.reasons),
            reason in explained,
            {s: tuple(on) for s, on in sorted(seen.get(reason, {}).items())},
            why_not.get(reason),
        )
        for reason in every
    )
    return Catalogue(tuple(kernels), rows)


def snapshot(catalogue: Catalogue, date: str) -> dict[str, Any]:
    """What a later ``netlab reasons`` needs of a run, without the run: each kernel's table and
    what reproduced each reason where (``last_run.json``, shipped with netlab)."""
    return {
        "date": date,
        "kernels": [{"name": k.name, "release": k.release, "reasons": sorted(k.reasons)} for k in catalogue.kernels],
        "reproduced": {
            r.reason: {s: list(on) for s, on in r.reproduced.items()} for r in catalogue.rows if r.reproduced
        },
    }


def from_snapshot(
    data: Mapping[str, Any],
    explained: set[str] | frozenset[str],
    why_not: Mapping[str, str],
    also: Kernel | None = None,
) -> Catalogue:
    """The catalogue of a :func:`snapshot`, with ``also`` (this machine's kernel) as a column of
    reasons defined, reproduced by nothing yet."""
    kernels = [Kernel(k["name"], k["release"], frozenset(k["reasons"])) for k in data["kernels"]]
    if also is not None and also.release not in {k.release for k in kernels}:
        kernels.append(also)
    return _catalogue(kernels, data.get("reproduced", {}), explained, why_not)


def kernels_of(directory: Path, fallback: Mapping[str, frozenset[str]]) -> tuple[list[Kernel], dict[str, Any]]:
    """The kernels of the matrix in ``directory`` with their reason tables, and its data: each
    kernel's table from its report, else from ``fallback`` (release -> names)."""
    matrix = json.loads((directory / "matrix.json").read_text())
    out = []
    for k in matrix.get("kernels", []):
        release = k.get("release") or ""
        table: frozenset[str] | None = None
        report = directory / (k.get("report") or "")
        if k.get("report") and report.is_file():
            recorded = json.loads(report.read_text()).get("kernel", {}).get("reasons")
            if recorded is not None:
                table = frozenset(recorded)
        if table is None:
            table = fallback.get(release, frozenset())
        out.append(Kernel(str(k.get("name") or release), release, table))
    return out, matrix
