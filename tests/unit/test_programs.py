"""Every program netlab (or virtme-ng and QEMU under it) runs comes from a package bootstrap installs.

The matrix once needed busybox-static that no script installed: CI passed only because the machine
had it from a manual install. These tests read the one list (``src/netlab/programs.txt``) and fail
when the code names a program the list lacks, when virtme-ng looks for a program the list lacks,
when bootstrap would not install a listed package, or when a package does not provide its program.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from netlab import programs

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("src", "tests", "scenarios", "benchmarks", "scripts", "topologies/generators")
#: calls whose first argument is a command line (a list) or a program name
RUNNERS = frozenset({"run", "Popen", "call", "check_call", "check_output", "popen", "Helper", "_feed", "execvp"})
FINDERS = frozenset({"which", "require", "find_binary", "find_binary_or_raise"})
#: words that name a program on some machine but are data where the code writes them
NOT_COMMANDS = {
    "[": "a bracket in strings",
    "apt": "a package name",
    "arch": "a build tree's arch/ directory",
    "arp": "nftables' arp family",
    "make": "a test's parameter name",
    "more": "a chain's name in a test's ruleset",
    "dpkg": "a package name",
    "cat": "tests read files with it inside nodes (coreutils, Essential)",
    "comm": "a process name field",
    "diff": "`netlab report diff`",
    "fmt": "a CLI option",
    "groups": "a field",
    "id": "a field",
    "kmod": "a package name in a test",
    "kvm": "an accelerator's name",
    "tr": "an HTML table row, in the page tests",
    "link": "`ip link`'s object",
    "llc": "802.2 LLC",
    "ls": "tests list files inside nodes (coreutils, Essential)",
    "netstat": "/proc/net/netstat",
    "node": "a lab node",
    "nop": "ftrace's tracer",
    "open": "a word in ftrace's text (xdg-utils installs an open program)",
    "route": "`ip route`'s object",
    "script": "`perf script`",
    "sh": "the guest's shell (dash, Essential)",
    "bash": "the shell a node runs (Essential)",
    "size": "a field",
    "sleep": "tests' idle process (coreutils, Essential)",
    "test": "a word",
    "time": "a field",
    "tput": "a lab instance's name in a benchmark",
    "gc": "the garbage collector module, named in the structure test",
    "date": "a field of a benchmark's record",
    "dir": "a word of `ip xfrm policy ... dir in` (the policy's direction)",
    "timeout": "a key naming an expectation (fragment reassembly timing out)",
    "true": "tests' and the KVM probe's no-op (coreutils, Essential)",
    "uptime": "/proc/uptime",
    "w": "a file mode",
    "yes": "a word",
}
#: what virtme-ng looks for in features netlab does not use (it boots with --force-9p, no ssh,
#: builds no kernel, and its --run takes a ready vmlinuz)
VIRTME_UNUSED = {
    "virtiofsd": "only without --force-9p",
    "socat": "only for --ssh / console forwarding",
    "make": "only when vng builds a kernel",
    "qemu-kvm": "an alternative name it tries before qemu-system-x86_64",
    "vng-mcp": "its MCP server",
    "dpkg": "only to guess the host's architecture (netlab gives x86_64)",
    "getfacl": "only for a user other than root",
    "qemu-img": "only for disk images (--disk)",
    "ssh-keygen": "only for --ssh",
    "zstd": "only for zstd-compressed (EFI zboot) images; Debian's amd64 vmlinuz is a bzImage",
}


def _tree_files() -> Iterator[Path]:
    """The project's Python, less this file (it names programs as data)."""
    for top in SOURCES:
        yield from (p for p in (ROOT / top).rglob("*.py") if p != Path(__file__).resolve())


def _call_name(node: ast.Call) -> str | None:
    f = node.func
    return f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)


