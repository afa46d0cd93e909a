"""The ``netlab`` command: thin commands over the package.

Each command parses its arguments, calls one function of the package and renders the result.
Errors of the package (:class:`~netlab.errors.NetlabError`) become one message on stderr and
the error's exit code; a traceback therefore always means a bug in netlab. Imports are lazy so
that ``netlab down`` does not pay for pydantic, pyroute2 or rich.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from netlab.errors import NetlabError

F = TypeVar("F", bound=Callable[..., Any])


def _err(message: str) -> None:
    click.echo(f"netlab: {message}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="kernel-netlab", prog_name="netlab")
def cli() -> None:
    """Reproducible Linux network labs in namespaces, and where the kernel drops packets.

    Labs are built from YAML topologies (netlab topologies lists them). Every object a lab
    creates lives in network namespaces named LAB.NODE, so `ip netns exec` works as usual.
    """


@cli.command()
@click.argument("topology")
@click.option("--instance", help="Bring up another copy under the lab name TOPOLOGY-INSTANCE.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds to wait for links to be usable.",
)
@click.option("--dry-run", is_flag=True, help="Print the plan (every step and its undo); touch nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the lab as JSON.")
def up(topology: str, instance: str | None, timeout: float, dry_run: bool, as_json: bool) -> None:
    """Build the lab described by TOPOLOGY (a name on the search path, or a file)."""
    if dry_run:
        from netlab.model.loader import load
        from netlab.model.names import lab_name
        from netlab.plan import plan

        topo, _ = load(topology)
        click.echo(plan(topo, lab_name(topo.name, instance)).render())
        return
    from netlab.cli import render
    from netlab.lab import up as lab_up

    with render.progress(f"bringing up {topology}", enabled=not as_json) as report:
        lab = lab_up(topology, instance=instance, timeout=timeout, hold=False, progress=report)
    try:
        summary = lab.summary()
    except KeyboardInterrupt:
        _err(f"interrupted; lab {lab.name} is up (netlab down {lab.name} removes it)")
        sys.exit(130)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        render.lab_up(summary, lab.topology.description)


@cli.command()
@click.argument("labs", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Tear down every lab.")
@click.option("--missing-ok", is_flag=True, help="Succeed when the lab is not up.")
def down(labs: Sequence[str], everything: bool, missing_ok: bool) -> None:
    """Tear down LABS: kill what runs inside, remove their namespaces."""
    from netlab.apply.journal import all_labs
    from netlab.teardown import down as lab_down

    targets = list(labs) + (all_labs() if everything else [])
    if not targets:
        raise click.UsageError("name a lab (netlab status lists them) or use --all")
    for lab in targets:
        removal = lab_down(lab, missing_ok=missing_ok)
        extra = f", killed {len(removal.killed)} processes" if removal.killed else ""
        click.echo(f"{lab}: removed {len(removal.namespaces)} namespaces{extra}")


@cli.command()
@click.argument("lab", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(lab: str | None, as_json: bool) -> None:
    """Show labs, their nodes, interfaces and addresses."""
    from netlab.lab import status as lab_status

    labs = lab_status(lab)
    if as_json:
        click.echo(json.dumps(labs, indent=2))
        return
    from netlab.cli import render

    render.status(labs)


def _node_netns(lab: str, node: str) -> str:
    from netlab.apply.journal import all_labs, read
    from netlab.errors import LabStateError

    record = read(lab)
    if record is None:
        raise LabStateError(f"no lab named '{lab}' is up (labs: {', '.join(all_labs()) or 'none'})")
    names: dict[str, str] = record.header.get("netns", {})
    if node not in names:
        raise LabStateError(f"lab '{lab}' has no node '{node}' (nodes: {', '.join(names)})")
    if record.state != "up":
        raise LabStateError(f"lab '{lab}' is {record.state}", hint=f"netlab down {lab}")
    return names[node]


def _exec_in(lab: str, node: str, argv: list[str]) -> None:
    from netlab.apply.netns import enter_for_exec, require_root

    require_root()
    ns = _node_netns(lab, node)
    enter_for_exec(ns)
    os.environ.update({"NETLAB_LAB": lab, "NETLAB_NODE": node, "NETLAB_NETNS": ns})
    try:
        os.execvp(argv[0], argv)  # noqa: S606 - running the user's own command is the point
    except FileNotFoundError:
        raise NetlabError(f"command not found: {argv[0]}") from None


@cli.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.argument("lab")
@click.argument("node")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(lab: str, node: str, command: Sequence[str]) -> None:
    """Run COMMAND inside NODE of LAB (use -- before the command)."""
    _exec_in(lab, node, list(command))


@cli.command()
@click.argument("lab")
@click.argument("node")
def shell(lab: str, node: str) -> None:
    """Open an interactive shell inside NODE of LAB."""
    _err(f"entering {lab}/{node}; exit to leave")
    _exec_in(lab, node, [os.environ.get("SHELL", "/bin/bash")])


@cli.command()
@click.option("--all", "everything", is_flag=True, help="Also tear down labs that are up and healthy.")
def clean(everything: bool) -> None:
    """Remove what crashed labs left behind (and only that)."""
    from netlab.apply.netns import require_root
    from netlab.teardown import clean as do_clean
    from netlab.teardown import clean_instances

    require_root()
    removed = do_clean(everything=everything)
    for removal in removed:
        click.echo(f"{removal.lab}: removed {len(removal.namespaces)} namespaces")
    instances = clean_instances()
    for inst in instances:
        click.echo(f"removed tracefs instance {inst}")
    if not removed and not instances:
        click.echo("nothing to clean")


@cli.command()
@click.argument("files", nargs=-1, required=True)
def validate(files: Sequence[str]) -> None:
    """Check topology FILES (names or paths) without touching the kernel."""
    from netlab.errors import TopologyError
    from netlab.model.loader import load

    failed: list[TopologyError] = []
    for ref in files:
        try:
            topo, source = load(ref)
        except TopologyError as exc:
            failed.append(exc)
            continue
        click.echo(f"{source.file}: ok ({len(topo.nodes)} nodes, {len(topo.links)} links)")
    if failed:
        raise TopologyError([issue for exc in failed for issue in exc.issues])


@cli.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write to a file.")
def schema(output: str | None) -> None:
    """Print the JSON Schema of the topology format (for editors)."""
    from netlab.model.schema import topology_schema

    text = json.dumps(topology_schema(), indent=2) + "\n"
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        click.echo(text, nl=False)


@cli.command()
def topologies() -> None:
    """List the topologies on the search path."""
    from netlab.model.loader import available

    for name, path in available().items():
        click.echo(f"{name:<16} {path}")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the CLI, turning netlab errors into a message and an exit code."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="netlab", standalone_mode=False)
    except NetlabError as exc:
        _err(f"error: {exc}")
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        _err("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _err("interrupted; whatever this command had begun to build was removed")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(0)
