"""The ``netlab`` command: one click group whose commands live in one module per area.

Each command parses its arguments, calls the package and renders the result. Errors of the
package (:class:`~netlab.errors.NetlabError`) become one message on stderr and the error's exit
code (:func:`netlab.cli.commands.guarded`); a traceback therefore always means a bug in netlab.

The group loads a command's module only when that command runs (:class:`LazyGroup`, click's
documented pattern), so ``netlab status`` does not import scapy and ``netlab down --all`` does
not import pydantic; each module imports what it uses at its top. A plain ``up NAME`` or
``down NAME...`` does not even import click (:mod:`netlab.cli.entry`).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import click

from netlab.cli import commands

#: command -> (module of netlab.cli, attribute, one line of help for ``netlab --help``), in the
#: order ``--help`` lists them
COMMANDS: dict[str, tuple[str, str, str]] = {
    "up": ("lifecycle", "up_command", "Build the lab described by TOPOLOGY (a name on the search path, or a file)."),
    "down": ("lifecycle", "down_command", "Tear down LABS: kill what runs inside, remove their namespaces."),
    "status": ("lifecycle", "status", "Show labs, their nodes, interfaces and addresses."),
    "clean": ("lifecycle", "clean", "Remove what crashed labs left behind (and only that)."),
    "exec": ("nodes", "exec_", "Run COMMAND inside NODE of LAB (use -- before the command)."),
    "shell": ("nodes", "shell", "Open an interactive shell inside NODE of LAB."),
    "inject": (
        "nodes",
        "inject",
        "Send frames of RECIPE from NODE's INTERFACE (recipes: stp, rstp, ethertype VALUE, pause, udp, icmp, tcp-syn).",
    ),
    "capture": ("nodes", "capture", "Capture frames on NODE's INTERFACE (until --count, --timeout or Ctrl-C)."),
    "flow": (
        "nodes",
        "flow",
        "Run a TCP flow from node SRC to node DST over real kernel sockets and verify every byte.",
    ),
    "ping": (
        "nodes",
        "ping",
        "ICMP echo from NODE to DST (IPv4 or IPv6), each request answered or timed out before the next.",
    ),
    "validate": ("topology", "validate", "Check topology FILES (names or paths) without touching the kernel."),
    "schema": ("topology", "schema", "Print the JSON Schema of the topology format (for editors)."),
    "topologies": ("topology", "topologies", "List the topologies on the search path."),
    "graph": (
        "topology",
        "graph",
        "Draw TOPOLOGY: namespaces as clusters, bridges, veth pairs with names and addresses.",
    ),
    "doctor": ("tracing", "doctor", "Say, for every tracer, whether it can run on this machine and exactly why not."),
    "trace": (
        "tracing",
        "trace",
        "Trace drops in LAB, or the whole machine (--host): node, device, location, reason, count (live until Ctrl-C).",
    ),
    "symbolize": (
        "tracing",
        "symbolize",
        "Turn kernel addresses (0xffffffff81586d82) into function+offset from /proc/kallsyms.",
    ),
    "explain": (
        "workshop",
        "explain",
        "Explain drop REASONS in plain words: what the kernel checked, causes, how to confirm and fix.",
    ),
    "reasons": (
        "workshop",
        "reasons",
        "The drop reasons of a matrix run's kernels, and what reproduces them.",
    ),
    "check": (
        "workshop",
        "check",
        "Check your running lab against a workshop lab (labs/NN-name): what is right, what is still wrong.",
    ),
    "report": ("workshop", "report", "Work with scenario reports (pytest --netlab-report PATH)."),
    "kernels": (
        "kernels",
        "kernels",
        "The running kernel, the cached ones, and Debian's kernels that can be fetched (with sizes).",
    ),
    "vm": ("kernels", "vm", "Run COMMAND as root inside a throwaway VM of that kernel (no COMMAND: a shell)."),
    "matrix": ("kernels", "matrix", "Run the scenario suite on each kernel (several at a time) and compare them."),
}


class LazyGroup(click.Group):
    """A group that imports a command's module when the command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute, _help = COMMANDS[cmd_name]
        found = getattr(importlib.import_module(f"netlab.cli.{module}"), attribute)
        assert isinstance(found, click.Command)
        return found

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """``netlab --help`` from the table: listing the commands imports none of them."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, summary) for name, (_m, _a, summary) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="kernel-netlab", prog_name="netlab")
def cli() -> None:
    """Reproducible Linux network labs in namespaces, and where the kernel drops packets.

    Labs are built from YAML topologies (netlab topologies lists them). Every object a lab
    creates lives in network namespaces named LAB.NODE, so `ip netns exec` works as usual.
    """


def main(argv: Sequence[str] | None = None) -> None:
    """Run the click CLI, turning netlab errors into a message and an exit code (what the
    ``netlab`` command runs for everything :mod:`netlab.cli.entry` does not take itself)."""

    def run() -> None:
        try:
            cli.main(args=list(argv) if argv is not None else None, prog_name="netlab", standalone_mode=False)
        except click.exceptions.Abort:
            commands.err("aborted")
            sys.exit(130)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)

    commands.guarded(run)
