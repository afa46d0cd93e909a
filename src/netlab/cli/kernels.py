"""``netlab kernels``, ``netlab vm`` and ``netlab matrix``: thin commands over :mod:`netlab.kernels`."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from netlab.cli import render
from netlab.errors import NetlabError, PrivilegeError
from netlab.kernels import vm as vms
from netlab.kernels.catalogue import CATALOGUE, lookup
from netlab.kernels.debian import cache_root, cached, resolve
from netlab.kernels.debian import fetch as do_fetch
from netlab.kernels.matrix import failures
from netlab.kernels.matrix import merge as do_merge
from netlab.kernels.runner import DEFAULT_PYTEST_ARGS, MatrixOptions, resolve_names, run_matrix, warm_bytecode

ACCEL = click.Choice(["auto", "kvm", "tcg"])


def _root(what: str) -> None:
    if os.geteuid() != 0:
        raise PrivilegeError(f"{what} needs root (QEMU runs the guest's suite as root, and labs need it)")


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


@click.group(invoke_without_command=True)
@click.pass_context
def kernels(ctx: click.Context) -> None:
    """The running kernel, the cached ones, and Debian's kernels that can be fetched (with sizes)."""
    if ctx.invoked_subcommand is not None:
        return

    rows = [["running", platform.release(), "-", "this machine", "-"]]
    for spec in CATALOGUE:
        have = cached(spec)
        try:
            now = resolve(spec)
            fetchable = f"{now.release} ({now.version}), {_mib(now.download_bytes)}"
        except NetlabError as exc:
            fetchable = f"unknown: {str(exc).splitlines()[0]}"
        state = f"cached: {have.release}, {_mib(have.download_bytes)}" if have else "not cached"
        rows.append([spec.series, spec.suite, state, fetchable, spec.why])
    render.table(["kernel", "suite / release", "cache", "Debian now", "why in the matrix"], rows)
    click.echo(f"cache: {cache_root()}  (netlab kernels fetch 6.1 ... fills it)")


@kernels.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--refresh", is_flag=True, help="Refresh the suites' package lists even if they are recent.")
def fetch(names: Sequence[str], refresh: bool) -> None:
    """Download Debian's kernels NAMES (5.10 ... 7.2, 6.12-cloud, 6.12-rt) into the cache; installs nothing."""

    for name in names:
        spec = lookup(name)
        kernel = do_fetch(spec, refresh=refresh)
        click.echo(f"{spec.name}: {kernel.release} ({kernel.version}) {_mib(kernel.download_bytes)} in {kernel.tree}")


def _kernel(name: str) -> Any:

    return do_fetch(lookup(name))


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("-k", "--kernel", "name", required=True, help="Kernel series: 5.10, 6.1, 6.12 or 7.2.")
@click.option("--accel", type=ACCEL, default="auto", show_default=True, help="KVM, TCG, or probe.")
@click.option("--timeout", type=click.FloatRange(min=10), default=1800.0, show_default=True)
@click.option("--memory", default="4G", show_default=True)
@click.option("--cpus", type=click.IntRange(1, 64), default=1, show_default=True, help="vCPUs of the VM.")
@click.option(
    "-w",
    "--writable",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A host directory the guest may write to (repeatable); everything else is read-only.",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def vm(
    name: str, accel: str, timeout: float, memory: str, cpus: int, writable: tuple[Path, ...], command: Sequence[str]
) -> None:
    """Run COMMAND as root inside a throwaway VM of that kernel (no COMMAND: a shell).

    The VM sees this machine's files read-only, so `netlab vm -k 6.1 -- netlab up bridge3` uses
    this checkout and its venv. Exits with the command's status.
    """

    _root("netlab vm")
    kernel = _kernel(name)
    warm_bytecode()
    chosen = vms.choose_accel(kernel, force=None if accel == "auto" else accel)
    click.echo(f"netlab vm: {kernel.release} under {chosen.kind} ({chosen.why})", err=True)
    if not command:
        sys.exit(vms.shell(kernel, chosen, memory=memory, cpus=cpus, writable=writable))
    result = vms.run(
        kernel,
        list(command),
        accel=chosen,
        timeout=timeout,
        memory=memory,
        cpus=cpus,
        on_line=click.echo,
        writable=writable,
    )
    if result.stderr:
        click.echo(result.stderr, err=True, nl=False)
    click.echo(f"netlab vm: booted in {result.boot_seconds:.1f} s, exit {result.rc}", err=True)
    sys.exit(result.rc)


class _PytestArgsGroup(click.Group):
    """A group whose own invocation takes ``-- PYTEST ARGS`` (kept apart from subcommands)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            ctx.meta["netlab.pytest_args"] = tuple(args[cut + 1 :])
            args = args[:cut]
        return super().parse_args(ctx, args)


@click.group(cls=_PytestArgsGroup, invoke_without_command=True)
@click.option(
    "-k",
    "--kernel",
    "names",
    multiple=True,
    help="5.10, 6.1, 6.12, 7.2 (or SERIES-cloud, SERIES-rt), running, or the path of a kernel build tree,"
    " image (vmlinuz-RELEASE) or .deb; repeatable.",
)
@click.option("-o", "--output", type=click.Path(file_okay=False), default="matrix", show_default=True)
@click.option("--timeout", type=click.FloatRange(min=10), default=1500.0, show_default=True, help="Per VM.")
@click.option("--accel", type=ACCEL, default="auto", show_default=True)
@click.option("--cpus", type=click.IntRange(1, 64), default=1, show_default=True, help="vCPUs per VM.")
@click.option(
    "-j", "--jobs", type=click.IntRange(1, 64), default=None, help="Kernels at a time [default: cores / vCPUs per VM]."
)
@click.pass_context
def matrix(
    ctx: click.Context, names: Sequence[str], output: str, timeout: float, accel: str, cpus: int, jobs: int | None
) -> None:
    """Run the scenario suite on each kernel (several at a time) and compare them.

    Writes OUTPUT/RELEASE.json per kernel, OUTPUT/matrix.json and OUTPUT/index.html. Arguments
    after `--` go to pytest (default: scenarios/). Exits 1 if any scenario failed or was new
    on any kernel, or a kernel did not run.
    """
    if ctx.invoked_subcommand is not None:
        return

    _root("netlab matrix")
    opts = MatrixOptions(
        kernels=tuple(resolve_names(list(names))),
        output=Path(output),
        pytest_args=ctx.meta.get("netlab.pytest_args") or DEFAULT_PYTEST_ARGS,
        timeout=timeout,
        accel=None if accel == "auto" else accel,
        cpus=cpus,
        jobs=jobs,
    )
    result = run_matrix(opts, click.echo)
    _verdict(result, Path(output))


def _verdict(result: dict[str, Any], output: Path) -> None:

    click.echo("")
    for k in result["kernels"]:
        counts = ", ".join(f"{n} {o}" for o, n in sorted(k["counts"].items())) or (k["error"] or "").split("\n")[0]
        click.echo(f"{k['name']:>8}  {k['release']:<26} {k['accel']:<5} {counts}")
    click.echo(f"wrote {output / 'matrix.json'} and {output / 'index.html'}")
    bad = failures(result)
    if bad:
        click.echo(f"{len(bad)} problems:", err=True)
        for line in bad:
            click.echo(f"  {line}", err=True)
        sys.exit(1)


@matrix.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", type=click.Path(file_okay=False), required=True)
def merge(sources: Sequence[str], output: str) -> None:
    """Combine matrices run on different machines (one CI job per kernel) into one."""

    _verdict(do_merge([Path(s) for s in sources], Path(output)), Path(output))
