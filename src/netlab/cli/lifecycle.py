"""``netlab up``, ``down``, ``status`` and ``clean``: a lab's life, from the command line.

Nothing here validates a topology a cached plan already describes, so these stay as quick as
the plain ``up NAME`` / ``down NAME`` :mod:`netlab.cli.entry` runs without click.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from netlab import bringup, teardown
from netlab.cli import render
from netlab.cli.bring_up import bring_up
from netlab.cli.tear_down import tear_down
from netlab.runtime.journal import all_labs
from netlab.runtime.netns import require_root
from netlab.runtime.tracebuffers import clean_leftovers
from netlab.status import status as lab_status


@click.command("up")
@click.argument("topology")
@click.option("--instance", help="Bring up another copy under the lab name TOPOLOGY-INSTANCE.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=bringup.DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds to wait for links to be usable.",
)
@click.option("--dry-run", is_flag=True, help="Print the plan (every step and its undo); touch nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the lab as JSON.")
def up_command(topology: str, instance: str | None, timeout: float, dry_run: bool, as_json: bool) -> None:
    """Build the lab described by TOPOLOGY (a name on the search path, or a file)."""
    if dry_run:
        click.echo(bringup.plan(topology, instance).plan.render())
        return
    bring_up(topology, instance=instance, timeout=timeout, as_json=as_json)


@click.command("down")
@click.argument("labs", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Tear down every lab.")
@click.option("--missing-ok", is_flag=True, help="Succeed when the lab is not up.")
def down_command(labs: Sequence[str], everything: bool, missing_ok: bool) -> None:
    """Tear down LABS: kill what runs inside, remove their namespaces."""

    targets = list(labs) + (all_labs() if everything else [])
    if not targets:
        raise click.UsageError("name a lab (netlab status lists them) or use --all")
    tear_down(targets, missing_ok=missing_ok)


@click.command()
@click.argument("lab", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(lab: str | None, as_json: bool) -> None:
    """Show labs, their nodes, interfaces and addresses."""

    labs = lab_status(lab)
    if as_json:
        click.echo(json.dumps(labs, indent=2))
        return

    render.status(labs)


@click.command()
@click.option("--all", "everything", is_flag=True, help="Also tear down labs that are up and healthy.")
def clean(everything: bool) -> None:
    """Remove what crashed labs left behind (and only that)."""

    require_root()
    removed = teardown.clean(everything=everything)
    for removal in removed:
        click.echo(f"{removal.lab}: removed {len(removal.namespaces)} namespaces")
    buffers = clean_leftovers()
    for buffer in buffers:
        click.echo(f"removed trace buffer {buffer}")
    if not removed and not buffers:
        click.echo("nothing to clean")