def commands_in(tree: ast.AST) -> set[str]:
    """Program names in command position: ``run(["ip", ...])``, ``which("dot")``, ``find_binary([...])``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name, first = _call_name(node), node.args[0]
        if name in RUNNERS and isinstance(first, ast.List | ast.Tuple) and first.elts:
            head = first.elts[0]
            if isinstance(head, ast.Constant) and isinstance(head.value, str):
                found.add(head.value)
        elif name in FINDERS and isinstance(first, ast.Constant) and isinstance(first.value, str):
            found.add(first.value)
        elif name in FINDERS and isinstance(first, ast.List):
            # find_binary(["busybox-static", "busybox"]): any one of them will do
            alternatives = [e.value for e in first.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            found.add("|".join(alternatives))
    return found


def _listed(name: str) -> bool:
    return any(alt in programs.table() for alt in name.split("|"))


def test_the_list_parses_and_each_program_is_listed_once() -> None:
    rows = programs.parse(programs.LIST.read_text())
    names = [r.name for r in rows if r.name != "-"]
    assert len(names) == len(set(names))
    assert {r.group for r in rows} == {"core", "pages", "bench", "workshop", "pip"}
    assert all(r.why for r in rows), "each row says who runs it"


def test_every_command_the_code_runs_is_listed() -> None:
    unlisted: dict[str, list[str]] = {}
    for path in _tree_files():
        for name in commands_in(ast.parse(path.read_text())):
            if not _listed(name) and name not in NOT_COMMANDS:
                unlisted.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert unlisted == {}, "add these to src/netlab/programs.txt with their package"


def test_every_word_naming_an_installed_program_is_listed_or_known_data() -> None:
    """The wider net: a program name held in a variable first (``tool = "iptables-restore"``)."""
    on_path: set[str] = set()
    for directory in ("/usr/bin", "/usr/sbin", "/bin", "/sbin"):
        if os.path.isdir(directory):
            on_path |= set(os.listdir(directory))
    unlisted: dict[str, list[str]] = {}
    for path in _tree_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in on_path:
                word = node.value
                if word not in programs.table() and word not in NOT_COMMANDS:
                    unlisted.setdefault(word, []).append(str(path.relative_to(ROOT)))
    assert unlisted == {}, "a program (add it to programs.txt) or data (add it to NOT_COMMANDS with why)"


def test_the_scanner_sees_commands_in_each_shape() -> None:
    tree = ast.parse(
        'subprocess.run(["tcpdump", "-i", x]); shutil.which("dot"); programs.require("nft")\n'
        'node.run(["ping", "-c1"]); find_binary(["busybox-static", "busybox"]); f(["stack", "count"])'
    )
    assert commands_in(tree) == {"tcpdump", "dot", "nft", "ping", "busybox-static|busybox"}


def test_every_program_virtme_ng_looks_for_is_listed_or_unused() -> None:
    virtme = pytest.importorskip("virtme", reason="virtme-ng is not installed (bootstrap's [vm] extra)")
    base = Path(virtme.__file__).parent
    wanted: set[str] = set()
    for path in base.rglob("*.py"):
        wanted |= commands_in(ast.parse(path.read_text()))
    unlisted = {w for w in wanted if not _listed(w) and w not in VIRTME_UNUSED}
    assert unlisted == set(), "virtme-ng runs these: list them in programs.txt, or say why netlab never needs them"
    assert any("busybox" in w for w in wanted), "virtme-ng no longer looks for busybox: update the list"


def _bootstrap_packages(extras: str = "") -> list[str]:
    env = {**os.environ, "NETLAB_LIST_PACKAGES": "1", "NETLAB_EXTRAS": extras}
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "bootstrap.sh")], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_bootstrap_installs_every_package_of_the_list() -> None:
    rows = programs.parse(programs.LIST.read_text())
    assert set(_bootstrap_packages()) == {r.package for r in rows if r.group == "core"}
    everything = set(_bootstrap_packages("pages,bench,workshop"))
    assert everything == {r.package for r in rows if r.group != "pip"}


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian machine (no dpkg-query)")
@pytest.mark.parametrize("row", [r for r in programs.table().values() if r.group != "pip"], ids=lambda r: r.name)
def test_each_package_provides_its_program(row: programs.Program) -> None:
    installed = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", row.package], capture_output=True, text=True, check=False
    ).stdout
    if "install ok installed" not in installed:
        if row.group == "core":
            pytest.fail(f"{row.package} is not installed: scripts/bootstrap.sh installs the core group")
        pytest.skip(f"{row.package} ({row.group} extra) is not installed here")
    files = subprocess.run(["dpkg-query", "-L", row.package], capture_output=True, text=True, check=True).stdout
    names = {Path(f).name for f in files.split() if "/bin/" in f or "/sbin/" in f}
    found = shutil.which(row.name)
    # iptables' programs are alternatives: /usr/sbin/iptables -> /etc/alternatives -> xtables-nft-multi
    target = os.path.realpath(found) if found else None
    assert row.name in names or (target and target in files.split()), f"{row.package} does not provide {row.name}"
