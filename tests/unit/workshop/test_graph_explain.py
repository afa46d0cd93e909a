"""Graphs of every shipped topology, explanations of every asserted reason, the Vagrantfile."""

from __future__ import annotations

import ast
import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from netlab.errors import NetlabError
from netlab.model.loader import load
from netlab.workshop.explain import explain, explanations, kernel_tables
from netlab.workshop.graph import render, to_dot, to_mermaid

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = sorted(p.stem for p in (ROOT / "topologies").glob("*.yaml"))


@pytest.mark.parametrize("name", SHIPPED)
def test_dot_and_mermaid_for_every_topology(name: str) -> None:
    topo, _ = load(name)
    dot = to_dot(topo)
    mermaid = to_mermaid(topo)
    for node in topo.nodes:
        assert f"({name}.{node})" in dot and f"({name}.{node})" in mermaid
    for link in topo.links:
        a, b = link.endpoints
        assert f'"{a.node}:{a.ifname}" -- "{b.node}:{b.ifname}"' in dot
    for spec in topo.nodes.values():
        for iface in spec.interfaces.values():
            for addr in iface.addresses:
                assert str(addr) in dot


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz is not installed (apt-get install graphviz)")
@pytest.mark.parametrize("name", SHIPPED)
def test_svg_renders(name: str) -> None:
    topo, _ = load(name)
    svg = render(topo, "svg").decode()
    assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
    labels = {html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)}
    assert set(topo.nodes) <= labels, labels  # every node drawn, under its name


def test_bridge3_graph_shows_the_seed() -> None:
    topo, _ = load("bridge3")
    dot = to_dot(topo)
    assert "shape=hexagon" in dot and '"host:calmbr" -- "host:calmveth1_peer" [style=dashed' in dot
    assert "198.51.100.1/24" in dot


def test_unknown_format() -> None:
    topo, _ = load("bridge3")
    with pytest.raises(NetlabError, match="unknown graph format 'gif'"):
        render(topo, "gif")


#: the calls scenarios write expectations with (netlab's Drop and scenarios/expected.py's helpers)
EXPECTATION_CALLS = {"Drop", "located", "udp", "martian", "bridge_ingress"}


def asserted_reasons() -> set[str]:
    """Reason names written in the scenarios' expectations, for any kernel."""
    found: set[str] = set()
    for path in (ROOT / "scenarios").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in EXPECTATION_CALLS:
                found |= {
                    a.value
                    for a in node.args
                    if isinstance(a, ast.Constant)
                    and isinstance(a.value, str)
                    and re.fullmatch(r"[A-Z][A-Z0-9_]+", a.value)
                }
    return found


def test_every_reason_the_scenarios_assert_is_explained() -> None:
    reasons = asserted_reasons()
    assert len(reasons) >= 20, reasons
    missing = reasons - set(explanations())
    assert not missing, f"netlab explain lacks {sorted(missing)}"
    for reason in reasons:
        text = explain(reason).render()
        assert "typical causes:" in text and "how to confirm:" in text and "how to fix:" in text


def test_explain_is_case_insensitive_and_refuses_unknown() -> None:
    assert explain("netfilter_drop").reason == "NETFILTER_DROP"
    assert explain("SKB_DROP_REASON_NO_SOCKET").reason == "NO_SOCKET"
    with pytest.raises(NetlabError, match="no explanation for drop reason 'BOGUS', and no known kernel reports it"):
        explain("BOGUS")


def test_reasons_of_the_matrix_kernels_all_say_something() -> None:
    """Every reason a matrix kernel can report gets an answer: the plain-words text where netlab
    has one, else the kernel's name for it and the kernels that report it (never "no explanation")."""
    tables = kernel_tables()
    assert any(k.startswith("6.1.") for k in tables) and any(k.startswith("6.12.") for k in tables)
    everything = set().union(*tables.values())
    for reason in sorted(everything):
        found = explain(reason)
        assert found.kernels and all(reason in tables[k] for k in found.kernels)
        assert "typical causes:" in found.render() and "reported by:" in found.render()
    unexplained = sorted(everything - set(explanations()))
    assert unexplained, "every reason has text: this test needs another example"
    text = explain(unexplained[0]).render()
    assert f"SKB_DROP_REASON_{unexplained[0]}" in text and "dropreason-core.h" in text


def test_what_the_tracer_points_to_is_explained() -> None:
    """`netlab trace` says "why: netlab explain REASON"; these are what labs show most."""
    for reason in ("TC_INGRESS", "TC_EGRESS", "SOCKET_CLOSE", "TCP_LISTEN_OVERFLOW", "IP_OUTNOROUTES", "FULL_RING"):
        assert "no plain-words text" not in explain(reason).what


@pytest.mark.skipif(
    shutil.which("vagrant") is None,
    reason="vagrant is not installed (NETLAB_EXTRAS=workshop scripts/bootstrap.sh installs it)",
)
def test_vagrantfile_validates(tmp_path: Path) -> None:
    env = {**os.environ, "VAGRANT_HOME": str(tmp_path)}  # not the user's ~/.vagrant.d
    result = subprocess.run(
        ["vagrant", "validate", "--ignore-provider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_vagrantfile_boots_the_prebuilt_box_offline_or_provisions_the_catalogue_box() -> None:
    text = (ROOT / "Vagrantfile").read_text()
    assert '"netlab-VAGRANTSLASH-workshop"' in text, "the box `vagrant box add netlab/workshop` adds"
    assert 'prebuilt ? "netlab/workshop" : "debian/bookworm64"' in text
    # on the prebuilt box, pip may only take this checkout: no index, no dependencies
    assert "pip install -q --no-index --no-deps --no-build-isolation -e /vagrant" in text
    assert "NETLAB_VENV=/opt/netlab-venv scripts/bootstrap.sh" in text


def test_the_box_scripts_parse_and_the_box_key_is_stable() -> None:
    for script in ("workshop-box.sh", "workshop-vm-test.sh"):
        subprocess.run(["bash", "-n", str(ROOT / "scripts" / script)], check=True)
    key = [
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "workshop-box.sh"), "--key"], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert key[0] == key[1] and re.fullmatch(r"[0-9a-f]{16}", key[0])
