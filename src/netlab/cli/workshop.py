"""Workshop and report commands: ``explain`` (drop reasons in plain words), ``reasons`` (the
catalogue of every kernel's reasons and what reproduces them), ``check`` (a workshop lab
against its exercise) and ``report diff``."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from netlab.cli import commands, render
from netlab.errors import NetlabError
from netlab.expect.report import diff, load
from netlab.kernels.matrix import HERE, reason_catalogue, shipped_catalogue
from netlab.kernels.render import reasons_markdown
from netlab.runtime.netns import require_root
from netlab.workshop.checks import load as load_checks
from netlab.workshop.checks import run
from netlab.workshop.explain import explain as lookup
from netlab.workshop.explain import explanations


@click.group()
def report() -> None:
    """Work with scenario reports (pytest --netlab-report PATH)."""


@report.command(name="diff")
@click.argument("old", type=click.Path(exists=True, dir_okay=False))
@click.argument("new", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--asserted",
    is_flag=True,
    help="Compare the drops the scenarios asserted, not all their tracers saw (no background noise).",
)
def report_diff(old: str, new: str, asserted: bool) -> None:
    """What changed from report OLD to NEW: new, vanished and moved drops, scenario by scenario.

    Exits 1 when something changed (like diff), 0 when the kernels behave the same.
    """

    lines = diff(load(Path(old)), load(Path(new)), "asserted" if asserted else "drops")
    for line in lines:
        click.echo(line)
    if not lines:
        click.echo("no differences")
    sys.exit(1 if lines else 0)


@click.command()
@click.argument("reasons", nargs=-1)
@click.option("--list", "list_all", is_flag=True, help="List the explained reasons.")
def explain(reasons: Sequence[str], list_all: bool) -> None:
    """Explain drop REASONS in plain words: what the kernel checked, causes, how to confirm and fix."""

    if list_all or not reasons:
        for name, e in sorted(explanations().items()):
            click.echo(f"{name:<26} {e.what}")
        return
    click.echo("\n".join(lookup(r).render() for r in reasons), nl=False)


@click.command()
@click.argument("lab_dir", type=click.Path(exists=True))
@click.option("--instance", help="The instance you brought the lab up as.")
@click.option(
    "--answers",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Your answers file, for labs that ask for one (default: the name the lab gives, here).",
)
def check(lab_dir: str, instance: str | None, answers: Path | None) -> None:
    """Check your running lab against a workshop lab (labs/NN-name): what is right, what is still wrong."""

    if load_checks(Path(lab_dir)).topology is not None:
        require_root()
    spec, outcomes = run(Path(lab_dir), instance, answers)
    click.echo(spec.title)
    for o in outcomes:
        mark = "ok  " if o.ok else "FAIL"
        click.echo(f"  {mark} {o.name}: {o.detail}")
        for line in o.died:
            click.echo(f"       {line}")
        if not o.ok and o.hint:
            click.echo(f"       hint: {o.hint}")
    wrong = [o for o in outcomes if not o.ok]
    if wrong:
        click.echo(f"{len(wrong)} of {len(outcomes)} checks still wrong")
        sys.exit(1)
    click.echo(f"all {len(outcomes)} checks pass")


@click.command()
@click.option(
    "--matrix",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The output directory of a netlab matrix run [default: matrix/ if it holds one, else the"
    " catalogue of netlab's last full run, shipped with it, beside this machine's kernel].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the whole catalogue as JSON.")
@click.option("--markdown", "as_markdown", is_flag=True, help="Print it as the README's markdown table.")
def reasons(directory: Path | None, as_json: bool, as_markdown: bool) -> None:
    """The drop reasons of a matrix run's kernels, and what reproduces them.

    For every reason any kernel of the run defines: the kernels that define it, the scenarios
    that reproduce it and on which kernels they passed, and whether netlab explain explains it.
    """
    if directory is None and not (Path("matrix") / "matrix.json").is_file():
        catalogue, date = shipped_catalogue()
        run = ", ".join(k.name for k in catalogue.kernels if k.name != HERE)
        beside = f", beside {HERE}'s kernel" if any(k.name == HERE for k in catalogue.kernels) else ""
        commands.err(f"netlab's last full matrix run ({date}: {run}){beside}; your own: netlab matrix -o matrix")
    else:
        directory = directory or Path("matrix")
        if not (directory / "matrix.json").is_file():
            raise NetlabError(f"no matrix in {directory}/ (run: netlab matrix -o {directory})")
        catalogue = reason_catalogue(directory)
    if as_json:
        click.echo(json.dumps(catalogue.as_dict(), indent=2))
        return
    if as_markdown:
        click.echo(reasons_markdown(catalogue), nl=False)
        return
    mark = {"reproduced": "yes", "defined": "-", "not defined": ""}
    rows = [
        (
            row.reason,
            *(mark[row.cell(k)] for k in catalogue.kernels),
            "yes" if row.explained else "",
            ", ".join(s.split("::", 1)[-1] for s in row.reproduced)
            or (f"(not in a lab: {row.unreachable})" if row.unreachable else ""),
        )
        for row in catalogue.rows
    ]
    render.table(("reason", *(k.name for k in catalogue.kernels), "explained", "reproduced by"), rows)
    click.echo(catalogue.summary())
