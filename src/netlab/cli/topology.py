"""Topology files from the command line: ``validate``, ``schema``, ``topologies``, ``graph``
(no kernel touched)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from netlab.errors import TopologyError
from netlab.model.loader import available, load
from netlab.model.schema import topology_schema
from netlab.workshop.graph import render


@click.command()
@click.argument("files", nargs=-1, required=True)
def validate(files: Sequence[str]) -> None:
    """Check topology FILES (names or paths) without touching the kernel."""

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


@click.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write to a file.")
def schema(output: str | None) -> None:
    """Print the JSON Schema of the topology format (for editors)."""

    text = json.dumps(topology_schema(), indent=2) + "\n"
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        click.echo(text, nl=False)


@click.command()
def topologies() -> None:
    """List the topologies on the search path."""

    for name, path in available().items():
        click.echo(f"{name:<16} {path}")


@click.command()
@click.argument("topology")
@click.option("--format", "fmt", type=click.Choice(["svg", "png", "dot", "mermaid"]), default="svg", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write to a file.")
def graph(topology: str, fmt: str, output: str | None) -> None:
    """Draw TOPOLOGY: namespaces as clusters, bridges, veth pairs with names and addresses."""

    topo, _ = load(topology)
    data = render(topo, fmt)
    if output:
        with open(output, "wb") as f:
            f.write(data)
        click.echo(f"wrote {output}")
    elif fmt in ("svg", "dot", "mermaid"):
        click.echo(data.decode(), nl=False)
    else:
        raise click.UsageError("--format png needs -o FILE")
