"""The documentation stays true: its figures are a run's, and the README stays a five-minute read."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _figures_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("figures", ROOT / "scripts" / "figures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_figures_page_is_what_the_recorded_runs_render() -> None:
    """docs/figures.md is scripts/figures.py's output for benchmarks/results/: a figure typed in
    by hand, or a run recorded without the page made again, fails here."""
    page = (ROOT / "docs" / "figures.md").read_text()
    assert page == _figures_script().render(), "run: .venv/bin/python scripts/figures.py > docs/figures.md"


def test_each_benchmark_has_a_section_and_saves_its_figures() -> None:
    script = _figures_script()
    benchmarks = {p.stem for p in (ROOT / "benchmarks").glob("*.py")} - {"results"}
    assert benchmarks == set(script.SECTIONS)
    for name in benchmarks:
        assert re.search(rf'save\(\s*"{name}"', (ROOT / "benchmarks" / f"{name}.py").read_text()), name


def test_the_readme_is_a_five_minute_read() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_each_python_dependency_says_what_it_is_for() -> None:
    """Every package pyproject.toml depends on (every group) has a row in the set-up page's
    dependency table, and the table names nothing the project does not depend on."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *(d for group in project["optional-dependencies"].values() for d in group)]
    names = {re.split(r"[<>=\[ ;]", d, maxsplit=1)[0].lower() for d in wanted}
    page = (ROOT / "docs" / "setup.md").read_text()
    table = page[page.index("## What each dependency is for") :]
    rows = {
        m.lower()
        for line in table.splitlines()
        if line.startswith("| `")
        for m in re.findall(r"`([^`]+)`", line.split("|")[1])
    }
    assert names == rows
